// Builds the Limiter the config asks for (SPEC §12 `limits.*`): `memory` in a single process, the primary's memory
// in a node:cluster worker (the primary must run `serveClusterLimits`), or Redis. The one place that chooses a
// store, so the request path and the admin listener only see a Limiter.
import cluster from "node:cluster"
import type * as Redacted from "effect/Redacted"
import type { Logger } from "../log.js"
import { clusterStore } from "./cluster.js"
import { type Limiter, makeLimiter, type OnStoreError } from "./limiter.js"
import { memoryStore } from "./memory.js"
import { describeRedisUrl, redisStore } from "./redis.js"
import type { LimitStore } from "./types.js"

export interface LimitsSettings {
  /** `limits.store`, default `memory`. */
  readonly store?: "memory" | "redis"
  /** `limits.redis_url` (required for `redis`). */
  readonly redisUrl?: Redacted.Redacted<string>
  /** `limits.redis_timeout` in ms, default 50. */
  readonly redisTimeoutMs?: number
  /** `limits.on_store_error`, default `open`. */
  readonly onStoreError?: OnStoreError
}

export interface OpenLimiterOptions {
  readonly logger?: Logger
  readonly onStoreFailure?: (op: "admit" | "settle" | "inspect") => void
  readonly onStoreTransition?: (available: boolean) => void
  /** How long start-up waits for Redis before serving anyway (the policy applies meanwhile); default 1 s. */
  readonly redisReadyMs?: number
}

export const openLimiter = async (settings: LimitsSettings, options: OpenLimiterOptions = {}): Promise<Limiter> => {
  let store: LimitStore
  let storeName: string
  if (settings.store === "redis") {
    if (settings.redisUrl === undefined) throw new Error("limits.store redis needs limits.redis_url")
    storeName = describeRedisUrl(settings.redisUrl)
    const redis = await redisStore({ url: settings.redisUrl, timeoutMs: settings.redisTimeoutMs ?? 50 })
    if (!(await redis.ready(options.redisReadyMs ?? 1000))) {
      options.logger?.log("warn", "limits store not reachable yet", {
        store: storeName,
        on_store_error: settings.onStoreError ?? "open"
      })
    }
    store = redis
  } else if (cluster.isWorker) {
    store = clusterStore()
    storeName = "cluster primary"
  } else {
    store = memoryStore()
    storeName = "memory"
  }
  return makeLimiter({
    store,
    storeName,
    onStoreError: settings.onStoreError ?? "open",
    logger: options.logger,
    onStoreFailure: options.onStoreFailure,
    onStoreTransition: options.onStoreTransition
  })
}
