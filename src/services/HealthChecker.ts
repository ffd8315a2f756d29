// The `HealthChecker` service: which providers may be selected (SPEC §6). Holds per-provider state keyed by
// the provider id (stable across reloads for unchanged providers). Passive ejection: a provider whose
// connections fail `PASSIVE_FAILURES` times in a row leaves selection for `health_check.cooldown`.
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import * as SubscriptionRef from "effect/SubscriptionRef"
import type { HealthReporter } from "../proxy/forward.js"
import { Config } from "./Config.js"

/** Consecutive connect failures that eject a provider passively. */
export const PASSIVE_FAILURES = 3

export interface ProviderHealth {
  /** Result of active checks (true until a check says otherwise). */
  activeHealthy: boolean
  consecutiveConnectFailures: number
  /** Epoch ms until which passive ejection keeps the provider out. */
  ejectedUntil: number
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

export const makeState = (cooldownMs: () => number): HealthCheckerService => {
  const states = new Map<string, ProviderHealth>()
  const get = (id: string): ProviderHealth => {
    let s = states.get(id)
    if (s === undefined) {
      s = { activeHealthy: true, consecutiveConnectFailures: 0, ejectedUntil: 0 }
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

export const layer: Layer.Layer<HealthChecker, never, Config> = Layer.scoped(
  HealthChecker,
  Effect.gen(function* () {
    const config = yield* Config
    let cooldown = (yield* SubscriptionRef.get(config.current)).healthCheck.cooldownMs
    // Keep the cool-down in step with reloads without touching the request path.
    yield* config.current.changes.pipe(
      Stream.runForEach((c) => Effect.sync(() => (cooldown = c.healthCheck.cooldownMs))),
      Effect.forkScoped
    )
    return makeState(() => cooldown)
  })
)

/** Every provider healthy, no bookkeeping: for tests that are not about health. */
export const layerAlwaysHealthy: Layer.Layer<HealthChecker> = Layer.succeed(HealthChecker, {
  isHealthy: () => true,
  state: () => undefined,
  setActive: () => undefined,
  reporter: { connectFailed: () => undefined, connected: () => undefined }
})
