// The `HealthChecker` service: which providers may be selected (SPEC §6). Holds per-provider state keyed by
// the provider id (stable across reloads for unchanged providers). Passive ejection: a provider whose
// connections fail `PASSIVE_FAILURES` times in a row leaves selection for `health_check.cooldown`.
// Active checks (when enabled): one probe fiber per provider in a `FiberMap`, `Schedule.spaced(interval)`, each
// probe bounded by `timeout`; a reload keeps unchanged providers' fibers (and state), stops gone ones, starts new ones.
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as FiberMap from "effect/FiberMap"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as SubscriptionRef from "effect/SubscriptionRef"
import type { ConfigSnapshot, HealthCheckSettings, ProviderConfig } from "../config/types.js"
import type { KeyResolver } from "../domain/keys.js"
import { type HealthReporter, providerIdOf } from "../domain/providers.js"
import { plain } from "../log.js"
import { Config } from "./Config.js"
import { makeProbe, type Probe, probeTarget } from "./HealthProbe.js"
import * as Metrics from "./Metrics.js"
import * as ProviderKeys from "./ProviderKeys.js"

/** Consecutive connect failures that eject a provider passively. */
export const PASSIVE_FAILURES = 3

export interface ProviderHealth {
  /** Result of active checks (true until a check says otherwise). */
  activeHealthy: boolean
  consecutiveConnectFailures: number
  /** Epoch ms until which passive ejection keeps the provider out. */
  ejectedUntil: number
  /** Active check results in a row (reset by the other outcome), for the thresholds. */
  activeSuccesses: number
  activeFailures: number
  /** What went wrong last (for the admin API): a failed upstream connection or a failed active probe. */
  lastError: "connect" | "health_check" | undefined
  lastErrorAt: number
}

export interface HealthCheckerService {
  /** Synchronous: read on the request path. */
  readonly isHealthy: (providerId: string) => boolean
  readonly reporter: HealthReporter
  /** Current state, for checks and the `check` summary. */
  readonly state: (providerId: string) => ProviderHealth | undefined
  /** Records an active check result (used by the active prober). */
  readonly setActive: (providerId: string, healthy: boolean) => void
}

export class HealthChecker extends Context.Tag("openproxy/HealthChecker")<HealthChecker, HealthCheckerService>() {}

/** The state plus what the active prober needs: threshold bookkeeping and forgetting gone providers. */
export interface HealthState extends HealthCheckerService {
  /** Records one active check result; returns the provider's active health afterwards. */
  readonly recordActive: (providerId: string, ok: boolean, settings: HealthCheckSettings) => boolean
  /** Drops the state of providers not in `keep` (gone after a reload). */
  readonly retain: (keep: ReadonlySet<string>) => void
  /** Active checks turned off: every provider is actively healthy again (passive ejection stays). */
  readonly resetActive: () => void
}

export const makeState = (cooldownMs: () => number): HealthState => {
  const states = new Map<string, ProviderHealth>()
  const get = (id: string): ProviderHealth => {
    let s = states.get(id)
    if (s === undefined) {
      s = {
        activeHealthy: true,
        consecutiveConnectFailures: 0,
        ejectedUntil: 0,
        activeSuccesses: 0,
        activeFailures: 0,
        lastError: undefined,
        lastErrorAt: 0
      }
      states.set(id, s)
    }
    return s
  }
  return {
    isHealthy: (id) => {
      const s = states.get(id)
      return s === undefined || (s.activeHealthy && s.ejectedUntil <= Date.now())
    },
    state: (id) => states.get(id),
    recordActive: (id, ok, settings) => {
      const s = get(id)
      if (ok) {
        s.activeFailures = 0
        s.activeSuccesses++
        if (!s.activeHealthy && s.activeSuccesses >= settings.healthyThreshold) s.activeHealthy = true
        // A successful active check ends a passive cool-down early (SPEC §6).
        if (s.activeHealthy) {
          s.ejectedUntil = 0
          s.consecutiveConnectFailures = 0
        }
      } else {
        s.activeSuccesses = 0
        s.activeFailures++
        s.lastError = "health_check"
        s.lastErrorAt = Date.now()
        if (s.activeHealthy && s.activeFailures >= settings.unhealthyThreshold) s.activeHealthy = false
      }
      return s.activeHealthy
    },
    retain: (keep) => {
      for (const id of states.keys()) if (!keep.has(id)) states.delete(id)
    },
    resetActive: () => {
      for (const s of states.values()) {
        s.activeHealthy = true
        s.activeSuccesses = 0
        s.activeFailures = 0
      }
    },
    setActive: (id, healthy) => {
      const s = get(id)
      s.activeHealthy = healthy
      // A successful active check ends a passive cool-down early (SPEC §6).
      if (healthy) {
        s.ejectedUntil = 0
        s.consecutiveConnectFailures = 0
      }
    },
    reporter: {
      connectFailed: (id) => {
        const s = get(id)
        s.consecutiveConnectFailures++
        s.lastError = "connect"
        s.lastErrorAt = Date.now()
        if (s.consecutiveConnectFailures >= PASSIVE_FAILURES) {
          s.ejectedUntil = Date.now() + cooldownMs()
          s.consecutiveConnectFailures = 0
        }
      },
      connected: (id) => {
        const s = states.get(id)
        if (s !== undefined) s.consecutiveConnectFailures = 0
      }
    }
  }
}

