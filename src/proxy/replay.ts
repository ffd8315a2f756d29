// When a request whose upstream connection failed may be sent again on another connection (issue 10's safe-replay
// rule, the one Go's net/http Transport follows): when it was never written; when the method is idempotent (once);
// or when the connection had served earlier requests and failed before any response byte — the textbook stale
// keep-alive connection the upstream closed as the request went out. Never on elapsed time: an upstream that read a
// POST on a fresh connection and then reset may have acted on it, and a replay would run it twice.
import { isStaleConnectionError } from "../errors.js"
import type { UpstreamConnection } from "./upstreams.js"

const IDEMPOTENT: ReadonlySet<string> = new Set(["GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"])

/** What the rule reads about the failed attempt. */
export interface WrittenAttempt {
  /** The connection the attempt was written on (undefined: not written, nothing reached the upstream). */
  readonly conn: UpstreamConnection | undefined
  /** Whether `conn` had served responses before this attempt was written on it. */
  readonly reused: boolean
  /** `conn.socket.bytesRead` when the attempt was written. */
  readonly readAtWrite: number
  /** The upstream sent something for this attempt (a head, even an interim one). */
  readonly answered: boolean
  readonly attempts: number
}

export const safeToReplay = (a: WrittenAttempt, method: string | undefined, err: Error): boolean => {
  if (!isStaleConnectionError(err)) return false
  const conn = a.conn
  if (conn === undefined) return true
  if (IDEMPOTENT.has(method ?? "")) return a.attempts === 1
  // HTTP/2 multiplexes: bytes read on the session belong to other streams too, so only this stream's head counts.
  const noResponseByte = !a.answered && (conn.h2 || conn.socket.bytesRead === a.readAtWrite)
  return a.reused && noResponseByte
}
