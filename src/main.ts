// The `openproxy` command line (SPEC §1): `start` runs the proxy, `check` validates a config file.
// Expected failures (bad config, port in use) print one line and exit 1 — never a stack trace. Loaded by the
// executable (src/bin.ts) once it has guarded the signals (src/lifecycle/signals.ts).
import cluster from "node:cluster"
import { writeFile } from "node:fs/promises"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import { defaultTeardown } from "@effect/platform/Runtime"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Console from "effect/Console"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Runtime from "effect/Runtime"
import * as Stream from "effect/Stream"
import { loadConfig, summarize } from "./config/load.js"
import * as Main from "./layers/Main.js"
import { isUpgradeChild, receiveHandles, reportToParent, spawnUpgrade } from "./lifecycle/handover.js"
import * as Inherited from "./lifecycle/Inherited.js"
import { removePidFileIfOurs, reportWorkerReady, runPrimary } from "./lifecycle/primary.js"
import { releaseTerminationGuard, replayPendingSignals } from "./lifecycle/signals.js"
import { event, type Logger, layer as logLayer, plain } from "./log.js"
import type { SnapshotOverride } from "./services/Config.js"
import { Listener } from "./services/Listener.js"
import { signals } from "./services/Reloader.js"
import { applyRuntimeV8Flags } from "./v8flags.js"

// First thing, in every proxy process (bin, cluster worker, upgraded process): the V8 flags this Node version
// takes at run time (src/v8flags.ts).
const runtimeV8Flags = applyRuntimeV8Flags()

const VERSION = "0.1.0"

const configOption = Options.text("config").pipe(Options.withAlias("c"), Options.withDescription("config file (YAML)"))

/** Expected failures end here: one line on stderr, exit code 1. */
const failWithLine = (e: { readonly message: string }) =>
  Effect.sync(() => {
    process.stderr.write(`openproxy: ${e.message}\n`)
    process.exitCode = 1
  })

/**
 * Applies the SIGUSR2 upgrade: spawns the new process on our listening sockets; resolves `replaced` once it serves.
 * Returns the upgrade itself, for the safety net.
 */
const upgradeOnSignal = (replaced: Deferred.Deferred<number>) =>
  Effect.gen(function* () {
    const listener = yield* Listener
    const usr2 = yield* signals("SIGUSR2")
    /** True while an upgrade runs, and for good once one succeeded (this process is then on its way out). */
    let busy = false
    const upgrade = Effect.suspend(() => {
      // A worker of a cluster leaves upgrades to the primary (which replaces its workers).
      if (busy || cluster.isWorker) return Effect.void
      busy = true
      return event("info", "upgrade: starting the new process", { pid: process.pid }).pipe(
        Effect.zipRight(Effect.tryPromise(() => spawnUpgrade(listener.servers(), UPGRADE_READY_TIMEOUT_MS))),
        Effect.flatMap((pid) =>
          event("info", "upgrade: new process ready, draining", { old_pid: process.pid, new_pid: pid }).pipe(
            Effect.zipRight(Deferred.succeed(replaced, pid))
          )
        ),
        Effect.catchAll((e) =>
          Effect.suspend(() => {
            busy = false
            return event("error", "upgrade failed, keeping this process", { error: String(e.error) })
          })
        )
      )
    })
    yield* usr2.pipe(
      Stream.runForEach(() => upgrade),
      Effect.forkScoped
    )
    return upgrade
  })

/** How long the old process waits for the new one to be ready on SIGUSR2. */
const UPGRADE_READY_TIMEOUT_MS = 30_000

/** One proxy process (single-process mode, a cluster worker, or the new process of an upgrade). */
const runProxy = (config: string, override: SnapshotOverride, pidFile: string | undefined) =>
  Effect.gen(function* () {
    // An upgraded process serves on the listening sockets the old one passes on (none if they do not come).
    const inherited = isUpgradeChild()
      ? Inherited.layer(yield* Effect.promise(() => receiveHandles().catch(() => new Map())))
      : Inherited.none
    yield* Effect.gen(function* () {
      const listener = yield* Listener
      const replaced = yield* Deferred.make<number>()
      const upgrade = yield* upgradeOnSignal(replaced)
      if (pidFile !== undefined && !cluster.isWorker) {
        const file = pidFile
        yield* Effect.acquireRelease(
          Effect.promise(() => writeFile(file, `${process.pid}\n`)),
          // After an upgrade the file names the new process: leave it alone then.
          () => Effect.promise(() => removePidFileIfOurs(file))
        )
      }
      yield* event("info", cluster.isWorker ? "worker started" : "openproxy started", {
        pid: process.pid,
        listeners: listener.bound.map((b) => `${b.kind}://${b.address}:${b.port}`).join(","),
        // Which Node and V8 settings this process runs with (the command line's and those set at start-up).
        node: process.version,
        node_flags: [...process.execArgv, ...runtimeV8Flags].join(" ")
      })
      reportToParent({ ok: true })
      reportWorkerReady()
      // The safety net runs from a Node callback: with this fiber's runtime, so its lines go through our logger.
      const runFork = Runtime.runFork(yield* Effect.runtime<never>())
      whenBroken = cluster.isWorker
        ? {
            // A worker drains and exits non-zero: the primary starts another in its place.
            action: "draining this worker, it exits 70",
            run: () => {
              process.exitCode = EXIT_SOFTWARE
              runFork(Deferred.succeed(replaced, 0))
            }
          }
        : {
            // One process: the SIGUSR2 upgrade replaces it without refusing a connection. If that fails (logged),
            // the next error tries again.
            action: "replacing this process (upgrade)",
            run: () =>
              runFork(
                Effect.zipRight(upgrade, Deferred.isDone(replaced)).pipe(
                  Effect.tap((done) => Effect.sync(() => (replacing = done)))
                )
              )
          }
      // Signals received while starting apply now (a SIGHUP reloads, a SIGUSR2 upgrades).
      const log = yield* plain
      replayPendingSignals((signal) => log.log("info", "signal received while starting, applied now", { signal }))
      yield* Deferred.await(replaced)
    }).pipe(Effect.provide(Main.cli(config, override, inherited)), Effect.scoped)
  }).pipe(Effect.tapError((e) => Effect.sync(() => reportToParent({ ok: false, reason: e.message }))))

