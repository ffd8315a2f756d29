// The request path's context as the running services assemble it (once per Listener): the services' parts, plus
// the log phase's sink — `Metrics.record` (while an admin listener is configured: nothing else reads the metrics)
// and the access log line (`access_log`, in the process's `--log-format`, on stdout) — read from the snapshot each
// exchange started with, so a reload applies to new requests; and, when the Metrics service is present, the live
// gauges. Built here so the request path (src/proxy) imports no service.
import * as Effect from "effect/Effect"
import * as FiberRef from "effect/FiberRef"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import type { ConfigSnapshot } from "../config/types.js"
import { accessOutput } from "../log.js"
import { makeAccessLog } from "../observability/accessLog.js"
import { makeRequestPath, type ProxyContext, type ProxyServices } from "../proxy/context.js"
import type { Exchange } from "../proxy/exchange.js"
import * as Limits from "./Limits.js"
import * as Metrics from "./Metrics.js"

/** How long an access line may wait to be written with the next ones (one write per batch, not per request). */
export const ACCESS_LOG_FLUSH_MS = 50

export const make = (services: ProxyServices): Effect.Effect<ProxyContext, never, Scope.Scope> =>
  Effect.gen(function* () {
    const metrics = Option.getOrUndefined(yield* Metrics.optional)
    const limits = Option.getOrUndefined(yield* Limits.optional)
    const out = yield* FiberRef.get(accessOutput)
    const access = makeAccessLog(out.format, out.write, ACCESS_LOG_FLUSH_MS, out.writeBytes)
    // The lines of the last turn, once the listener has drained (its finalizer runs before this one).
    yield* Effect.addFinalizer(() => Effect.sync(access.flush))
    // The exchanges' clock reads (start, response head) serve exactly what onEnd below writes: the metrics (with an
    // admin listener) and the access line. A limited key's settlement needs no clock (ProxyContext.timed).
    const timed = (s: ConfigSnapshot): boolean => s.accessLog || (metrics !== undefined && s.admin !== undefined)
    const onEnd = (ex: Exchange): void => {
      const snapshot = ex.router.snapshot
      const record = metrics !== undefined && snapshot.admin !== undefined
      if (!record && !snapshot.accessLog) return
      const durationMs = performance.now() - ex.startedAt
      if (record) metrics.recordEnd(ex, durationMs)
      if (snapshot.accessLog) access.writeExchange(ex, durationMs)
    }
    return makeRequestPath({
      ...services,
      gauges: metrics?.live,
      onEnd,
      timed,
      limits: limits?.control,
      onRetry: metrics?.retry,
      onCooldown: metrics?.cooldown
    })
  })
