// The cluster primary for `workers: N` > 1 (SPEC §2, §7). It forks N workers that run the proxy layers and share
// the listening sockets round-robin through node:cluster, owns the PID file, and forwards signals: SIGHUP to every
// worker (each reloads), SIGTERM/SIGINT as a drain of every worker. SIGUSR2 replaces the workers with new ones
// (started from the code now on disk) and retires the old ones once the new ones are ready; the primary keeps
// the listening sockets meanwhile, so no connection attempt is refused. A worker still starting gets its SIGHUP
// once it reports ready (before, the signal could kill it), and a SIGUSR2 before the workers are up waits for them.
// The primary is fibers in one scope: signal Streams, a supervisor taking worker exits from a Queue, a phase in a
// Ref; closing the scope (SIGTERM/SIGINT, or a failed start) drains every worker.

import cluster, { type Worker } from "node:cluster"
import { readFile, unlink, writeFile } from "node:fs/promises"
import * as Effect from "effect/Effect"
import * as Queue from "effect/Queue"
import * as Ref from "effect/Ref"
import * as Stream from "effect/Stream"
import type { ConfigSnapshot } from "../config/types.js"
import { serveClusterLimits } from "../limits/cluster.js"
import { event, plain } from "../log.js"
import { signals } from "../services/Reloader.js"
import { proxyExecArgv } from "../v8flags.js"
import { servePrimaryAdmin } from "./adminPrimary.js"
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

/** Where the primary is: starting its first workers, serving, replacing its workers (SIGUSR2), or draining. */
interface PrimaryState {
  readonly phase: "starting" | "running" | "upgrading" | "stopping"
  /** A SIGUSR2 received while starting: applied once the workers are up. */
  readonly usr2Owed: boolean
}

/** What the primary knows of one worker. */
interface WorkerInfo {
  /** Reported ready: a SIGHUP can reach it. */
  ready: boolean
  /** A SIGHUP received while it started, sent once it is ready. */
  hupOwed: boolean
  /** Asked to stop (replaced): its exit is expected. */
  retiring: boolean
}

