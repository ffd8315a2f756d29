// One usage tap per response, whatever its format: the request path picks the source once (index.ts
// `usageSource`), creates the tap when the response head arrives, pushes every body chunk as it passes to the
// client, and calls `finish` once at the end (also after a client abort: the usage seen so far).
// An encoded event stream (gzip/deflate/br, rare: the providers send SSE unencoded) is decoded on the side by a
// node:zlib stream; its first content is then timed when the decoder hands the event over, a little later than
// the bytes passed.
import type { Transform } from "node:stream"
import { createBrotliDecompress, createGunzip, createInflate } from "node:zlib"
import { JsonUsageTap } from "./json.js"
import { type SseUsageResult, SseUsageTap, type StreamKind } from "./sse.js"
import type { UsageDialect } from "./usage.js"

export type UsageSource =
  | { kind: "json"; dialect: UsageDialect }
  | { kind: "sse"; stream: StreamKind }
  | { kind: "none" }

export interface ResponseUsageTap {
  /** never throws, never holds the chunk back; keeps a reference to it (do not reuse the buffer) */
  push(chunk: Buffer): void
  /**
   * What was seen (never throws or rejects); `firstContentAt` is undefined for JSON answers. A plain value for
   * identity bodies (JSON and SSE), so the caller needs no promise hop; a promise only when a gzip/deflate/br body
   * is still being decoded.
   */
  finish(): SseUsageResult | Promise<SseUsageResult>
}

class DecodedSseTap implements ResponseUsageTap {
  private readonly ended: Promise<void>
  constructor(
    private readonly tap: SseUsageTap,
    private readonly decoder: Transform
  ) {
    decoder.on("data", (d: Buffer) => tap.push(d))
    this.ended = new Promise((resolve) => {
      decoder.on("end", resolve)
      decoder.on("error", () => resolve()) // a cut or corrupt stream: keep what was decoded
    })
  }
  push(chunk: Buffer): void {
    if (!this.decoder.destroyed) this.decoder.write(chunk)
  }
  async finish(): Promise<SseUsageResult> {
    this.decoder.end()
    await this.ended
    return this.tap.finish()
  }
}

const decoderFor = (coding: string): Transform | undefined =>
  coding === "gzip" || coding === "x-gzip"
    ? createGunzip()
    : coding === "deflate"
      ? createInflate()
      : coding === "br"
        ? createBrotliDecompress()
        : undefined

/**
 * The tap for a response, or undefined when it has no usage to read (`kind: "none"`, an encoding node:zlib does
 * not decode). `now` is the clock for the first content event (default `performance.now`).
 */
export const createUsageTap = (
  source: UsageSource,
  contentEncoding: string | undefined,
  now?: () => number
): ResponseUsageTap | undefined => {
  if (source.kind === "none") return undefined
  // The JSON and identity SSE taps are returned as they are (one object per response, no wrapper).
  if (source.kind === "json") {
    const tap = new JsonUsageTap(source.dialect, { contentEncoding })
    return tap.coding === "unsupported" ? undefined : tap
  }
  const tap = new SseUsageTap(source.stream, now)
  if (contentEncoding === undefined) return tap
  const coding = contentEncoding.trim().toLowerCase()
  if (coding === "" || coding === "identity") return tap
  const decoder = decoderFor(coding)
  return decoder === undefined ? undefined : new DecodedSseTap(tap, decoder)
}
