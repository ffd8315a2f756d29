// The `Admin` service (SPEC §10): the admin listener of a single-process proxy, and what every proxy process
// contributes to it. It wires the scrape-time metric sources (open connections from the Listener, provider health
// from the HealthChecker), then either binds `admin.bind_address:admin.port` (node:http, adminHttp.ts) and follows
// reloads (a changed address is bound before the old one is closed; a bind failure on reload is logged and the old
// listener kept), or, in a cluster worker, answers the primary, which serves the port for all workers
// (lifecycle/adminPrimary.ts). The listener closes first at shutdown, so a SIGUSR2 successor can bind it.
import cluster from "node:cluster"
import * as http from "node:http"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import * as SubscriptionRef from "effect/SubscriptionRef"
import type { AdminConfig } from "../config/types.js"
import { serveWorkerAdmin } from "../lifecycle/adminWorker.js"
import { isUpgradeChild } from "../lifecycle/handover.js"
import { event, type Logger, plain } from "../log.js"
import { type AdminSource, adminHandler } from "../observability/adminHttp.js"
import { keyViews, keyViewsWithLimits, providerViews, readiness } from "../observability/adminState.js"
import { Config } from "./Config.js"
import { ConnectionPool } from "./ConnectionPool.js"
import { HealthChecker } from "./HealthChecker.js"
import * as Limits from "./Limits.js"
import { Listener } from "./Listener.js"
import { Metrics } from "./Metrics.js"
import { ProviderRegistry } from "./ProviderRegistry.js"

export class AdminListenError extends Data.TaggedError("AdminListenError")<{
  readonly address: string
  readonly port: number
  readonly reason: string
}> {
  override get message(): string {
    return `cannot listen on admin ${this.address}:${this.port}: ${this.reason}`
  }
}

export interface AdminService {
  /** This process's answers (also what a worker sends the primary). */
  readonly source: AdminSource
  /** The admin listener bound in this process now, if any (the real port when the config asked for 0). */
  readonly bound: () => { readonly address: string; readonly port: number } | undefined
}

export class Admin extends Context.Tag("openproxy/Admin")<Admin, AdminService>() {}

/** Binds an admin server; resolves with it listening, or fails with the reason. */
export const listenAdmin = (
  a: AdminConfig,
  handler: http.RequestListener,
  log: Logger
): Effect.Effect<http.Server, AdminListenError> =>
  Effect.async((resume) => {
    const server = http.createServer({ requestTimeout: 10_000, headersTimeout: 10_000 }, handler)
    const onError = (err: NodeJS.ErrnoException) =>
      resume(
        Effect.fail(new AdminListenError({ address: a.bindAddress, port: a.port, reason: err.code ?? err.message }))
      )
    server.once("error", onError)
    server.listen({ port: a.port, host: a.bindAddress }, () => {
      server.removeListener("error", onError)
      server.on("error", (e) => log.log("error", "admin listener error", { error: e.message }))
      resume(Effect.succeed(server))
    })
  })

const addressOf = (s: http.Server, a: AdminConfig) => {
  const info = s.address()
  return { address: a.bindAddress, port: typeof info === "object" && info !== null ? info.port : a.port }
}

const sameAddress = (a: AdminConfig | undefined, b: AdminConfig | undefined): boolean =>
  a?.port === b?.port && a?.bindAddress === b?.bindAddress

export const make = Effect.gen(function* () {
  const config = yield* Config
  const metrics = yield* Metrics
  const listener = yield* Listener
  const health = yield* HealthChecker
  const registry = yield* ProviderRegistry
  const { pools } = yield* ConnectionPool
  let snapshot = yield* SubscriptionRef.get(config.current)
  const log = yield* plain
  const limits = yield* Limits.optional

  metrics.setSources({
    openConnections: () => Effect.runSync(listener.connections),
    providerHealth: () => {
      const r = registry.current()
      return r.snapshot.providers.map((provider, i) => ({ provider, healthy: health.isHealthy(r.providerIds[i]) }))
    }
  })

  const source: AdminSource = {
    authKey: () => snapshot.admin?.authKey,
    metrics: async () => ({ contentType: metrics.registry.contentType, body: await metrics.registry.metrics() }),
    readiness: async () => readiness(registry.current(), health, listener.bound.length > 0),
    providers: async () => providerViews(registry.current(), health, pools, listener.cooldowns),
    keys: async () => {
      const c = registry.current().snapshot
      return limits._tag === "Some" ? keyViewsWithLimits(c, limits.value.inspect) : keyViews(c)
    }
  }

  if (cluster.isWorker) {
    yield* serveWorkerAdmin(metrics.registry, source)
    return { source, bound: () => undefined } satisfies AdminService
  }

  const handler = adminHandler(source)
  let current: { readonly config: AdminConfig; readonly server: http.Server } | undefined
  const close = (s: http.Server) => {
    s.close()
    s.closeAllConnections()
  }
  yield* Effect.addFinalizer(() => Effect.sync(() => current && close(current.server)))

  const bind = (a: AdminConfig) =>
    listenAdmin(a, handler, log).pipe(
      Effect.tap((server) => {
        if (current !== undefined) close(current.server)
        current = { config: a, server }
        return event("info", "admin listening", addressOf(server, a))
      })
    )

  if (snapshot.admin !== undefined) {
    const first = snapshot.admin
    if (isUpgradeChild()) {
      // The old process holds the port until it starts draining: keep trying for a while.
      yield* bind(first).pipe(
        Effect.retry({ times: 150, schedule: Schedule.spaced("200 millis") }),
        Effect.catchAll((e) => event("error", "admin listener not bound", { error: e.message })),
        Effect.forkScoped
      )
    } else {
      yield* bind(first)
    }
  }

  yield* config.current.changes.pipe(
    Stream.runForEach((next) =>
      Effect.gen(function* () {
        const before = snapshot.admin
        snapshot = next
        const after = next.admin
        if (sameAddress(before, after) && (after === undefined || current !== undefined)) return
        if (after === undefined) {
          if (current !== undefined) {
            close(current.server)
            yield* event("info", "admin listener closed", addressOf(current.server, current.config))
            current = undefined
          }
          return
        }
        yield* bind(after).pipe(
          Effect.catchAll((e) =>
            event("error", "admin listener not changed, keeping the old one", { error: e.message })
          )
        )
      })
    ),
    Effect.forkScoped
  )

  return {
    source,
    bound: () => (current === undefined ? undefined : addressOf(current.server, current.config))
  } satisfies AdminService
})

export const layer: Layer.Layer<
  Admin,
  AdminListenError,
  Config | Metrics | Listener | HealthChecker | ProviderRegistry | ConnectionPool
> = Layer.scoped(Admin, make)
