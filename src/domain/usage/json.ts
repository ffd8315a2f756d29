// Usage tap for a JSON response body (non-streamed OpenAI, Anthropic and Gemini answers, and Gemini's
// streamGenerateContent without alt=sse, a JSON array whose last element carries the final usage). It sees the
// body's chunks as they pass to the client, keeps a bounded copy, and reads usage at the end: on a side path, so
// nothing the client receives waits for it. A gzip/deflate/br body is decoded here (asynchronously, bounded) only
// to read the usage; the client still receives the encoded bytes.
import { brotliDecompress, gunzip, inflate, inflateRaw } from "node:zlib"
import { findObject, findString, StringMemo } from "./scan.js"
import type { SseUsageResult } from "./sse.js"
import { fromDialect, modelLabel, parseObject, type Usage, type UsageDialect } from "./usage.js"

export interface UsageResult {
  /** undefined when the response carried no usage the tap could read */
  usage: Usage | undefined
  /** the response's model as a bounded label ("unknown" when absent or not a short token) */
  responseModel: string
}

export interface JsonTapOptions {
  /** the response's `content-encoding` (identity, gzip, x-gzip, deflate, br); other codings give no usage */
  contentEncoding?: string | undefined
  /** identity bodies: bytes kept from the end of the body, where every provider puts usage (default 1 MiB) */
  tailBytes?: number
  /** encoded bodies: compressed bytes collected at most (default 8 MiB) and decoded size limit (default 64 MiB) */
  maxEncodedBytes?: number
  maxDecodedBytes?: number
}

const HEAD_BYTES = 64 * 1024
const USAGE = Buffer.from('"usage"')
const USAGE_METADATA = Buffer.from('"usageMetadata"')
const MODEL = Buffer.from('"model"')
const MODEL_VERSION = Buffer.from('"modelVersion"')
/** The last response model read (its own memory: a response names another model than its request). */
const responseModels = new StringMemo()

export type Coding = "identity" | "gzip" | "deflate" | "br" | "unsupported"

const codingOf = (header: string | undefined): Coding => {
  if (header === undefined) return "identity"
  const h = header.trim().toLowerCase()
  if (h === "" || h === "identity") return "identity"
  if (h === "gzip" || h === "x-gzip") return "gzip"
  if (h === "deflate") return "deflate"
  if (h === "br") return "br"
  return "unsupported"
}

/** Reads usage and the response model from a complete (or head + tail) JSON text (no first-content time). */
export const usageFromJson = (dialect: UsageDialect, head: Buffer, tail: Buffer = head): SseUsageResult => {
  const span = findObject(tail, dialect === "gemini" ? USAGE_METADATA : USAGE, 0, tail.length, true)
  const raw = span === undefined ? undefined : parseObject(tail.toString("utf8", span.start, span.end))
  const key = dialect === "gemini" ? MODEL_VERSION : MODEL
  // Most put the model first; embeddings put it after the vectors, so a large body may have it in its tail only.
  const model =
    findString(head, key, 0, head.length, responseModels) ??
    (tail === head ? undefined : findString(tail, key, 0, tail.length, responseModels))
  return {
    usage: raw === undefined ? undefined : fromDialect(dialect, raw),
    responseModel: modelLabel(model),
    firstContentAt: undefined
  }
}

const NO_OPTIONS: JsonTapOptions = {}

const NO_USAGE: SseUsageResult = { usage: undefined, responseModel: "unknown", firstContentAt: undefined }

const decode = (coding: Coding, input: Buffer, maxOutputLength: number): Promise<Buffer | undefined> =>
  new Promise((resolve) => {
    const done = (err: Error | null, out: Buffer): void => resolve(err ? undefined : out)
    if (coding === "gzip") gunzip(input, { maxOutputLength }, done)
    else if (coding === "br") brotliDecompress(input, { maxOutputLength }, done)
    // "deflate" is zlib-wrapped per RFC 9110, but some servers send raw deflate: try both, as browsers do.
    else
      inflate(input, { maxOutputLength }, (err, out) =>
        err ? inflateRaw(input, { maxOutputLength }, done) : resolve(out)
      )
  })

/** One per response: `push` each body chunk (cheap: a reference is kept), then `finish` once at the end. */
export class JsonUsageTap {
  readonly coding: Coding
  private readonly tailBytes: number
  private readonly maxEncoded: number
  private readonly maxDecoded: number
  // The body's chunks: the first alone in `only` (a usual JSON answer is one chunk: no array), then `chunks`.
  private only: Buffer | undefined = undefined
  private chunks: Buffer[] | undefined = undefined
  private bytes = 0
  private head: Buffer | undefined
  private overflow = false

  constructor(
    private readonly dialect: UsageDialect,
    opts: JsonTapOptions = NO_OPTIONS
  ) {
    this.coding = codingOf(opts.contentEncoding)
    this.tailBytes = opts.tailBytes ?? 1024 * 1024
    this.maxEncoded = opts.maxEncodedBytes ?? 8 * 1024 * 1024
    this.maxDecoded = opts.maxDecodedBytes ?? 64 * 1024 * 1024
  }

  /** Keeps a reference to `chunk` (the caller must not reuse it). Never throws. */
  push(chunk: Buffer): void {
    if (this.overflow || this.coding === "unsupported") return
    if (this.chunks !== undefined) this.chunks.push(chunk)
    else if (this.only === undefined) this.only = chunk
    else {
      this.chunks = [this.only, chunk]
      this.only = undefined
    }
    this.bytes += chunk.length
    if (this.coding !== "identity") {
      // An encoded body cannot be read from its tail: past the limit, give up (no usage) rather than hold more.
      if (this.bytes > this.maxEncoded) {
        this.overflow = true
        this.only = undefined
        this.chunks = undefined
      }
      return
    }
    if (this.bytes <= HEAD_BYTES + this.tailBytes) return
    // Identity body grown large: keep its head (for the model) and a rolling tail (for the usage).
    const chunks = this.chunks
    if (chunks === undefined) {
      // one chunk larger than head + tail: its head is a view of it
      if (this.head === undefined && this.only !== undefined) this.head = this.only.subarray(0, HEAD_BYTES)
      return
    }
    if (this.head === undefined) this.head = Buffer.concat(chunks).subarray(0, HEAD_BYTES)
    while (chunks.length > 1 && this.bytes - chunks[0].length >= this.tailBytes) {
      this.bytes -= chunks[0].length
      chunks.shift()
    }
  }

  /**
   * The usage read from what was collected: at once for an identity body (no promise, so the log phase runs in
   * the same turn); a promise that resolves (never rejects) once an encoded body is decoded.
   */
  finish(): SseUsageResult | Promise<SseUsageResult> {
    const only = this.only
    const chunks = this.chunks
    this.only = undefined
    this.chunks = undefined
    if (this.overflow || this.coding === "unsupported") return NO_USAGE
    const body = only ?? (chunks === undefined ? undefined : chunks.length === 1 ? chunks[0] : Buffer.concat(chunks))
    if (body === undefined) return NO_USAGE
    if (this.coding === "identity") return usageFromJson(this.dialect, this.head ?? body, body)
    const dialect = this.dialect
    return decode(this.coding, body, this.maxDecoded).then((plain) =>
      plain === undefined ? NO_USAGE : usageFromJson(dialect, plain)
    )
  }
}
