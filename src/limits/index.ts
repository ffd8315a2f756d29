// The limits engine (SPEC §12), self-contained: a Limiter with the `on_store_error` policy over one of three
// stores (memory, the node:cluster primary's memory, Redis), and what a refusal looks like. docs/limits.md
// describes the algorithm, the stores and their failure modes.

export type { ClusterLimitsServer } from "./cluster.js"
export { clusterStore, serveClusterLimits } from "./cluster.js"
export { figuresOf, isUnlimited, usageOf } from "./figures.js"
export {
  estimateTokens,
  formatDuration,
  rateLimitHeaders,
  refusalBody,
  refusalHeaders,
  refusalMessage
} from "./headers.js"
export type { Limiter, LimiterOptions, LimiterStats, OnStoreError } from "./limiter.js"
export { makeLimiter } from "./limiter.js"
export { MemoryEngine, memoryStore } from "./memory.js"
export type { LimitsSettings, OpenLimiterOptions } from "./open.js"
export { openLimiter } from "./open.js"
export type { RedisStore, RedisStoreOptions } from "./redis.js"
export { describeRedisUrl, redisStore } from "./redis.js"
export type * from "./types.js"
export { WINDOW_MS } from "./types.js"
