// The limits engine's vocabulary (SPEC §12): what a key may use, what an admission answers, and the one interface
// every store (memory, node:cluster primary, Redis) implements. Plain data and Promises: the request path calls
// it once at admission and once at the end, outside Effect (bytes and per-request work stay out of Effect).

/** Per-key limits; an absent field is unlimited. Token figures are input + output tokens (SPEC §10 usage). */
export interface LimitSpec {
  readonly requestsPerMinute?: number | undefined
  readonly tokensPerMinute?: number | undefined
  readonly concurrentRequests?: number | undefined
  /** UTC calendar day. */
  readonly tokensPerDay?: number | undefined
  /** UTC calendar month. */
  readonly tokensPerMonth?: number | undefined
}

/** The config names of the limits, as a refusal reports them. */
export type LimitName =
  | "concurrent_requests"
  | "requests_per_minute"
  | "tokens_per_minute"
  | "tokens_per_day"
  | "tokens_per_month"

/** Length of the sliding rate windows. */
export const WINDOW_MS = 60_000

/**
 * The raw state of one key right after an admission attempt (or at introspection), from which the
 * `x-ratelimit-*` figures are computed the same way for every store. Times are epoch milliseconds on the store's
 * clock; `-1` means "no entry" (an empty window) or "not tracked" (that limit is not configured).
 */
export interface Counts {
  readonly now: number
  /** Admissions in the last minute, and the time of the oldest of them. */
  readonly requests: number
  readonly requestsOldest: number
  /** Tokens (reserved or settled) of the admissions in the last minute, and the time of the oldest entry. */
  readonly tokens: number
  readonly tokensOldest: number
  readonly concurrent: number
  readonly dayTokens: number
  readonly dayEnd: number
  readonly monthTokens: number
  readonly monthEnd: number
}

/** The figures behind `x-ratelimit-{limit,remaining,reset}-{requests,tokens}`; `limit` -1: no such limit. */
export interface RateFigures {
  readonly limitRequests: number
  readonly remainingRequests: number
  /** Milliseconds until the oldest counted request leaves the window (one more request fits); 0 when empty. */
  readonly resetRequestsMs: number
  /** The token limit with the least room left (per minute, per day or per month). */
  readonly limitTokens: number
  readonly remainingTokens: number
  readonly resetTokensMs: number
}

/**
 * What an admitted request holds until its end. Exactly one of `settle`/`release` must follow (a second call is a
 * no-op, so a finaliser may call it unconditionally). Each store extends it with what it needs to undo.
 */
export interface Reservation {
  readonly key: string
  /** Set by the first settle/release. */
  done: boolean
  /** No store counted this request (no limits, or the store failed under `on_store_error: open`). */
  readonly unmetered?: true
}

export type Admission =
  | {
      readonly _tag: "Admitted"
      readonly reservation: Reservation
      /** Absent when no store answered (open policy while the store is unreachable) or no limit is configured. */
      readonly figures: RateFigures | undefined
    }
  | {
      readonly _tag: "Refused"
      /** The limit that keeps the request out longest. */
      readonly limit: LimitName
      readonly retryAfterMs: number
      /** Whole seconds for `Retry-After` (rounded up, at least 1). */
      readonly retryAfterSeconds: number
      readonly figures: RateFigures
    }
  | {
      /** The store is unreachable or slow and `on_store_error: closed`: the request path answers 503. */
      readonly _tag: "StoreError"
    }

/** One key's figures for the admin `/keys` endpoint; `limit` null: unlimited (then `used` is not tracked: 0). */
export interface Figure {
  readonly limit: number | null
  readonly used: number
  readonly remaining: number | null
  /** Milliseconds until the window's oldest entry leaves it, or until the period ends. */
  readonly resetMs: number
}

export interface KeyUsage {
  readonly name: string
  readonly requestsPerMinute: Figure
  readonly tokensPerMinute: Figure
  readonly concurrentRequests: Figure
  readonly tokensPerDay: Figure
  readonly tokensPerMonth: Figure
}

/**
 * A place where the counts live. `admit` is one atomic step (check every limit, then count); `settle` replaces a
 * reservation's token estimate with the exact usage and frees its concurrency slot; `release` is `settle` with
 * zero tokens (the request count stays: the request was made). Stores reject (throw) when they cannot answer;
 * the Limiter turns that into the `on_store_error` policy.
 */
export interface LimitStore {
  readonly admit: (key: string, spec: LimitSpec, estimateTokens: number, now: number) => Promise<StoreAdmission>
  readonly settle: (reservation: Reservation, exactTokens: number) => Promise<void>
  readonly inspect: (key: string, now: number) => Promise<Counts>
  readonly close: () => Promise<void>
}

/** A store's answer: the Limiter adds the policy and the refusal's seconds. */
export type StoreAdmission =
  | { readonly admitted: true; readonly reservation: Reservation; readonly counts: Counts }
  | { readonly admitted: false; readonly limit: LimitName; readonly retryAfterMs: number; readonly counts: Counts }
