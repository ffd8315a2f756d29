// The admin port of a cluster (`workers: N`, SPEC §10), served by the primary for all workers: /metrics is the
// sum over the workers (prom-client's AggregatorRegistry; gauges of provider health take the lowest); /readyz is
// ready when every worker is (and at least one runs); /providers merges the workers' views (healthy only if
// healthy in every worker, in-flight summed, the latest error, every worker's key cool-downs: SPEC §11); /keys is
// a worker's answer (the names from the config, the limits' figures from the store all workers share), or the
// config's names when none answers. The primary re-reads the config on SIGHUP (as the workers do) and moves, opens
// or closes the admin port as it says. The port is a scoped resource of the primary (closed with its scope, before
// the workers drain) and reloads are a Stream it runs in a fiber; only the answers to the admin's HTTP handler
// (askWorkers) stay promises, as that handler wants.
import cluster from "node:cluster"
import type * as http from "node:http"
import * as Effect from "effect/Effect"
import * as Ref from "effect/Ref"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { AggregatorRegistry } from "prom-client"
import type { AdminConfig, ConfigSnapshot } from "../config/types.js"
import type { Logger } from "../log.js"
import { type AdminSource, adminHandler, type ProviderView } from "../observability/adminHttp.js"
import { keyViews } from "../observability/adminState.js"
import { mergeCooldowns } from "../observability/cooldownView.js"
import { type AdminListenError, listenAdmin } from "../services/Admin.js"
import { ADMIN_REQUEST, ADMIN_RESPONSE, type WorkerAdminState } from "./adminWorker.js"

/** How long the primary waits for the workers' answers. */
const ASK_TIMEOUT_MS = 2_000

/** Asks every connected worker for its admin state (`id` tells answers apart); resolves with those in time. */
const askWorkers = (id: number): Promise<{ answers: Array<WorkerAdminState>; asked: number }> =>
  new Promise((resolve) => {
    const workers = Object.values(cluster.workers ?? {}).filter((w) => w?.isConnected())
    const answers: Array<WorkerAdminState> = []
    const done = () => {
      clearTimeout(timer)
      cluster.removeListener("message", onMessage)
      resolve({ answers, asked: workers.length })
    }
    const onMessage = (_: unknown, m: unknown) => {
      const a = m as Partial<WorkerAdminState> | null
      if (a?.type !== ADMIN_RESPONSE || a.id !== id) return
      answers.push(a as WorkerAdminState)
      if (answers.length === workers.length) done()
    }
    const timer = setTimeout(done, ASK_TIMEOUT_MS)
    cluster.on("message", onMessage)
    if (workers.length === 0) return done()
    for (const w of workers) w?.send({ type: ADMIN_REQUEST, id })
  })

const mergeProviders = (answers: ReadonlyArray<WorkerAdminState>): ReadonlyArray<ProviderView> => {
  const byId = new Map<string, ProviderView>()
  for (const a of answers) {
    for (const p of a.providers) {
      const seen = byId.get(p.id)
      if (seen === undefined) {
        byId.set(p.id, p)
        continue
      }
      const latest = (p.last_error_at ?? "") > (seen.last_error_at ?? "") ? p : seen
      byId.set(p.id, {
        ...seen,
        healthy: seen.healthy && p.healthy,
        inflight: seen.inflight + p.inflight,
        last_error: latest.last_error,
        last_error_at: latest.last_error_at,
        cooling: mergeCooldowns(seen.cooling, p.cooling)
      })
    }
  }
  return [...byId.values()].sort((a, b) => a.index - b.index)
}

/** The admin server the primary runs now, and the config it was bound with. */
interface Bound {
  readonly config: AdminConfig
  readonly server: http.Server
}

const closeServer = (b: Bound | undefined): Effect.Effect<void> =>
  Effect.sync(() => {
    b?.server.close()
    b?.server.closeAllConnections()
  })

/**
 * Serves the cluster's admin port from `load()` (the config as the workers read it) while the scope is open, and
 * closes it with the scope; fails when the first read or bind fails. Each element of `reloads` (the primary's
 * SIGHUP) re-reads the config and moves, opens or closes the port as it says; a failed reload or bind is logged
 * (the workers log why a config is refused) and changes nothing.
 */
export const servePrimaryAdmin = (
  load: () => Promise<ConfigSnapshot>,
  logger: Logger,
  reloads: Stream.Stream<unknown>
): Effect.Effect<void, Error | AdminListenError, Scope.Scope> =>
  Effect.gen(function* () {
    const read = Effect.tryPromise({ try: load, catch: (e) => e as Error })
    // the admin handler's sources read the latest config synchronously (the auth key, /keys without workers)
    let snapshot = yield* read
    const aggregator = new AggregatorRegistry()
    let asked = 0
    const ask = () => askWorkers(asked++)
    const source: AdminSource = {
      authKey: () => snapshot.admin?.authKey,
      metrics: async () => ({ contentType: aggregator.contentType, body: await aggregator.clusterMetrics() }),
      readiness: async () => {
        const { answers, asked: workers } = await ask()
        if (workers === 0) return { ready: false, reason: "no worker running" }
        if (answers.length < workers)
          return { ready: false, reason: `${workers - answers.length} worker(s) did not answer` }
        return answers.find((a) => !a.readiness.ready)?.readiness ?? { ready: true, reason: "" }
      },
      providers: async () => mergeProviders((await ask()).answers),
      // Every worker reads the same limits store (the primary's memory, or Redis): the first answer is the view.
      keys: async () => (await ask()).answers[0]?.keys ?? keyViews(snapshot)
    }
    const handler = adminHandler(source)
    const current = yield* Ref.make<Bound | undefined>(undefined)
    yield* Effect.addFinalizer(() => Ref.getAndSet(current, undefined).pipe(Effect.flatMap(closeServer)))
    /** Binds `a`, then closes the server it replaces (a failed bind keeps the old one). */
    const bind = (a: AdminConfig) =>
      listenAdmin(a, handler, logger).pipe(
        Effect.flatMap((server) =>
          Ref.getAndSet(current, { config: a, server }).pipe(
            Effect.flatMap(closeServer),
            Effect.zipRight(
              Effect.sync(() => {
                const info = server.address()
                logger.log("info", "admin listening", {
                  address: a.bindAddress,
                  port: typeof info === "object" && info !== null ? info.port : a.port
                })
              })
            )
          )
        )
      )
    if (snapshot.admin !== undefined) yield* bind(snapshot.admin)

    const reload = Effect.gen(function* () {
      snapshot = yield* read
      const a = snapshot.admin
      if (a === undefined) return yield* Ref.getAndSet(current, undefined).pipe(Effect.flatMap(closeServer))
      const now = yield* Ref.get(current)
      if (now !== undefined && now.config.port === a.port && now.config.bindAddress === a.bindAddress) return
      yield* bind(a).pipe(
        Effect.catchAll((e) =>
          Effect.sync(() =>
            logger.log("error", "admin listener not changed, keeping the old one", { error: e.message })
          )
        )
      )
    }).pipe(Effect.ignore)
    yield* reloads.pipe(
      Stream.runForEach(() => reload),
      Effect.forkScoped
    )
  })
