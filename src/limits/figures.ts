// From a store's raw counts to what clients and operators see: the `x-ratelimit-*` figures of an admission and
// the per-key figures of the admin `/keys` endpoint. One function for every store, so they cannot disagree.
import { type Counts, type Figure, type KeyUsage, type LimitSpec, type RateFigures, WINDOW_MS } from "./types.js"

const untilLeaves = (oldest: number, now: number): number => (oldest < 0 ? 0 : Math.max(0, oldest + WINDOW_MS - now))

const figure = (limit: number | undefined, used: number, resetMs: number): Figure =>
  limit === undefined
    ? { limit: null, used: 0, remaining: null, resetMs: 0 }
    : { limit, used, remaining: Math.max(0, limit - used), resetMs }

/** Per-key figures for `/keys`. */
export const usageOf = (name: string, spec: LimitSpec, c: Counts): KeyUsage => ({
  name,
  requestsPerMinute: figure(spec.requestsPerMinute, c.requests, untilLeaves(c.requestsOldest, c.now)),
  tokensPerMinute: figure(spec.tokensPerMinute, c.tokens, untilLeaves(c.tokensOldest, c.now)),
  concurrentRequests: figure(spec.concurrentRequests, c.concurrent, 0),
  tokensPerDay: figure(spec.tokensPerDay, c.dayTokens, Math.max(0, c.dayEnd - c.now)),
  tokensPerMonth: figure(spec.tokensPerMonth, c.monthTokens, Math.max(0, c.monthEnd - c.now))
})

/** The `x-ratelimit-*` figures: requests per minute, and the token limit with the least room left. */
export const figuresOf = (spec: LimitSpec, c: Counts): RateFigures => {
  let limitTokens = -1
  let remainingTokens = -1
  let resetTokensMs = 0
  const consider = (limit: number | undefined, used: number, reset: number) => {
    if (limit === undefined) return
    const remaining = Math.max(0, limit - used)
    if (limitTokens < 0 || remaining < remainingTokens) {
      limitTokens = limit
      remainingTokens = remaining
      resetTokensMs = reset
    }
  }
  consider(spec.tokensPerMinute, c.tokens, untilLeaves(c.tokensOldest, c.now))
  consider(spec.tokensPerDay, c.dayTokens, Math.max(0, c.dayEnd - c.now))
  consider(spec.tokensPerMonth, c.monthTokens, Math.max(0, c.monthEnd - c.now))
  const rpm = spec.requestsPerMinute
  return {
    limitRequests: rpm ?? -1,
    remainingRequests: rpm === undefined ? -1 : Math.max(0, rpm - c.requests),
    resetRequestsMs: rpm === undefined ? 0 : untilLeaves(c.requestsOldest, c.now),
    limitTokens,
    remainingTokens,
    resetTokensMs
  }
}

/** True when no field is set: such a key never reaches a store. */
export const isUnlimited = (spec: LimitSpec): boolean =>
  spec.requestsPerMinute === undefined &&
  spec.tokensPerMinute === undefined &&
  spec.concurrentRequests === undefined &&
  spec.tokensPerDay === undefined &&
  spec.tokensPerMonth === undefined