/** What a probe fiber is keyed by: the provider id plus everything that changes how it is probed. */
const probeKey = (id: string, p: ProviderConfig, hc: HealthCheckSettings): string =>
  `${id}|${hc.intervalMs}|${hc.timeoutMs}|${hc.unhealthyThreshold}|${hc.healthyThreshold}|${JSON.stringify(p.healthCheck ?? null)}`

/**
 * Runs the active checks for the live snapshot: one fiber per provider in a FiberMap, kept across snapshots while
 * its key is unchanged. Returns when the scope closes (the fibers are interrupted with it).
 */
export const runActiveChecks = (
  health: HealthState,
  snapshots: Stream.Stream<ConfigSnapshot>,
  probe: Probe
): Effect.Effect<void, never, Scope.Scope> =>
  Effect.gen(function* () {
    const logger = yield* plain
    const fibers = yield* FiberMap.make<string>()
    const running = new Set<string>()
    const checkOnce = (id: string, p: ProviderConfig, snapshot: ConfigSnapshot) => {
      const hc = snapshot.healthCheck
      return probe(p, snapshot).pipe(
        Effect.timeoutTo({ duration: hc.timeoutMs, onSuccess: (ok) => ok, onTimeout: () => false }),
        Effect.flatMap((ok) =>
          Effect.sync(() => {
            const before = health.state(id)?.activeHealthy ?? true
            const after = health.recordActive(id, ok, hc)
            if (before !== after) {
              logger.log(after ? "info" : "warn", after ? "provider healthy" : "provider unhealthy", {
                provider: p.index,
                target: probeTarget(p)
              })
            }
          })
        )
      )
    }
    const apply = Effect.fn("HealthChecker.apply")(function* (snapshot: ConfigSnapshot) {
      const hc = snapshot.healthCheck
      const ids = new Set<string>()
      const wanted = new Map<string, { id: string; p: ProviderConfig }>()
      for (const p of snapshot.providers) {
        const id = providerIdOf(p)
        ids.add(id)
        if (hc.enabled) wanted.set(probeKey(id, p, hc), { id, p })
      }
      for (const key of [...running]) {
        if (!wanted.has(key)) {
          running.delete(key)
          yield* FiberMap.remove(fibers, key)
        }
      }
      health.retain(ids)
      if (!hc.enabled) health.resetActive()
      for (const [key, { id, p }] of wanted) {
        if (running.has(key)) continue
        running.add(key)
        yield* FiberMap.run(
          fibers,
          key,
          checkOnce(id, p, snapshot).pipe(Effect.repeat(Schedule.spaced(hc.intervalMs)), Effect.asVoid),
          { onlyIfMissing: true }
        )
      }
    })
    yield* snapshots.pipe(Stream.runForEach(apply), Effect.forkScoped)
  })

/** The service with a given probe (tests inject a fake one; `layer` uses the real sockets). */
export const layerWithProbe = (probe: (keys: KeyResolver) => Probe): Layer.Layer<HealthChecker, never, Config> =>
  Layer.scoped(
    HealthChecker,
    Effect.gen(function* () {
      const config = yield* Config
      const metrics = yield* Metrics.optional
      let cooldown = (yield* SubscriptionRef.get(config.current)).healthCheck.cooldownMs
      /** The live providers by id: a connect failure is counted under its provider's label. */
      let byId = new Map<string, ProviderConfig>()
      // Keep the cool-down in step with reloads without touching the request path.
      yield* config.current.changes.pipe(
        Stream.runForEach((c) =>
          Effect.sync(() => {
            cooldown = c.healthCheck.cooldownMs
            if (Option.isSome(metrics)) byId = new Map(c.providers.map((p) => [providerIdOf(p), p]))
          })
        ),
        Effect.forkScoped
      )
      const state = makeState(() => cooldown)
      yield* runActiveChecks(state, config.current.changes, probe(yield* ProviderKeys.resolver))
      // Every upstream connect failure (HTTP, WebSocket, CONNECT) is reported here: one place counts them.
      const reporter: HealthReporter = Option.isNone(metrics)
        ? state.reporter
        : {
            connected: state.reporter.connected,
            connectFailed: (id) => {
              state.reporter.connectFailed(id)
              const p = byId.get(id)
              if (p !== undefined) metrics.value.connectError(p)
            }
          }
      const service: HealthCheckerService = {
        isHealthy: state.isHealthy,
        reporter,
        state: state.state,
        setActive: state.setActive
      }
      return service
    })
  )

export const layer: Layer.Layer<HealthChecker, never, Config> = layerWithProbe(makeProbe)

/** Every provider healthy, no bookkeeping: for tests that are not about health. */
export const layerAlwaysHealthy: Layer.Layer<HealthChecker> = Layer.succeed(HealthChecker, {
  isHealthy: () => true,
  state: () => undefined,
  setActive: () => undefined,
  reporter: { connectFailed: () => undefined, connected: () => undefined }
})
