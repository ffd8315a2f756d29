// What a client sees of the limits (SPEC §12): the `x-ratelimit-*` headers (OpenAI's names and duration format),
// `Retry-After` (whole seconds) plus `retry-after-ms` (the OpenAI SDK prefers it), and a 429 body in the shape the
// provider type's official SDK parses into its own rate-limit error class. Also the token estimate a request
// reserves at admission.
import type { Admission, LimitName, RateFigures } from "./types.js"

/** A duration as OpenAI writes it in `x-ratelimit-reset-*` (Go's format): `20ms`, `1.5s`, `6m0s`, `1h2m3s`. */
export const formatDuration = (ms: number): string => {
  const t = Math.max(0, Math.round(ms))
  if (t < 1000) return `${t}ms`
  const h = Math.floor(t / 3_600_000)
  const m = Math.floor((t % 3_600_000) / 60_000)
  const s = `${Number(((t % 60_000) / 1000).toFixed(3))}s`
  if (h > 0) return `${h}h${m}m${s}`
  if (m > 0) return `${m}m${s}`
  return s
}

/** The `x-ratelimit-*` headers of the figures (only those of configured limits). */
export const rateLimitHeaders = (f: RateFigures): Array<[string, string]> => {
  const out: Array<[string, string]> = []
  if (f.limitRequests >= 0) {
    out.push(["x-ratelimit-limit-requests", String(f.limitRequests)])
    out.push(["x-ratelimit-remaining-requests", String(f.remainingRequests)])
    out.push(["x-ratelimit-reset-requests", formatDuration(f.resetRequestsMs)])
  }
  if (f.limitTokens >= 0) {
    out.push(["x-ratelimit-limit-tokens", String(f.limitTokens)])
    out.push(["x-ratelimit-remaining-tokens", String(f.remainingTokens)])
    out.push(["x-ratelimit-reset-tokens", formatDuration(f.resetTokensMs)])
  }
  return out
}

type Refused = Extract<Admission, { _tag: "Refused" }>

/** Every header of a 429 refusal. */
export const refusalHeaders = (a: Refused): Array<[string, string]> => [
  ["retry-after", String(a.retryAfterSeconds)],
  ["retry-after-ms", String(Math.max(1, Math.round(a.retryAfterMs)))],
  ...rateLimitHeaders(a.figures)
]

const describe: Record<LimitName, string> = {
  concurrent_requests: "concurrent requests",
  requests_per_minute: "requests per minute",
  tokens_per_minute: "tokens per minute",
  tokens_per_day: "tokens per day (UTC)",
  tokens_per_month: "tokens per month (UTC)"
}

/** The refusal's message: which limit, and when to retry; never the key itself. */
export const refusalMessage = (keyName: string, a: Refused): string =>
  `Rate limit reached for key "${keyName}" on ${describe[a.limit]}: try again in ${a.retryAfterSeconds}s.`

/**
 * The 429 body each SDK maps to its rate-limit error: OpenAI `RateLimitError`, Anthropic `RateLimitError`,
 * Google GenAI `ApiError` with status 429 (`RESOURCE_EXHAUSTED`). `forward` providers get the OpenAI shape.
 */
export const refusalBody = (providerType: "openai" | "anthropic" | "gemini" | "forward", message: string): string => {
  switch (providerType) {
    case "anthropic":
      return JSON.stringify({ type: "error", error: { type: "rate_limit_error", message } })
    case "gemini":
      return JSON.stringify({ error: { code: 429, message, status: "RESOURCE_EXHAUSTED" } })
    default:
      return JSON.stringify({
        error: { message, type: "rate_limit_exceeded", param: null, code: "rate_limit_exceeded" }
      })
  }
}

/**
 * Tokens to reserve at admission: the requested output cap (`max_tokens`, `max_completion_tokens`,
 * `max_output_tokens`, `maxOutputTokens`; else `defaultOutputTokens`) plus the input estimated from the body size
 * (about 4 bytes per token, OpenAI's rule of thumb). Settlement corrects it to the exact usage.
 */
export const estimateTokens = (bodyBytes: number, maxOutputTokens: number | undefined, defaultOutputTokens: number) =>
  Math.ceil(Math.max(0, bodyBytes) / 4) +
  (maxOutputTokens !== undefined && maxOutputTokens >= 0 ? maxOutputTokens : defaultOutputTokens)
