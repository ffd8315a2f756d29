// What the admin API reports about one proxy process (SPEC §10), computed from its services: readiness,
// providers with health and in-flight counts, client key names. Used by this process's admin listener, or sent
// to the cluster primary when the process is a worker.
import * as Redacted from "effect/Redacted"
import type { ConfigSnapshot } from "../config/types.js"
import type { CooldownRegistry } from "../domain/retry/index.js"
import type { Router } from "../domain/router.js"
import type { Figure, KeyUsage, LimitSpec } from "../limits/types.js"
import type { UpstreamPools } from "../proxy/upstreams.js"
import type { HealthCheckerService } from "../services/HealthChecker.js"
import type { KeyView, LimitFigure, ProviderView, Readiness } from "./adminHttp.js"
import { keyCooldowns } from "./cooldownView.js"
import { providerLabel } from "./labels.js"

/** A route: what a provider's `host` routing key matches (name, port, prefix). */
const routeOf = (p: ConfigSnapshot["providers"][number]): string =>
  `${p.host.name}${p.host.port === undefined ? "" : `:${p.host.port}`}${p.host.pathPrefix}`

/** Ready when listeners are bound and every route has at least one provider that may be selected now. */
export const readiness = (router: Router, health: HealthCheckerService, listening: boolean): Readiness => {
  if (!listening) return { ready: false, reason: "no listener bound" }
  const routes = new Map<string, boolean>()
  router.snapshot.providers.forEach((p, i) => {
    const route = routeOf(p)
    routes.set(route, (routes.get(route) ?? false) || health.isHealthy(router.providerIds[i]))
  })
  for (const [route, healthy] of routes) {
    if (!healthy) return { ready: false, reason: `no healthy provider for ${route}` }
  }
  return { ready: true, reason: "" }
}

export const providerViews = (
  router: Router,
  health: HealthCheckerService,
  pools: UpstreamPools,
  cooldowns?: CooldownRegistry,
  nowMs: number = Date.now()
): ReadonlyArray<ProviderView> =>
  router.snapshot.providers.map((p, i) => {
    const id = router.providerIds[i]
    const s = health.state(id)
    const lastError = s?.lastError
    return {
      id,
      index: p.index,
      host: p.hostRaw,
      endpoint: `${p.endpointHost.includes(":") ? `[${p.endpointHost}]` : p.endpointHost}:${p.endpointPort}`,
      type: p.type,
      healthy: health.isHealthy(id),
      weight: p.weight,
      inflight: pools.inflightTo(p),
      last_error: lastError ?? null,
      last_error_at: lastError === undefined ? null : new Date(s?.lastErrorAt ?? 0).toISOString(),
      cooling: keyCooldowns(cooldowns, id, p.keys.length, nowMs)
    }
  })

/** Names of the configured client keys and where each is accepted; never a key. */
export const keyViews = (c: ConfigSnapshot): ReadonlyArray<KeyView> => {
  const global = new Set(c.authKeys.map(Redacted.value))
  return c.clientKeys.map((k) => {
    const value = Redacted.value(k.key)
    if (global.has(value)) return { name: k.name, providers: "all" as const }
    const providers = c.providers.filter((p) => p.authKeys.some((a) => Redacted.value(a) === value))
    return { name: k.name, providers: providers.map(providerLabel) }
  })
}

const figure = (f: Figure): LimitFigure => ({
  limit: f.limit,
  used: f.used,
  remaining: f.remaining,
  reset_ms: f.resetMs
})

/** The keys of `keyViews` with their limits' figures now (SPEC §12), from `inspect` (the Limits service). */
export const keyViewsWithLimits = async (
  c: ConfigSnapshot,
  inspect: (
    keys: ReadonlyArray<{ readonly name: string; readonly spec: LimitSpec }>
  ) => Promise<ReadonlyArray<KeyUsage>>
): Promise<ReadonlyArray<KeyView>> => {
  const views = keyViews(c)
  const limited = c.clientKeys.flatMap((k) => {
    const spec = c.keyLimits.get(k.name)
    return spec === undefined ? [] : [{ name: k.name, spec }]
  })
  let usage: Map<string, KeyUsage> | undefined
  try {
    usage = new Map((await inspect(limited)).map((u) => [u.name, u]))
  } catch {
    usage = undefined
  }
  return views.map((v): KeyView => {
    if (!c.keyLimits.has(v.name)) return { ...v, limits: null }
    const u = usage?.get(v.name)
    if (u === undefined) return { ...v, limits_error: "limits store unavailable" }
    return {
      ...v,
      limits: {
        requests_per_minute: figure(u.requestsPerMinute),
        tokens_per_minute: figure(u.tokensPerMinute),
        concurrent_requests: figure(u.concurrentRequests),
        tokens_per_day: figure(u.tokensPerDay),
        tokens_per_month: figure(u.tokensPerMonth)
      }
    }
  })
}
