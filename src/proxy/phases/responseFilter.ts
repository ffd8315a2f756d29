// Phase 7, response filter (SPEC §10): the response head is relayed as it came; on the side, a usage tap for the
// responses that carry token usage (by provider type, path and content type: src/domain/usage), fed every body
// chunk as it passes to the client and read once at the end, never holding a byte back. When the proxy asked an
// OpenAI chat stream for its usage (usageInjection.ts), the usage-only chunk is taken out of what the client gets
// here too. The retry step's gates (responseGate.ts: a discarded retryable answer, a first-token hold) run before
// this phase, so a tap only ever sees the attempt the client receives.
//
// Cost matters (every LLM answer goes through here): nothing is made unless something reads usage (`usageWanted`),
// the taps of identity bodies finish synchronously (no promise before the log phase), and the state lives in the
// exchange's own fields, so a request costs the tap object and nothing more.
import type { ConfigSnapshot } from "../../config/types.js"
import {
  createUsageTap,
  type ResponseUsageTap,
  requestModel,
  type SseUsageResult,
  UsageChunkFilter,
  usageSource
} from "../../domain/usage/index.js"
import type { Exchange } from "../exchange.js"

/**
 * Whether anything reads an exchange's usage: the access log, the metrics (recorded while an admin listener is
 * configured: nothing else reads them), the settlement of limited keys (SPEC §12: exact usage, not the estimate).
 */
export const usageWanted = (snapshot: ConfigSnapshot): boolean =>
  snapshot.accessLog || snapshot.admin !== undefined || snapshot.keyLimits.size > 0

/** The exchange fields this phase writes (HttpExchange has them). */
export interface FilteredExchange extends Exchange {
  tap: ResponseUsageTap | undefined
  /** Removes the usage-only chunk the proxy asked for (set when the request was injected and the answer streams). */
  strip: UsageChunkFilter | undefined
  /** The request body was rewritten to ask for stream usage (usageInjection.ts). */
  injected: boolean
  /** Counted in `openproxy_open_streams` until the exchange ends. */
  streaming: boolean
}

/** One header of a relayed head: flat pairs (HTTP/1.1, any letter case) or an object (HTTP/2, lower-case). */
const headerValue = (
  headers: Array<string> | Record<string, string | Array<string>>,
  name: string
): string | undefined => {
  if (!Array.isArray(headers)) {
    const v = headers[name]
    return Array.isArray(v) ? v[0] : v
  }
  const len = name.length
  for (let i = 0; i < headers.length; i += 2) {
    const n = headers[i]
    if (n.length === len && (n === name || sameLower(n, name))) return headers[i + 1]
  }
  return undefined
}

/** Whether `n` lower-cased is `lower` (same length; ASCII letters only fold, as HTTP field names need): no copy. */
const sameLower = (n: string, lower: string): boolean => {
  for (let i = 0; i < n.length; i++) {
    const c = n.charCodeAt(i)
    if ((c >= 0x41 && c <= 0x5a ? c | 0x20 : c) !== lower.charCodeAt(i)) return false
  }
  return true
}

const isEventStream = (type: string | undefined): boolean =>
  type !== undefined && type.length >= 17 && type.charCodeAt(0) === 0x74 /* t */ && /^text\/event-stream/i.test(type)

/**
 * Sets up the filter for a response head about to be relayed: the open-streams gauge for an event stream, and
 * (when usage is read) the tap and the strip. The request's model is read at the end, off the response's path.
 */
export const filterResponse = (
  ex: FilteredExchange,
  status: number,
  headers: Array<string> | Record<string, string | Array<string>>
): void => {
  const contentType = headerValue(headers, "content-type")
  if (isEventStream(contentType) && ex.ctx.gauges !== undefined) {
    ex.streaming = true
    ex.ctx.gauges.streamOpened()
  }
  const type = ex.identity!.provider.type
  if (type === "forward" || ex.ctx.onEnd === undefined || !usageWanted(ex.router.snapshot)) return
  const full = ex.path
  const q = full.indexOf("?")
  const path = q < 0 ? full : full.slice(0, q)
  const source = usageSource(type, path, contentType)
  if (source.kind === "none") return
  const tap = createUsageTap(source, headerValue(headers, "content-encoding"))
  ex.tap = tap
  if (ex.injected && status === 200 && source.kind === "sse") ex.strip = new UsageChunkFilter()
}

const take = (ex: Exchange, r: SseUsageResult): void => {
  ex.usage = r.usage
  ex.responseModel = r.responseModel
  if (r.firstContentAt !== undefined) ex.ttftMs = r.firstContentAt - ex.startedAt
}

/**
 * At the end (whatever the outcome: a client that left gets the usage seen so far): the tap's figures and the
 * request's model (from the gathered body, or Gemini's path) into the exchange. Undefined when they are in; a
 * promise (never rejecting) only while an encoded body is decoded.
 */
export const finishResponse = (ex: FilteredExchange, requestBody: Buffer | undefined): Promise<void> | undefined => {
  if (ex.streaming) {
    ex.streaming = false
    ex.ctx.gauges?.streamClosed()
  }
  const tap = ex.tap
  if (tap === undefined) return undefined
  ex.tap = undefined
  const type = ex.identity!.provider.type as "openai" | "anthropic" | "gemini"
  const full = ex.path
  const q = full.indexOf("?")
  ex.model = requestModel(type, q < 0 ? full : full.slice(0, q), requestBody)
  const r = tap.finish()
  if (!(r instanceof Promise)) {
    take(ex, r)
    return undefined
  }
  return r.then((v) => take(ex, v))
}
