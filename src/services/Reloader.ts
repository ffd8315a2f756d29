// The `Reloader` service: SIGHUP hot reload (SPEC §7) as a `Stream` of signals. Each signal re-reads the config;
// a valid one has its new listeners bound first and is then swapped in (the router is rebuilt in the same step,
// so the next request uses it once the reload is reported; requests and connections in flight keep the router
// they started with); an invalid one, or a listener that cannot bind,
// is logged in one line and the old config keeps serving. Reloads run one at a time, in signal order.
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as SubscriptionRef from "effect/SubscriptionRef"
import { event } from "../log.js"
import { Config } from "./Config.js"
import { Listener } from "./Listener.js"
import * as Metrics from "./Metrics.js"
import { ProviderRegistry } from "./ProviderRegistry.js"

export interface ReloaderService {
  /** Reloads now; true when the new config was swapped in. Never fails: a failure is logged. */
  readonly reload: Effect.Effect<boolean>
}

export class Reloader extends Context.Tag("openproxy/Reloader")<Reloader, ReloaderService>() {}

/**
 * The signals `signal` delivers to this process, as a stream. The handler is installed at once (not when the
 * stream starts), so a signal arriving right after start-up is never lost nor left to Node's default action.
 */
export const signals = (signal: NodeJS.Signals): Effect.Effect<Stream.Stream<NodeJS.Signals>, never, Scope.Scope> =>
  Effect.gen(function* () {
    const queue = yield* Queue.unbounded<NodeJS.Signals>()
    const handler = () => Queue.unsafeOffer(queue, signal)
    yield* Effect.acquireRelease(
      Effect.sync(() => process.on(signal, handler)),
      () => Effect.sync(() => process.removeListener(signal, handler))
    )
    return Stream.fromQueue(queue)
  })

export const make = Effect.gen(function* () {
  const config = yield* Config
  const listener = yield* Listener
  const registry = yield* ProviderRegistry
  const metrics = yield* Metrics.optional
  const counted = (ok: boolean) => Option.map(metrics, (m) => m.configReload(ok))
  const reload = Effect.fn("Reloader.reload")(function* () {
    const next = yield* config.load
    yield* listener.reconfigure(next, Effect.zipRight(SubscriptionRef.set(config.current, next), registry.sync))
    yield* event("info", "config reloaded", {
      file: config.file,
      providers: next.providers.length,
      listeners: listener.bound.map((b) => `${b.kind}://${b.address}:${b.port}`).join(",")
    })
    return true
  })
  return {
    reload: reload().pipe(
      Effect.tapBoth({
        onSuccess: () => Effect.sync(() => counted(true)),
        onFailure: () => Effect.sync(() => counted(false))
      }),
      Effect.catchAll((e) =>
        Effect.as(event("error", "config reload failed, keeping the running config", { error: e.message }), false)
      )
    )
  } satisfies ReloaderService
})

/** The service alone (reload on demand: tests, embedding apps). */
export const layer: Layer.Layer<Reloader, never, Config | Listener | ProviderRegistry> = Layer.effect(Reloader, make)

/** The service plus a reload on every SIGHUP, for as long as the layer lives. */
export const layerSighup: Layer.Layer<Reloader, never, Config | Listener | ProviderRegistry> = Layer.scoped(
  Reloader,
  Effect.gen(function* () {
    const service = yield* make
    const hups = yield* signals("SIGHUP")
    yield* hups.pipe(
      Stream.runForEach(() => Effect.asVoid(service.reload)),
      Effect.forkScoped
    )
    return service
  })
)
