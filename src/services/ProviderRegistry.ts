// The `ProviderRegistry` service: the Router (routing + selection, SPEC §3) for the live config snapshot,
// rebuilt on every new snapshot. The request path reads `current()` synchronously, once per request.
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import * as SubscriptionRef from "effect/SubscriptionRef"
import { Router } from "../proxy/router.js"
import { Config } from "./Config.js"
import { HealthChecker } from "./HealthChecker.js"

export interface ProviderRegistryService {
  readonly current: () => Router
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
    yield* config.current.changes.pipe(
      Stream.runForEach((snapshot) =>
        Effect.sync(() => {
          if (snapshot !== router.snapshot) router = new Router(snapshot, health.isHealthy)
        })
      ),
      Effect.forkScoped
    )
    return { current: () => router }
  })
)

/** A registry over a fixed router: for unit tests that inject providers directly. */
export const layerRouter = (router: Router): Layer.Layer<ProviderRegistry> =>
  Layer.succeed(ProviderRegistry, { current: () => router })
