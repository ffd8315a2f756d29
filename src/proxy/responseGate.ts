// What happens to an HTTP attempt's response before it may reach the client (SPEC §11): a retryable status with
// another identity to try is not relayed but read to its end (or aborted when large) and kept as the "last
// upstream answer", in case every later attempt fails without one; a stream under `timeouts.first_token` has its
// head and first events held until the first content event, and is abandoned (retried) when the deadline passes
// with nothing sent. The exchange hands its undici callbacks to the gate while one is set; when a held stream is
// released, the head and the held chunks go through the exchange's own callbacks, as if they had just come.
import type * as http from "node:http"
import { STATUS_CODES } from "node:http"
import type * as http2 from "node:http2"
import { armFirstToken, type FirstTokenWatchdog } from "../domain/retry/index.js"
import { SseUsageTap, type StreamKind } from "../domain/usage/sse.js"
import { responseHeadersFromRaw } from "./headers.js"
import type { HttpExchange } from "./httpExchange.js"
import type { ClientResponse } from "./respond.js"

/** A discarded answer larger than this is aborted rather than read (error bodies are a few hundred bytes). */
export const KEEP_LIMIT = 64 * 1024
/** A held stream that sends this much without a content event is released as it is (memory stays bounded). */
const HOLD_LIMIT = 1024 * 1024

/** A response the client did not see (yet): status, head and body as they came. */
export interface HeldAnswer {
  readonly status: number
  readonly statusText: string
  /** Raw header pairs: undici's buffers (HTTP), node:http's strings (a refused WebSocket handshake). */
  readonly raw: ReadonlyArray<Buffer | string>
  readonly chunks: Array<Buffer>
  /** The upstream protocol it came over (`x-upstream-protocol`). */
  readonly protocol: string
}

/** Relays a kept answer to the client as it came: status, headers (hop-by-hop dropped), body. */
export const relayHeld = (res: ClientResponse, isH2: boolean, a: HeldAnswer, requestId: string): void => {
  const headers = responseHeadersFromRaw(a.raw, a.protocol, isH2, requestId)
  if (isH2) (res as http2.Http2ServerResponse).writeHead(a.status, headers as http2.OutgoingHttpHeaders)
  else {
    const h1 = res as http.ServerResponse
    h1.sendDate = false
    if (a.statusText !== STATUS_CODES[a.status] && a.statusText && /^[\t\x20-\x7e]*$/.test(a.statusText))
      h1.writeHead(a.status, a.statusText, headers as Array<string>)
    else h1.writeHead(a.status, headers as Array<string>)
  }
  for (const c of a.chunks) (res as NodeJS.WritableStream).write(c)
  res.end()
}

export interface ResponseGate {
  data(chunk: Buffer): boolean
  complete(trailers: Array<string> | null): void
  error(err: Error): void
}

/** A retryable status: read (and keep) the answer, then start the next attempt after `delayMs`. */
export class DiscardGate implements ResponseGate {
  private bytes = 0
  private readonly answer: HeldAnswer
  constructor(
    private readonly ex: HttpExchange,
    status: number,
    statusText: string,
    raw: Array<Buffer>,
    private readonly delayMs: number
  ) {
    this.answer = { status, statusText, raw, chunks: [], protocol: ex.attemptProtocol }
  }
  data(chunk: Buffer): boolean {
    this.bytes += chunk.length
    if (this.bytes > KEEP_LIMIT) {
      this.answer.chunks.length = 0
      this.ex.abortAttempt(new Error("discarded answer too large"))
      return false
    }
    this.answer.chunks.push(chunk)
    return true
  }
  complete(): void {
    this.ex.nextAfterGate(this.bytes > KEEP_LIMIT ? undefined : this.answer, this.delayMs)
  }
  error(): void {
    // An answer cut short is not one to relay later.
    this.ex.nextAfterGate(undefined, this.delayMs)
  }
}

/**
 * A stream held until its first content event (`timeouts.first_token`). `kind` picks the content detector (the
 * usage tap's, SPEC §10); undefined (a `forward` provider, an unknown API): the first `data:` line counts.
 */
export class FirstTokenGate implements ResponseGate {
  private readonly chunks: Array<Buffer> = []
  private held = 0
  private readonly tap: SseUsageTap | undefined
  private readonly watchdog: FirstTokenWatchdog | undefined
  /** The deadline passed and the next attempt is selected: start it after this delay once this one is gone. */
  private abandoned = -1
  constructor(
    private readonly ex: HttpExchange,
    private readonly status: number,
    private readonly statusText: string,
    private readonly raw: Array<Buffer>,
    private readonly resume: () => void,
    kind: StreamKind | undefined,
    ms: number
  ) {
    this.tap = kind === undefined ? undefined : new SseUsageTap(kind)
    this.watchdog = armFirstToken(ms, this.expire)
  }

  data(chunk: Buffer): boolean {
    this.chunks.push(chunk)
    this.held += chunk.length
    if (this.held > HOLD_LIMIT) return this.release()
    if (this.tap !== undefined) {
      this.tap.push(chunk)
      if (this.tap.contentSeen) return this.release()
    } else if (hasDataLine(this.chunks)) return this.release()
    return true
  }

  complete(trailers: Array<string> | null): void {
    // Ended without a content event (an error event, an empty stream): relay it as it was.
    this.release()
    this.ex.onComplete(trailers)
  }

  error(err: Error): void {
    this.watchdog?.cancel()
    if (this.abandoned >= 0) return this.ex.nextAfterGate(undefined, this.abandoned)
    // Failed before its first content event, nothing sent: like a reset before the head.
    this.ex.gateFailed(err)
  }

  private readonly expire = (): void => {
    const delay = this.ex.abandonForFirstToken()
    if (delay < 0) {
      // No other identity to go to: the stream goes on as it is.
      this.release()
      return
    }
    this.abandoned = delay
    this.ex.abortAttempt(new Error("no content event within timeouts.first_token"))
  }

  /** Sends the head and the held chunks through the exchange; from here the stream is relayed as usual. */
  private release(): boolean {
    this.watchdog?.cancel()
    return this.ex.releaseHeld(this.status, this.raw, this.resume, this.statusText, this.chunks)
  }
}

/** Whether the held chunks hold a complete `data:` line (the first event of a stream of unknown kind). */
const hasDataLine = (chunks: ReadonlyArray<Buffer>): boolean => {
  const text = chunks.length === 1 ? chunks[0].toString("latin1") : Buffer.concat(chunks).toString("latin1")
  const i = text.startsWith("data:") ? 0 : text.indexOf("\ndata:")
  return i >= 0 && text.indexOf("\n", i + 1) > 0
}
