// How long a provider asks a key to back off (SPEC §11): the cool-down named by a failed response's headers.
// Only a 429, or a 503/529 that carries `Retry-After` (or `retry-after-ms`), cools a key down. Sources, first
// found wins: `retry-after-ms` (OpenAI SDKs prefer it), `Retry-After` (seconds or an HTTP-date), then the largest
// of the rate-limit reset headers: OpenAI's `x-ratelimit-reset-requests`/`-tokens` (Go durations such as `20ms`,
// `1s`, `6m0s`) and Anthropic's `anthropic-ratelimit-*-reset` (RFC 3339 times). The result is capped by
// `retry.max_cooldown`; a 429 that names none cools for 1 s. Runs on failed responses only; never throws.

/** Header pairs as undici's `onHeaders` gives them (Buffers) or node:http's `rawHeaders` (strings). */
export type RawHeaders = ReadonlyArray<Buffer | string>

/** Where a cool-down came from (for logs). */
export type CooldownSource = "retry-after-ms" | "retry-after" | "ratelimit-reset" | "default"

export interface Cooldown {
  readonly ms: number
  readonly source: CooldownSource
}

/** A 429 without any named time. */
export const DEFAULT_COOLDOWN_MS = 1_000

const GO_DURATION = /^(?:(\d+(?:\.\d*)?|\.\d+)(ms|us|µs|ns|h|m|s))+$/
const GO_PART = /(\d+(?:\.\d*)?|\.\d+)(ms|us|µs|ns|h|m|s)/g
const UNIT_MS: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1, us: 0.001, µs: 0.001, ns: 1e-6 }
const NUMBER = /^\d+(?:\.\d+)?$/
/** Bare numbers above this are Unix times in seconds, not durations (some providers send those). */
const EPOCH_SECONDS = 1_000_000_000

/** Milliseconds from a Go duration (`1h2m3.5s`, `20ms`), a bare number of seconds or a Unix time; else NaN. */
export const parseResetDuration = (value: string, nowMs: number): number => {
  const v = value.trim()
  if (NUMBER.test(v)) {
    const n = Number(v)
    return n >= EPOCH_SECONDS ? n * 1000 - nowMs : n * 1000
  }
  if (v.length > 64 || !GO_DURATION.test(v)) return Number.NaN
  let ms = 0
  for (const m of v.matchAll(GO_PART)) ms += Number(m[1]) * UNIT_MS[m[2]]
  return ms
}

/** Milliseconds from `Retry-After`: delay-seconds or an HTTP-date (RFC 9110 §10.2.3); else NaN. */
export const parseRetryAfter = (value: string, nowMs: number): number => {
  const v = value.trim()
  if (NUMBER.test(v)) return Number(v) * 1000
  // An HTTP-date always names a weekday and GMT; anything else Date.parse might accept is not one.
  if (v.length > 40 || !v.endsWith("GMT")) return Number.NaN
  const t = Date.parse(v)
  return Number.isNaN(t) ? Number.NaN : t - nowMs
}

/** Milliseconds until an RFC 3339 time (`2026-11-30T04:00:00Z`); else NaN. */
export const parseResetTime = (value: string, nowMs: number): number => {
  const v = value.trim()
  if (v.length > 40 || !/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)$/i.test(v)) return Number.NaN
  const t = Date.parse(v)
  return Number.isNaN(t) ? Number.NaN : t - nowMs
}

const text = (b: Buffer | string): string => (typeof b === "string" ? b : b.toString("latin1"))

/**
 * The cool-down a failed response asks for, or undefined when it asks for none (not a 429, or a 503/529 without
 * `Retry-After`). Capped by `maxCooldownMs`; never negative (a date in the past is 0).
 */
export const cooldownOf = (
  status: number,
  raw: RawHeaders,
  nowMs: number,
  maxCooldownMs: number
): Cooldown | undefined => {
  if (status !== 429 && status !== 503 && status !== 529) return undefined
  let retryAfterMs = Number.NaN
  let retryAfter = Number.NaN
  let reset = Number.NaN
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = text(raw[i]).toLowerCase()
    if (name === "retry-after-ms") {
      const v = text(raw[i + 1]).trim()
      if (NUMBER.test(v)) retryAfterMs = Number(v)
    } else if (name === "retry-after") {
      retryAfter = parseRetryAfter(text(raw[i + 1]), nowMs)
    } else if (name === "x-ratelimit-reset-requests" || name === "x-ratelimit-reset-tokens") {
      const ms = parseResetDuration(text(raw[i + 1]), nowMs)
      if (!Number.isNaN(ms) && !(ms <= reset)) reset = ms
    } else if (name.startsWith("anthropic-ratelimit-") && name.endsWith("-reset")) {
      const ms = parseResetTime(text(raw[i + 1]), nowMs)
      if (!Number.isNaN(ms) && !(ms <= reset)) reset = ms
    }
  }
  const named = !Number.isNaN(retryAfterMs) || !Number.isNaN(retryAfter)
  if (status !== 429 && !named) return undefined
  const cap = (ms: number, source: CooldownSource): Cooldown => ({
    ms: Math.min(maxCooldownMs, Math.max(0, Math.ceil(ms))),
    source
  })
  if (!Number.isNaN(retryAfterMs)) return cap(retryAfterMs, "retry-after-ms")
  if (!Number.isNaN(retryAfter)) return cap(retryAfter, "retry-after")
  if (!Number.isNaN(reset)) return cap(reset, "ratelimit-reset")
  return cap(DEFAULT_COOLDOWN_MS, "default")
}
