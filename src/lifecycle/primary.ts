// The cluster primary for `workers: N` > 1 (SPEC §2, §7). It forks N workers that run the proxy layers and share
// the listening sockets round-robin through node:cluster, owns the PID file, and forwards signals: SIGHUP to every
// worker (each reloads), SIGTERM/SIGINT as a drain of every worker. SIGUSR2 replaces the workers with new ones
// (started from the code now on disk) and retires the old ones once the new ones are ready; the primary keeps
// the listening sockets meanwhile, so no connection attempt is refused. A worker still starting gets its SIGHUP
// once it reports ready (before, the signal could kill it), and a SIGUSR2 before the workers are up waits for them.

import cluster, { type Worker } from "node:cluster"
import { readFile, unlink, writeFile } from "node:fs/promises"
import * as Effect from "effect/Effect"
import type { ConfigSnapshot } from "../config/types.js"
import { type Logger, plain } from "../log.js"
import { proxyExecArgv } from "../v8flags.js"
import { type PrimaryAdmin, startPrimaryAdmin } from "./adminPrimary.js"
import { replayPendingSignals } from "./signals.js"

/** What a worker sends the primary once its listeners are up. */
export const WORKER_READY = "openproxy:worker-ready"

/** In a worker: tells the primary this worker serves. */
export const reportWorkerReady = (): void => {
  if (cluster.isWorker && typeof process.send === "function") process.send({ type: WORKER_READY })
}

const isReady = (m: unknown): boolean =>
  typeof m === "object" && m !== null && (m as { type?: unknown }).type === WORKER_READY

/** Removes the PID file when it still names this process (an upgrade may have rewritten it). */
export const removePidFileIfOurs = async (file: string): Promise<void> => {
  const content = await readFile(file, "utf8").catch(() => "")
  if (content.trim() === String(process.pid)) await unlink(file).catch(() => undefined)
}

/**
 * Runs the primary until a SIGTERM/SIGINT drain (the main fiber's interruption) ends it; fails with a one-line
 * message when the first workers cannot start.
 */
export const runPrimary = (
  count: number,
  pidFile: string | undefined,
  /** The config as the workers read it, for the admin port the primary serves for all of them. */
  loadConfig?: () => Promise<ConfigSnapshot>
): Effect.Effect<void, { message: string }> =>
  Effect.flatMap(plain, (logger) => primaryLoop(count, pidFile, loadConfig, logger))

const primaryLoop = (
  count: number,
  pidFile: string | undefined,
  loadConfig: (() => Promise<ConfigSnapshot>) | undefined,
  logger: Logger
) =>
  Effect.async<void, { message: string }>((resume) => {
    let admin: PrimaryAdmin | undefined
    const workers = new Set<Worker>()
    /** Workers asked to stop (drain): their exit is expected. */
    const retiring = new Set<Worker>()
    /** Workers that reported ready; a SIGHUP for one still starting is owed to it until then. */
    const ready = new Set<Worker>()
    const hupOwed = new Set<Worker>()
    let usr2Owed = false
    let stopping = false
    let upgrading = false
    let started = false

    const fork = (): Promise<Worker> =>
      new Promise((ok, fail) => {
        cluster.setupPrimary({ execArgv: proxyExecArgv() })
        const w = cluster.fork()
        workers.add(w)
        const onMessage = (m: unknown) => {
          if (!isReady(m)) return
          w.removeListener("message", onMessage)
          ready.add(w)
          if (hupOwed.delete(w)) w.process.kill("SIGHUP")
          ok(w)
        }
        w.on("message", onMessage)
        w.once("exit", (code, signal) => {
          workers.delete(w)
          ready.delete(w)
          hupOwed.delete(w)
          const expected = retiring.delete(w) || stopping
          fail(new Error(`worker ${w.process.pid} exited before it was ready (${signal ?? code})`))
          if (!expected && started && !upgrading) {
            logger.log("warn", "worker exited, starting another", { pid: w.process.pid, code: code ?? signal })
            fork().catch((e: Error) => logger.log("error", "worker did not start", { error: e.message }))
          }
        })
      })
    const forkAll = () => Promise.all(Array.from({ length: count }, fork))

    const forward = (signal: NodeJS.Signals) => {
      for (const w of workers) w.process.kill(signal)
    }
    const onHup = () => {
      for (const w of workers) {
        if (ready.has(w)) w.process.kill("SIGHUP")
        else hupOwed.add(w)
      }
    }
    const onUsr2 = () => {
      if (!started && !stopping) usr2Owed = true
      if (upgrading || stopping || !started) return
      upgrading = true
      const old = [...workers]
      logger.log("info", "replacing workers", { workers: count })
      forkAll().then(
        () => {
          for (const w of old) {
            retiring.add(w)
            w.process.kill("SIGTERM")
          }
          upgrading = false
          logger.log("info", "workers replaced", { pids: [...workers].map((w) => w.process.pid).join(",") })
        },
        (e: Error) => {
          upgrading = false
          logger.log("error", "worker replacement failed, keeping the running workers", { error: e.message })
        }
      )
    }
    process.on("SIGHUP", onHup)
    process.on("SIGUSR2", onUsr2)
    const removeHandlers = () => {
      process.removeListener("SIGHUP", onHup)
      process.removeListener("SIGUSR2", onUsr2)
    }

    /** Drains every worker (each exits once its connections are done or its grace period is over). */
    const stopAll = (): Promise<void> =>
      new Promise<void>((done) => {
        stopping = true
        removeHandlers()
        admin?.close()
        if (workers.size === 0) return done()
        for (const w of workers) w.once("exit", () => workers.size === 0 && done())
        forward("SIGTERM")
      }).then(() => (pidFile === undefined ? undefined : removePidFileIfOurs(pidFile)))

    forkAll()
      .then(async () => {
        if (loadConfig !== undefined) admin = await startPrimaryAdmin(loadConfig, logger)
        started = true
        if (pidFile !== undefined) await writeFile(pidFile, `${process.pid}\n`)
        logger.log("info", "openproxy started", {
          pid: process.pid,
          workers: count,
          worker_pids: [...workers].map((w) => w.process.pid).join(",")
        })
        // Signals received before this point: the primary's own (before its handlers), then a queued SIGUSR2.
        replayPendingSignals((signal) => logger.log("info", "signal received while starting, applied now", { signal }))
        if (usr2Owed) {
          usr2Owed = false
          onUsr2()
        }
      })
      .catch((e: Error) => {
        stopAll().then(() => resume(Effect.fail({ message: e.message })))
      })
    return Effect.promise(stopAll)
  })
