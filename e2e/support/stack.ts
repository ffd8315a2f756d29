// e2e stack: builds dist/ when needed, makes test certificates, and runs the mock provider and
// `node dist/main.js start` as real child processes on free ports; every process it starts is
// stopped by `stop()` (call it in afterAll) and, as a last resort, when the test worker exits.
import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import { existsSync, mkdirSync, readdirSync, rmdirSync, rmSync, statSync } from "node:fs"
import { mkdtemp, writeFile } from "node:fs/promises"
import type { Socket } from "node:net"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { DEFAULT_CERT_NAMES, makeTestCerts, type TestCerts } from "../../test/support/certs.js"

export const ROOT = path.resolve(import.meta.dirname, "../..")
const DIST_MAIN = path.join(ROOT, "dist/main.js")
const DIST_MOCK = path.join(ROOT, "dist/mock.js")

/** The client key the proxy accepts; the provider keys are the mock's defaults. */
export const CLIENT_KEY = "sk-proxy-e2e"
export const PROVIDER_KEYS = { openai: "sk-mock-openai", anthropic: "sk-ant-mock", gemini: "gemini-mock-key" }
/** The mock's canned answer (src/mock/fixtures.ts REPLY). */
export const REPLY = "Hello from the mock provider."

// ---------- build ----------

const newestMtime = (dir: string): number => {
  let newest = 0
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name)
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs)
  }
  return newest
}

const distIsFresh = (): boolean => {
  if (!existsSync(DIST_MAIN) || !existsSync(DIST_MOCK)) return false
  const built = Math.min(statSync(DIST_MAIN).mtimeMs, statSync(DIST_MOCK).mtimeMs)
  return built >= newestMtime(path.join(ROOT, "src"))
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/**
 * Runs `npm run build` when dist/main.js or dist/mock.js is missing or older than src/ (the README's
 * `npm test` builds first, so this is usually a no-op). A lock directory keeps parallel test files
 * from building at the same time.
 */
export const ensureBuilt = async (): Promise<void> => {
  if (distIsFresh()) return
  const lock = path.join(ROOT, "dist/.e2e-build.lock")
  mkdirSync(path.dirname(lock), { recursive: true })
  for (let i = 0; ; i++) {
    try {
      mkdirSync(lock)
      break
    } catch {
      if (distIsFresh()) return
      // A lock older than 2 minutes is left over from a killed run.
      const since = statSync(lock, { throwIfNoEntry: false })?.mtimeMs ?? 0
      if (i > 1200 || Date.now() - since > 120_000) {
        rmSync(lock, { recursive: true, force: true })
      }
      await sleep(100)
    }
  }
  try {
    if (!distIsFresh()) execFileSync(process.execPath, [path.join(ROOT, "scripts/build.mjs")], { cwd: ROOT })
  } finally {
    rmdirSync(lock)
  }
}

// ---------- processes ----------

const children = new Set<ChildProcess>()
process.once("exit", () => {
  for (const c of children) c.kill("SIGKILL")
})

/**
 * The test worker may be ended without its 'exit' event (vitest stops fork workers with a signal), so a
 * tiny watchdog process holds the pids of our children: it reads "+PID" / "-PID" lines on stdin and,
 * when stdin ends (the worker is gone, however it died), SIGKILLs the pids still registered.
 */
const WATCHDOG = `
const pids = new Set()
let buf = ""
process.stdin.on("data", (b) => {
  buf += b
  const lines = buf.split("\\n")
  buf = lines.pop()
  for (const l of lines) (l[0] === "+" ? pids.add(l.slice(1)) : pids.delete(l.slice(1)))
})
process.stdin.on("end", () => {
  for (const p of pids) try { process.kill(Number(p), "SIGKILL") } catch {}
  process.exit(0)
})
`
let watchdog: ChildProcess | undefined
const watch = (pid: number | undefined, add: boolean): void => {
  if (pid === undefined) return
  if (watchdog === undefined) {
    watchdog = spawn(process.execPath, ["-e", WATCHDOG], { stdio: ["pipe", "ignore", "ignore"], detached: true })
    watchdog.unref()
    ;(watchdog.stdin as unknown as Socket).unref()
    watchdog.stdin?.on("error", () => {})
  }
  watchdog.stdin?.write(`${add ? "+" : "-"}${pid}\n`)
}

export interface Child {
  readonly child: ChildProcess
  readonly output: () => string
  readonly stop: () => Promise<void>
}

/** Spawns `node script args` and resolves once its output matches `ready` (or rejects on exit/time-out). */
const spawnUntil = (script: string, args: string[], ready: RegExp, timeoutMs = 20_000): Promise<Child> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, ...args], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] })
    children.add(child)
    watch(child.pid, true)
    let out = ""
    const exited = new Promise<void>((r) =>
      child.once("exit", () => {
        children.delete(child)
        watch(child.pid, false)
        r()
      })
    )
    const stop = async (): Promise<void> => {
      if (child.exitCode !== null || child.signalCode !== null) return
      child.kill("SIGTERM")
      const t = setTimeout(() => child.kill("SIGKILL"), 5_000)
      await exited
      clearTimeout(t)
    }
    const timer = setTimeout(() => {
      child.kill("SIGKILL")
      reject(new Error(`${path.basename(script)} did not start in ${timeoutMs} ms:\n${out}`))
    }, timeoutMs)
    const onData = (b: Buffer): void => {
      out += b.toString()
      if (ready.test(out)) {
        clearTimeout(timer)
        resolve({ child, output: () => out, stop })
      }
    }
    child.stdout?.on("data", onData)
    child.stderr?.on("data", onData)
    void exited.then(() => {
      clearTimeout(timer)
      reject(
        new Error(`${path.basename(script)} exited (${child.exitCode ?? child.signalCode}) before starting:\n${out}`)
      )
    })
  })

