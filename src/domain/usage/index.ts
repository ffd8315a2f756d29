// Token usage extraction (SPEC §10), for the request path's side path: which tap a response needs, and the taps.
// Nothing here imports the proxy or the services; every tap is one object per response with cheap per-chunk calls
// that never throw and never hold back what the client receives.
import { findString, StringMemo } from "./scan.js"
import type { UsageSource } from "./tap.js"
import { modelLabel as modelLabelOf } from "./usage.js"

export { injectStreamUsage } from "./inject.js"
export { type JsonTapOptions, JsonUsageTap, type UsageResult, usageFromJson } from "./json.js"
export { type SseUsageResult, SseUsageTap, type StreamKind } from "./sse.js"
export { isUsageOnlyChunk, StripUsageChunk, UsageChunkFilter } from "./strip.js"
export { createUsageTap, type ResponseUsageTap, type UsageSource } from "./tap.js"
export {
  addUsage,
  fromAnthropic,
  fromGemini,
  fromOpenAI,
  modelLabel,
  type Usage,
  type UsageDialect,
  zeroUsage
} from "./usage.js"
export {
  type DeflateParams,
  parseDeflateExtension,
  type RealtimeUsageResult,
  type WsTapOptions,
  WsUsageTap
} from "./websocket.js"

export type ProviderType = "openai" | "anthropic" | "gemini"

// Constants (a source is only read): no object per response.
const NONE: UsageSource = { kind: "none" }
const JSON_OPENAI: UsageSource = { kind: "json", dialect: "openai" }
const JSON_ANTHROPIC: UsageSource = { kind: "json", dialect: "anthropic" }
const JSON_GEMINI: UsageSource = { kind: "json", dialect: "gemini" }
const SSE_OPENAI_CHAT: UsageSource = { kind: "sse", stream: "openai-chat" }
const SSE_OPENAI_RESPONSES: UsageSource = { kind: "sse", stream: "openai-responses" }
const SSE_ANTHROPIC: UsageSource = { kind: "sse", stream: "anthropic" }
const SSE_GEMINI: UsageSource = { kind: "sse", stream: "gemini" }

/**
 * Which tap a response needs, from the provider's type, the request path (query removed) and the response's
 * content type. Anthropic's count_tokens and other non-generating endpoints (models, files) carry no usage.
 */
export const usageSource = (provider: ProviderType, path: string, contentType: string | undefined): UsageSource => {
  const type = contentType?.toLowerCase() ?? ""
  const sse = type.startsWith("text/event-stream")
  const json = type.startsWith("application/json")
  if (!sse && !json) return NONE
  if (provider === "openai") {
    if (path.endsWith("/chat/completions") || path.endsWith("/completions")) {
      return sse ? SSE_OPENAI_CHAT : JSON_OPENAI
    }
    if (path.endsWith("/responses")) {
      return sse ? SSE_OPENAI_RESPONSES : JSON_OPENAI
    }
    if (path.endsWith("/embeddings") && json) return JSON_OPENAI
    return NONE
  }
  if (provider === "anthropic") {
    if (!path.endsWith("/messages")) return NONE
    return sse ? SSE_ANTHROPIC : JSON_ANTHROPIC
  }
  const colon = path.lastIndexOf(":")
  const action = colon < 0 ? "" : path.slice(colon + 1)
  if (action === "generateContent" || action === "embedContent" || action === "batchEmbedContents") {
    return json ? JSON_GEMINI : NONE
  }
  if (action === "streamGenerateContent") {
    return sse ? SSE_GEMINI : JSON_GEMINI
  }
  return NONE
}

const MODEL = Buffer.from('"model"')
/** The last request model read: requests name the same few models, so most reads make no new string. */
const requestModels = new StringMemo()

/**
 * The request's model as a bounded label: Gemini names it in the path (`/v1beta/models/{model}:action`), the
 * others in the body's `"model"` (read without parsing the body: the first `"model"` key with a string value).
 */
export const requestModel = (provider: ProviderType, path: string, body: Buffer | undefined): string => {
  if (provider === "gemini") {
    const at = path.indexOf("/models/")
    const colon = path.indexOf(":", at + 8)
    if (at < 0 || colon < 0) return "unknown"
    let name = path.slice(at + 8, colon)
    try {
      name = decodeURIComponent(name)
    } catch {
      return "unknown"
    }
    return modelLabelOf(name)
  }
  if (body === undefined) return "unknown"
  return modelLabelOf(findString(body, MODEL, 0, body.length, requestModels))
}