/** Exit code of a process replaced after an uncaught exception (sysexits' EX_SOFTWARE). */
const EXIT_SOFTWARE = 70

/** What the safety net does once the process serves (set by runProxy, and for the primary); before, exit 70. */
let whenBroken: { readonly action: string; readonly run: () => void } | undefined
let replacing = false

/**
 * Last line of defence (docs/lifecycle.md "Uncaught exceptions"): an error that escapes every callback is logged
 * (name and message only, never a value) and this process, whose state is now unknown, is replaced in an orderly
 * way instead of dying at once (Node's default) or serving on for good: a single process upgrades itself as on
 * SIGUSR2 (a new process on the same sockets, then this one drains), a cluster worker drains and exits 70 and the
 * primary starts another. During start-up it exits 70 at once. No known path reaches it.
 */
const installSafetyNet = (logger: Logger): void => {
  const report = (kind: string) => (err: unknown) => {
    const e = err instanceof Error ? err : new Error(String(err))
    const broken = whenBroken
    const action = replacing ? "already being replaced" : (broken?.action ?? "during start-up, exiting 70")
    logger.log("error", `${kind}: ${action}`, { error: e.name, message: e.message.slice(0, 200) })
    if (replacing) return
    if (broken === undefined) process.exit(EXIT_SOFTWARE)
    replacing = true
    broken.run()
  }
  process.on("unhandledRejection", report("unhandled rejection"))
  process.on("uncaughtException", report("uncaught exception"))
}

const start = Command.make(
  "start",
  {
    config: configOption,
    pidFile: Options.text("pid-file").pipe(Options.withAlias("p"), Options.optional),
    enableHealthCheck: Options.boolean("enable-health-check"),
    logFormat: Options.choice("log-format", ["text", "json"]).pipe(Options.withDefault("text" as const))
  },
  ({ config, pidFile, enableHealthCheck, logFormat }) =>
    Effect.gen(function* () {
      installSafetyNet(yield* plain)
      const override: SnapshotOverride = (c) =>
        enableHealthCheck ? { ...c, healthCheck: { ...c.healthCheck, enabled: true } } : c
      const pid = Option.getOrUndefined(pidFile)
      if (cluster.isPrimary && !isUpgradeChild()) {
        // Read once here for `workers`: several workers need a primary; one runs right here, without cluster.
        const snapshot = override(yield* loadConfig(config))
        if (snapshot.workers > 1) {
          // The primary only supervises workers (each replaced when it breaks): it logs and keeps going.
          whenBroken = { action: "kept running (cluster primary)", run: () => (replacing = false) }
          const reload = () => Effect.runPromise(loadConfig(config).pipe(Effect.map(override)))
          return yield* runPrimary(snapshot.workers, pid, reload)
        }
      }
      yield* runProxy(config, override, pid)
    }).pipe(
      Effect.catchTags({ ConfigError: failWithLine, ListenError: failWithLine, AdminListenError: failWithLine }),
      Effect.catchAll(failWithLine),
      // Every line of this process, in the chosen format on stderr.
      Effect.provide(logLayer(logFormat))
    )
)

const check = Command.make("check", { config: configOption }, ({ config }) =>
  loadConfig(config).pipe(
    Effect.flatMap((c) => Console.log(summarize(c))),
    Effect.catchTag("ConfigError", failWithLine)
  )
)

const cli = Command.run(Command.make("openproxy").pipe(Command.withSubcommands([start, check])), {
  name: "openproxy",
  version: VERSION
})

cli(process.argv).pipe(
  Effect.provide(Layer.mergeAll(NodeContext.layer)),
  NodeRuntime.runMain({
    disableErrorReporting: false,
    // Always exit when the main fiber is done (a drain after an upgrade ends it without a signal), with the
    // code a one-line failure set.
    teardown: (exit, onExit) =>
      defaultTeardown(exit, (code) => {
        onExit(code)
        process.exit(code !== 0 ? code : typeof process.exitCode === "number" ? process.exitCode : 0)
      })
  })
)
// The runtime's SIGTERM/SIGINT handlers are in place: one received while modules loaded is delivered to them.
releaseTerminationGuard()
