// Test harness: runs openproxy in-process from a YAML text (the real layers, real sockets), or as a real
// `node dist/main.js start` process; captures log lines so tests can check that no secret is ever logged.
import { type ChildProcess, spawn } from "node:child_process"
import { mkdtemp, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import * as path from "node:path"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Scope from "effect/Scope"
import * as Main from "../../src/layers/Main.js"
import * as Log from "../../src/log.js"
import { Admin } from "../../src/services/Admin.js"
import { Config, type ConfigService } from "../../src/services/Config.js"
import { Listener } from "../../src/services/Listener.js"
import * as Reloader from "../../src/services/Reloader.js"

/** Every log line written by in-process proxies of this test file (those built with `captureLog`). */
export const logLines: Array<string> = []

/** Every access-log chunk (one or more lines) written by in-process proxies of this test file. */
export const accessLines: Array<string> = []

/** The logger of in-process proxies: text lines from debug up, into `logLines`; the access log into `accessLines`. */
export const captureLog = Log.layer("text", {
  minLevel: "debug",
  write: (line) => logLines.push(line),
  access: (chunk) => accessLines.push(chunk)
})

export const tempDir = (prefix = "openproxy-test-") => mkdtemp(path.join(tmpdir(), prefix))

export interface RunningProxy {
  readonly httpPort: number | undefined
  readonly httpsPort: number | undefined
  readonly file: string
  /** The Config service, and `reload`: what a SIGHUP runs (the Reloader; true when the new config is in). */
  readonly config: ConfigService & { readonly reload: Effect.Effect<boolean> }
  /** The admin listener's port now (it may change on reload), when one is bound. */
  readonly adminPort: () => number | undefined
  readonly close: () => Promise<void>
}

/** Writes `yaml` to a temp file and starts the proxy's layers on it in this process. */
export const startProxy = async (yaml: string, dir?: string): Promise<RunningProxy> => {
  const d = dir ?? (await tempDir())
  const file = path.join(d, `config-${Date.now()}-${Math.random().toString(36).slice(2)}.yml`)
  await writeFile(file, yaml)
  const scope = Effect.runSync(Scope.make())
  const ctx = await Effect.runPromise(
    Layer.buildWithScope(Reloader.layer.pipe(Layer.provideMerge(Main.fromFile(file)), Layer.provide(captureLog)), scope)
  ).catch(async (e) => {
    await Effect.runPromise(Scope.close(scope, Exit.void))
    throw e
  })
  const listener = Context.get(ctx, Listener)
  return {
    httpPort: listener.bound.find((b) => b.kind === "http")?.port,
    httpsPort: listener.bound.find((b) => b.kind === "https")?.port,
    file,
    config: { ...Context.get(ctx, Config), reload: Context.get(ctx, Reloader.Reloader).reload },
    adminPort: () => Context.get(ctx, Admin).bound()?.port,
    close: () => Effect.runPromise(Scope.close(scope, Exit.void))
  }
}

export interface ProxyProcess {
  readonly child: ChildProcess
  readonly pid: number
  /** Ports from the "listening" log lines, by kind. */
  readonly ports: { http?: number; https?: number }
  readonly output: () => string
  /** Resolves with the exit code once the process has exited. */
  readonly exited: Promise<number | null>
  readonly stop: (signal?: NodeJS.Signals) => Promise<number | null>
}

const DIST_MAIN = path.resolve(import.meta.dirname, "../../dist/main.js")

/** Starts `node dist/main.js start -c FILE ...args` and waits until it logs that it started. */
export const startProxyProcess = (
  configFile: string,
  args: ReadonlyArray<string> = [],
  env: NodeJS.ProcessEnv = process.env,
  timeoutMs = 15_000
): Promise<ProxyProcess> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [DIST_MAIN, "start", "-c", configFile, ...args], {
      env,
      stdio: ["ignore", "pipe", "pipe"]
    })
    let out = ""
    const ports: { http?: number; https?: number } = {}
    const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)))
    const timer = setTimeout(() => {
      child.kill("SIGKILL")
      reject(new Error(`proxy did not start in time:\n${out}`))
    }, timeoutMs)
    const onData = (b: Buffer) => {
      out += b.toString()
      for (const m of out.matchAll(/listening kind=(https?) address=\S+ port=(\d+)/g)) {
        ports[m[1] as "http" | "https"] = Number(m[2])
      }
      if (out.includes("openproxy started")) {
        clearTimeout(timer)
        resolve({
          child,
          pid: child.pid!,
          ports,
          output: () => out,
          exited,
          stop: async (signal = "SIGTERM") => {
            if (child.exitCode === null && child.signalCode === null) child.kill(signal)
            return exited
          }
        })
      }
    }
    child.stdout!.on("data", onData)
    child.stderr!.on("data", onData)
    void exited.then((code) => {
      clearTimeout(timer)
      reject(new Error(`proxy exited (${code}) before starting:\n${out}`))
    })
  })

/** Runs `node dist/main.js ...args` to completion: exit code and output. */
export const runCli = (args: ReadonlyArray<string>, env: NodeJS.ProcessEnv = process.env) =>
  new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, [DIST_MAIN, ...args], { env, stdio: ["ignore", "pipe", "pipe"] })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (b: Buffer) => (stdout += b.toString()))
    child.stderr.on("data", (b: Buffer) => (stderr += b.toString()))
    child.on("exit", (code) => resolve({ code, stdout, stderr }))
  })
