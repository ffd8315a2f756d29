// Request bodies on their way to the upstream (SPEC §8 `max_request_body_size`): small bodies (and bodies of
// unknown length until they prove large) gathered into one Buffer — one write upstream, and a request that can be
// replayed on a fresh connection — larger ones streamed, counted against the limit.
import type * as http from "node:http"
import type * as http2 from "node:http2"
import { type Readable, Transform, type TransformCallback } from "node:stream"

/** Bodies up to this size are gathered into one Buffer before dispatch: cheaper, and replayable on a retry. */
export const GATHER_LIMIT = 64 * 1024

/**
 * How much of a body is gathered under a snapshot's `retry:` (SPEC §11): up to `max_body_bytes` while retries are
 * on, so such a body can be sent to another identity; never less than GATHER_LIMIT.
 */
export const gatherLimit = (retry: { readonly attempts: number; readonly maxBodyBytes: number }): number =>
  retry.attempts > 0 && retry.maxBodyBytes > GATHER_LIMIT ? retry.maxBodyBytes : GATHER_LIMIT

export type ClientRequest = http.IncomingMessage | http2.Http2ServerRequest

/** Counts a body of unknown length on its way upstream and fails it past the limit. */
export class BodyLimit extends Transform {
  private seen = 0
  exceeded = false
  constructor(private readonly limit: number) {
    super()
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.seen += chunk.length
    if (this.seen > this.limit) {
      this.exceeded = true
      cb(new Error("request body too large"))
      return
    }
    cb(null, chunk)
  }
}

/** Where a body goes: the exchange that sends it (or refuses the request). */
export interface BodySink {
  limit: BodyLimit | undefined
  readonly clientGone: boolean
  /** Starts the upstream exchange with the body: a Buffer, a stream, or null for none. */
  start(body: Buffer | Readable | null): void
  /** The body is over `max_request_body_size` (413, connection closed). */
  tooLarge(): void
  /** The client's body ended unfinished: abort the client's side. */
  aborted(): void
}

/**
 * Reads a request body of `contentLength` (-1: unknown) into `sink`: a large declared one streams, a small one
 * (or one of unknown length that stays within `gather`) is gathered.
 */
export const readBody = (
  req: ClientRequest,
  sink: BodySink,
  contentLength: number,
  maxSize: number,
  gather = GATHER_LIMIT
): void => {
  if (contentLength > gather) return sink.start(req)
  const chunks: Array<Buffer> = []
  let size = 0
  const onData = (c: Buffer) => {
    chunks.push(c)
    size += c.length
    if (size > maxSize) {
      req.removeListener("data", onData)
      req.removeListener("end", onEnd)
      chunks.length = 0
      return sink.tooLarge()
    }
    if (size <= gather || contentLength >= 0) return
    // Larger than a small body and of unknown length: stream it, counted against the limit.
    req.removeListener("data", onData)
    req.removeListener("end", onEnd)
    req.pause()
    const limited = new BodyLimit(maxSize)
    req.on("error", (e) => limited.destroy(e))
    req.once("aborted", () => limited.destroy(new Error("client aborted")))
    for (const chunk of chunks) limited.write(chunk)
    req.pipe(limited)
    sink.limit = limited
    sink.start(limited)
  }
  const onEnd = () => {
    // HTTP/2 emits 'end' after an abort too: a body the client never finished must not go upstream as complete
    if (sink.clientGone || (req as { aborted?: boolean }).aborted) return sink.aborted()
    sink.start(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks))
  }
  req.on("data", onData)
  req.on("end", onEnd)
  req.on("error", () => sink.aborted())
}
