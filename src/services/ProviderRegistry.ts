// The `ProviderRegistry` service: the Router (routing + selection, SPEC §3) for the live config snapshot,
// rebuilt on every new snapshot. The request path reads `current()` synchronously, once per request, and keeps
// that router (and its snapshot) to the end. The reloader calls `sync` as it swaps a snapshot in, so a reload
// is visible to the very next request; the subscription covers other writers of the snapshot (embedding apps).
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import * as SubscriptionRef from "effect/SubscriptionRef"
import type { ConfigSnapshot } from "../config/types.js"
import { Router } from "../domain/router.js"
import { Config } from "./Config.js"
import { HealthChecker } from "./HealthChecker.js"

export interface ProviderRegistryService {
  readonly current: () => Router
  /** Rebuilds the router for the live snapshot now, if it changed (instead of on the subscriber's next turn). */
  readonly sync: Effect.Effect<void>
}

export class ProviderRegistry extends Context.Tag("openproxy/ProviderRegistry")<
  ProviderRegistry,
  ProviderRegistryService
>() {}

export const layer: Layer.Layer<ProviderRegistry, never, Config | HealthChecker> = Layer.scoped(
  ProviderRegistry,
  Effect.gen(function* () {
    const config = yield* Config
    const health = yield* HealthChecker
    let router = new Router(yield* SubscriptionRef.get(config.current), health.isHealthy)
    const use = (snapshot: ConfigSnapshot) =>
      Effect.sync(() => {
        if (snapshot !== router.snapshot) router = new Router(snapshot, health.isHealthy)
      })
    yield* config.current.changes.pipe(Stream.runForEach(use), Effect.forkScoped)
    return { current: () => router, sync: Effect.flatMap(SubscriptionRef.get(config.current), use) }
  })
)

/** A registry over a fixed router: for unit tests that inject providers directly. */
export const layerRouter = (router: Router): Layer.Layer<ProviderRegistry> =>
  Layer.succeed(ProviderRegistry, { current: () => router, sync: Effect.void })
