// The admin port of a cluster (`workers: N`, SPEC §10), served by the primary for all workers: /metrics is the
// sum over the workers (prom-client's AggregatorRegistry; gauges of provider health take the lowest); /readyz is
// ready when every worker is (and at least one runs); /providers merges the workers' views (healthy only if
// healthy in every worker, in-flight summed, the latest error, every worker's key cool-downs: SPEC §11); /keys is
// a worker's answer (the names from the config, the limits' figures from the store all workers share), or the
// config's names when none answers. The primary re-reads the config on SIGHUP (as the workers do) and moves, opens
// or closes the admin port as it says.
import cluster from "node:cluster"
import type * as http from "node:http"
import * as Effect from "effect/Effect"
import { AggregatorRegistry } from "prom-client"
import type { AdminConfig, ConfigSnapshot } from "../config/types.js"
import type { Logger } from "../log.js"
import { type AdminSource, adminHandler, type ProviderView } from "../observability/adminHttp.js"
import { keyViews } from "../observability/adminState.js"
import { mergeCooldowns } from "../observability/cooldownView.js"
import { listenAdmin } from "../services/Admin.js"
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

export interface PrimaryAdmin {
  readonly close: () => void
}

/**
 * Starts the cluster's admin port from `load()` (the config as the workers read it); rejects when the first bind
 * fails. Re-reads on SIGHUP; a failed reload or bind is logged and changes nothing.
 */
export const startPrimaryAdmin = async (load: () => Promise<ConfigSnapshot>, logger: Logger): Promise<PrimaryAdmin> => {
  let snapshot = await load()
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
  let current: { config: AdminConfig; server: http.Server } | undefined
  const close = () => {
    current?.server.close()
    current?.server.closeAllConnections()
    current = undefined
  }
  const bind = async (a: AdminConfig) => {
    const server = await Effect.runPromise(listenAdmin(a, handler, logger))
    close()
    current = { config: a, server }
    const info = server.address()
    logger.log("info", "admin listening", {
      address: a.bindAddress,
      port: typeof info === "object" && info !== null ? info.port : a.port
    })
  }
  if (snapshot.admin !== undefined) await bind(snapshot.admin)

  const onHup = () => {
    load().then(
      async (next) => {
        snapshot = next
        const a = next.admin
        if (a === undefined) return close()
        if (current !== undefined && current.config.port === a.port && current.config.bindAddress === a.bindAddress)
          return
        await bind(a).catch((e: Error) =>
          logger.log("error", "admin listener not changed, keeping the old one", { error: e.message })
        )
      },
      // The workers log why the config is refused; the primary keeps its admin port as it is.
      () => undefined
    )
  }
  process.on("SIGHUP", onHup)
  return {
    close: () => {
      process.removeListener("SIGHUP", onHup)
      close()
    }
  }
}