interface WorkerExit {
  readonly worker: Worker
  readonly info: WorkerInfo
  readonly code: number
  readonly signal: string
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
  Effect.scoped(
    Effect.gen(function* () {
      const log = yield* plain
      const state = yield* Ref.make<PrimaryState>({ phase: "starting", usr2Owed: false })
      const workers = new Map<Worker, WorkerInfo>()
      const exits = yield* Queue.unbounded<WorkerExit>()
      // The memory limits store the workers share (SPEC §12; workers with `limits.store: memory` call it over IPC).
      const limits = serveClusterLimits()
      const pids = () => [...workers.keys()].map((w) => w.process.pid).join(",")

      /** Forks one worker; succeeds once it reports ready, fails if it exits before. */
      const fork = Effect.async<Worker, Error>((resume) => {
        cluster.setupPrimary({ execArgv: proxyExecArgv() })
        const w = cluster.fork()
        const info: WorkerInfo = { ready: false, hupOwed: false, retiring: false }
        workers.set(w, info)
        const onMessage = (m: unknown) => {
          if (!isReady(m)) return
          w.removeListener("message", onMessage)
          info.ready = true
          if (info.hupOwed) {
            info.hupOwed = false
            w.process.kill("SIGHUP")
          }
          resume(Effect.succeed(w))
        }
        w.on("message", onMessage)
        w.once("exit", (code, signal) => {
          workers.delete(w)
          if (!info.ready) {
            w.removeListener("message", onMessage)
            resume(Effect.fail(new Error(`worker ${w.process.pid} exited before it was ready (${signal ?? code})`)))
          }
          Queue.unsafeOffer(exits, { worker: w, info, code, signal })
        })
      })
      const forkAll = Effect.all(
        Array.from({ length: count }, () => fork),
        { concurrency: "unbounded", discard: true }
      )

      // A worker that exits unexpectedly while the primary serves is replaced (not while starting, replacing or
      // draining: those exits are expected or handled there).
      yield* Queue.take(exits).pipe(
        Effect.flatMap(({ worker, info, code, signal }) =>
          Effect.gen(function* () {
            if (info.retiring || (yield* Ref.get(state)).phase !== "running") return
            yield* event("warn", "worker exited, starting another", { pid: worker.process.pid, code: code ?? signal })
            yield* fork.pipe(
              Effect.catchAll((e) => event("error", "worker did not start", { error: e.message })),
              Effect.forkScoped
            )
          })
        ),
        Effect.forever,
        Effect.forkScoped
      )

      /** SIGUSR2: new workers from the code on disk; the old ones retire once all new ones are ready. */
      const replaceWorkers = Effect.gen(function* () {
        const go = yield* Ref.modify(state, (s): [boolean, PrimaryState] =>
          s.phase === "running"
            ? [true, { ...s, phase: "upgrading" }]
            : s.phase === "starting"
              ? [false, { ...s, usr2Owed: true }]
              : [false, s]
        )
        if (!go) return
        const old = [...workers.keys()]
        yield* event("info", "replacing workers", { workers: count })
        const r = yield* Effect.either(forkAll)
        if (r._tag === "Right") {
          for (const w of old) {
            const info = workers.get(w)
            if (info !== undefined) info.retiring = true
            w.process.kill("SIGTERM")
          }
        }
        yield* Ref.update(state, (s): PrimaryState => (s.phase === "upgrading" ? { ...s, phase: "running" } : s))
        if (r._tag === "Left") {
          yield* event("error", "worker replacement failed, keeping the running workers", { error: r.left.message })
        } else {
          yield* event("info", "workers replaced", { pids: pids() })
        }
      })

      const hups = yield* signals("SIGHUP")
      const usr2s = yield* signals("SIGUSR2")

      /** Drains every worker (each exits once its connections are done or its grace period is over). */
      const stopAll = Effect.gen(function* () {
        yield* Ref.update(state, (s) => ({ ...s, phase: "stopping" as const }))
        yield* Effect.async<void>((resume) => {
          if (workers.size === 0) return resume(Effect.void)
          for (const w of workers.keys()) w.once("exit", () => workers.size === 0 && resume(Effect.void))
          for (const w of workers.keys()) w.process.kill("SIGTERM")
        })
        limits.close()
        if (pidFile !== undefined) yield* Effect.promise(() => removePidFileIfOurs(pidFile))
      })
      // Runs before the signal handlers go (finalizers run last-added first): signals meanwhile are ignored.
      yield* Effect.addFinalizer(() => stopAll)

      // SIGHUP: every ready worker reloads; one still starting gets it once ready.
      yield* hups.pipe(
        Stream.runForEach(() =>
          Effect.gen(function* () {
            if ((yield* Ref.get(state)).phase === "stopping") return
            for (const [w, info] of workers) {
              if (info.ready) w.process.kill("SIGHUP")
              else info.hupOwed = true
            }
          })
        ),
        Effect.forkScoped
      )
      // SIGUSR2: one replacement at a time (a SIGUSR2 during one is ignored).
      yield* usr2s.pipe(
        Stream.runForEach(() => Effect.forkScoped(replaceWorkers)),
        Effect.forkScoped
      )

      yield* Effect.gen(function* () {
        yield* forkAll
        // scoped: closed by this scope's finalizers before stopAll (added earlier) drains the workers
        if (loadConfig !== undefined) yield* servePrimaryAdmin(loadConfig, log, yield* signals("SIGHUP"))
        const owed = yield* Ref.modify(state, (s): [boolean, PrimaryState] => [
          s.usr2Owed,
          { phase: "running", usr2Owed: false }
        ])
        if (pidFile !== undefined) yield* Effect.promise(() => writeFile(pidFile, `${process.pid}\n`))
        yield* event("info", "openproxy started", { pid: process.pid, workers: count, worker_pids: pids() })
        // Signals received before this point: the primary's own (before its handlers), then a queued SIGUSR2.
        replayPendingSignals((signal) => log.log("info", "signal received while starting, applied now", { signal }))
        if (owed) yield* Effect.forkScoped(replaceWorkers)
      }).pipe(Effect.mapError((e) => ({ message: e.message })))
      yield* Effect.never
    })
  )
