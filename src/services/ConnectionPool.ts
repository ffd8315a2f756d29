// The `ConnectionPool` service: undici pools per upstream origin, closed when idle and at shutdown.
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import { UpstreamPools } from "../proxy/upstreams.js"

/** A pool with nothing in flight for this long is closed. */
export const POOL_IDLE_TTL = Duration.minutes(5)

export interface ConnectionPoolService {
  readonly pools: UpstreamPools
}

export class ConnectionPool extends Context.Tag("openproxy/ConnectionPool")<ConnectionPool, ConnectionPoolService>() {}

export const layer: Layer.Layer<ConnectionPool> = Layer.scoped(
  ConnectionPool,
  Effect.gen(function* () {
    const pools = yield* Effect.acquireRelease(
      Effect.sync(() => new UpstreamPools()),
      (p) => Effect.promise(() => p.closeAll()).pipe(Effect.timeout("5 seconds"), Effect.ignore)
    )
    yield* Effect.sync(() => pools.sweep(Duration.toMillis(POOL_IDLE_TTL))).pipe(
      Effect.repeat(Schedule.spaced("30 seconds")),
      Effect.forkScoped
    )
    return { pools }
  })
)
