// One request to the mock provider as its routes see it: the Node request and response, the parsed URL, the
// recorded request (when recording) and the mock's state.
import type { In, Out } from "./http.js"
import type { MockState } from "./state.js"
import type { RecordedRequest } from "./types.js"

export interface Exchange {
  readonly req: In
  readonly res: Out
  /** The path with its query, as received. */
  readonly url: string
  readonly path: string
  readonly q: URLSearchParams
  readonly method: string
  readonly rec: RecordedRequest | undefined
  readonly mock: MockState
}

/** A route's handler. */
export type Route = (x: Exchange) => void