export interface MockProcess extends Child {
  readonly port: number
}

export const startMock = async (args: string[] = []): Promise<MockProcess> => {
  const c = await spawnUntil(DIST_MOCK, ["--port", "0", "--host", "127.0.0.1", ...args], /listening on \S+:(\d+)\n/)
  const m = /listening on \S+:(\d+)\n/.exec(c.output())
  return { ...c, port: Number(m?.[1]) }
}

export interface ProxyProcess extends Child {
  readonly httpPort: number
  readonly httpsPort: number
}

export const startProxy = async (configFile: string): Promise<ProxyProcess> => {
  const c = await spawnUntil(DIST_MAIN, ["start", "-c", configFile], /openproxy started/)
  const port = (kind: string): number => {
    const m = new RegExp(`listening kind=${kind} address=\\S+ port=(\\d+)`).exec(c.output())
    if (m === null) throw new Error(`no ${kind} listener in the proxy's output:\n${c.output()}`)
    return Number(m[1])
  }
  return { ...c, httpPort: port("http"), httpsPort: port("https") }
}

// ---------- the stack ----------

/** Where a provider's upstream is: the plain HTTP/1.1 mock, or the TLS mock that offers h2 by ALPN. */
export type Upstream = "h1" | "h2"
export type Family = "openai" | "anthropic" | "gemini"

/** The provider host names the proxy routes: `openai.test` (HTTP/1.1 upstream), `openai-h2.test` (h2 upstream)... */
export const providerHost = (family: Family, upstream: Upstream): string =>
  upstream === "h1" ? `${family}.test` : `${family}-h2.test`

export interface Stack {
  readonly dir: string
  readonly certs: TestCerts
  readonly mock: MockProcess
  readonly tlsMock: MockProcess
  readonly proxy: ProxyProcess
  /** every line the proxy wrote so far */
  readonly proxyOutput: () => string
  readonly stop: () => Promise<void>
}

const FAMILIES: Family[] = ["openai", "anthropic", "gemini"]

export const proxyConfig = (certs: TestCerts, mockPort: number, tlsMockPort: number): string => {
  const lines = [
    "# written by e2e/support/stack.ts",
    "http_port: 0",
    "http_bind_address: 127.0.0.1",
    "https_port: 0",
    "https_bind_address: 127.0.0.1",
    `cert_file: ${JSON.stringify(certs.certFile)}`,
    `private_key_file: ${JSON.stringify(certs.keyFile)}`,
    "auth_keys:",
    `  - ${CLIENT_KEY}`,
    "graceful_shutdown_timeout: 1",
    "providers:"
  ]
  for (const family of FAMILIES) {
    lines.push(
      `  - type: ${family}`,
      `    host: ${providerHost(family, "h1")}`,
      `    endpoint: 127.0.0.1:${mockPort}`,
      "    tls: false",
      `    api_key: ${PROVIDER_KEYS[family]}`,
      `  - type: ${family}`,
      `    host: ${providerHost(family, "h2")}`,
      `    endpoint: localhost:${tlsMockPort}`,
      "    tls: true",
      `    ca_file: ${JSON.stringify(certs.caFile)}`,
      `    api_key: ${PROVIDER_KEYS[family]}`
    )
  }
  return lines.join("\n") + "\n"
}

/**
 * Starts: the plain HTTP/1.1 mock, a TLS mock offering h2 + http/1.1, and the proxy (plain listener with
 * h2c, TLS listener with h2 + http/1.1) routing `<family>.test` to the first and `<family>-h2.test` to the second.
 */
export const startStack = async (): Promise<Stack> => {
  await ensureBuilt()
  const dir = await mkdtemp(path.join(tmpdir(), "openproxy-e2e-"))
  const started: Child[] = []
  const stop = async (): Promise<void> => {
    await Promise.all(started.map((c) => c.stop()))
    rmSync(dir, { recursive: true, force: true })
  }
  try {
    // Node does not match a one-label wildcard (`*.test`), so every name is listed.
    const names = [...DEFAULT_CERT_NAMES, ...FAMILIES.map((f) => providerHost(f, "h2")), "unknown.test"]
    const certs = await makeTestCerts(dir, names)
    const track = <C extends Child>(c: C): C => {
      started.push(c)
      return c
    }
    const [mock, tlsMock] = await Promise.all([
      startMock().then(track),
      startMock(["--tls-cert", certs.certFile, "--tls-key", certs.keyFile, "--http2"]).then(track)
    ])
    const configFile = path.join(dir, "config.yml")
    await writeFile(configFile, proxyConfig(certs, mock.port, tlsMock.port))
    const proxy = await startProxy(configFile)
    started.push(proxy)
    return { dir, certs, mock, tlsMock, proxy, proxyOutput: proxy.output, stop }
  } catch (e) {
    await stop()
    throw e
  }
}
