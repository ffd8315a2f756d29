// The `Limits` service (SPEC §12): the Limiter of the live config, for the request path's admit phase and the admin
// `/keys`. A store is opened only while some key has limits (no Redis connection otherwise); a reload that changes
// the store settings (`store`, `redis_url`, `redis_timeout`, `on_store_error`) opens the new Limiter first and
// swaps it in, and the old one is closed after the grace period (requests it admitted settle on it meanwhile); if
// the new one cannot be opened, the old one keeps serving. The memory store keeps its counts across reloads that do
// not change those settings. In a node:cluster worker `openLimiter` uses the primary's memory (the primary runs
// `serveClusterLimits`, src/lifecycle/primary.ts). Closed at shutdown, after the listeners drained.
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import * as SubscriptionRef from "effect/SubscriptionRef"
import type { ConfigSnapshot } from "../config/types.js"
import type { Limiter } from "../limits/limiter.js"
import { openLimiter } from "../limits/open.js"
import type { KeyUsage, LimitSpec } from "../limits/types.js"
import { plain } from "../log.js"
import type { LimitsControl } from "../proxy/phases/admit.js"
import { Config } from "./Config.js"
import * as Metrics from "./Metrics.js"

export interface LimitsService {
  /** For the request path (ProxyServices.limits). */
  readonly control: LimitsControl
  /** Per-key figures for `/keys` of the named keys (in order); rejects when the store cannot answer. */
  readonly inspect: (
    keys: ReadonlyArray<{ readonly name: string; readonly spec: LimitSpec }>
  ) => Promise<ReadonlyArray<KeyUsage>>
}

export class Limits extends Context.Tag("openproxy/Limits")<Limits, LimitsService>() {}

/** What decides the store: the same settings keep the same Limiter (and a memory store its counts). */
const storeIdentity = (c: ConfigSnapshot): string | undefined => {
  if (c.keyLimits.size === 0) return undefined
  const l = c.limits
  if (l.store === "memory") return "memory"
  return JSON.stringify([l.redisUrl === undefined ? "" : Redacted.value(l.redisUrl), l.redisTimeoutMs, l.onStoreError])
}

export const make = Effect.gen(function* () {
  const config = yield* Config
  const metrics = yield* Metrics.optional
  const log = yield* plain
  let snapshot = yield* SubscriptionRef.get(config.current)
  let identity: string | undefined
  let limiter: Limiter | undefined
  const retired = new Set<Limiter>()

  const m = Option.getOrUndefined(metrics)
  const open = (c: ConfigSnapshot) =>
    openLimiter(
      {
        store: c.limits.store,
        redisUrl: c.limits.redisUrl,
        redisTimeoutMs: c.limits.redisTimeoutMs,
        onStoreError: c.limits.onStoreError
      },
      { logger: log, onStoreFailure: m === undefined ? undefined : (op) => m.limitsStoreError(op) }
    )

  /** Follows a snapshot: opens, swaps or drops the Limiter when its store settings changed. */
  const use = (c: ConfigSnapshot) =>
    Effect.gen(function* () {
      snapshot = c
      const next = storeIdentity(c)
      if (next === identity) return
      let fresh: Limiter | undefined
      if (next !== undefined) {
        const r = yield* Effect.either(Effect.tryPromise(() => open(c)))
        if (r._tag === "Left") {
          log.log("error", "limits store not changed, keeping the old one", { error: String(r.left.cause) })
          return
        }
        fresh = r.right
      }
      const old = limiter
      limiter = fresh
      identity = next
      if (old !== undefined) {
        // Requests it admitted settle on it: close it once they had time to end.
        retired.add(old)
        const timer = setTimeout(() => {
          retired.delete(old)
          void old.close()
        }, c.gracefulShutdownTimeoutMs + 60_000)
        timer.unref()
      }
    })

  yield* use(snapshot)
  yield* Effect.addFinalizer(() =>
    Effect.promise(async () => {
      const all = [...retired, ...(limiter === undefined ? [] : [limiter])]
      retired.clear()
      limiter = undefined
      await Promise.all(all.map((l) => l.close().catch(() => undefined)))
    })
  )
  yield* config.current.changes.pipe(Stream.runForEach(use), Effect.forkScoped)

  m?.setSources({ limitsStoreUp: () => (limiter === undefined ? undefined : !limiter.stats().storeDown) })
  const control: LimitsControl = {
    limiter: () => limiter,
    defaultOutputTokens: () => snapshot.limits.defaultOutputTokens,
    refused: m === undefined ? undefined : (key, limit) => m.rateLimited(key, limit)
  }
  return {
    control,
    inspect: (keys) => (limiter === undefined || keys.length === 0 ? Promise.resolve([]) : limiter.inspect(keys))
  } satisfies LimitsService
})

export const layer: Layer.Layer<Limits, never, Config> = Layer.scoped(Limits, make)

/** The service when the layer is present (optional for embedding apps and unit tests). */
export const optional = Effect.serviceOption(Limits)
