// The `openproxy` command line (SPEC §1): `start` runs the proxy, `check` validates a config file.
// Expected failures (bad config, port in use) print one line and exit 1 — never a stack trace.
import { unlink, writeFile } from "node:fs/promises"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { loadConfig, summarize } from "./config/load.js"
import * as Main from "./layers/Main.js"
import { logger, makeLogger, setLogger } from "./log.js"
import { Listener } from "./services/Listener.js"

const VERSION = "0.1.0"

const configOption = Options.text("config").pipe(Options.withAlias("c"), Options.withDescription("config file (YAML)"))

/** Expected failures end here: one line on stderr, exit code 1. */
const failWithLine = (e: { readonly message: string }) =>
  Effect.sync(() => {
    process.stderr.write(`openproxy: ${e.message}\n`)
    process.exitCode = 1
  })

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
      setLogger(makeLogger(logFormat))
      const layer = Main.fromFile(config, (c) =>
        enableHealthCheck ? { ...c, healthCheck: { ...c.healthCheck, enabled: true } } : c
      )
      yield* Effect.gen(function* () {
        const listener = yield* Listener
        if (Option.isSome(pidFile)) {
          const file = pidFile.value
          yield* Effect.acquireRelease(
            Effect.promise(() => writeFile(file, `${process.pid}\n`)),
            () => Effect.promise(() => unlink(file).catch(() => undefined))
          )
        }
        logger.log("info", "openproxy started", {
          pid: process.pid,
          listeners: listener.bound.map((b) => `${b.kind}://${b.address}:${b.port}`).join(",")
        })
        return yield* Effect.never
      }).pipe(Effect.provide(layer), Effect.scoped)
    }).pipe(Effect.catchTags({ ConfigError: failWithLine, ListenError: failWithLine }))
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
  NodeRuntime.runMain({ disableErrorReporting: false })
)
