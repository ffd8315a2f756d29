// A real redis-server for tests (Debian package `redis-server`): started on a free loopback port in a temp dir, with
// no persistence (`--save "" --appendonly no`), optionally a password; it can be stopped, restarted on the same
// port (empty, like a Redis that lost its data), paused (SIGSTOP: a slow Redis) and resumed. A test fails (never
// skips) when the binary is missing: CI installs it (scripts/redis-test-server.sh install).
import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import { mkdtemp, rm } from "node:fs/promises"
import * as net from "node:net"
import { tmpdir } from "node:os"
import * as path from "node:path"

export interface TestRedis {
  readonly port: number
  /** `redis://` URL with the password, if any. */
  readonly url: string
  /** Stops the server (it can be restarted). */
  readonly stop: () => Promise<void>
  /** Stops it for good and removes its directory. */
  readonly dispose: () => Promise<void>
  /** Starts it again on the same port (empty). */
  readonly restart: () => Promise<void>
  readonly pause: () => void
  readonly resume: () => void
  /** Runs one command over a raw connection (RESP inline), for checks. */
  readonly command: (...args: Array<string>) => Promise<string>
}

const binary = (): string => {
  try {
    return execFileSync("sh", ["-c", "command -v redis-server"], { encoding: "utf8" }).trim()
  } catch {
    throw new Error(
      "redis-server not found: install it (apt-get install redis-server, or scripts/redis-test-server.sh install)"
    )
  }
}

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const s = net.createServer()
    s.once("error", reject)
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as net.AddressInfo).port
      s.close(() => resolve(port))
    })
  })

/** Sends one command (RESP array) and returns the first reply line. */
const send = (port: number, password: string | undefined, args: ReadonlyArray<string>): Promise<string> =>
  new Promise((resolve, reject) => {
    const sock = net.connect(port, "127.0.0.1")
    const enc = (a: ReadonlyArray<string>) =>
      `*${a.length}\r\n${a.map((x) => `$${Buffer.byteLength(x)}\r\n${x}\r\n`).join("")}`
    let buf = ""
    const expected = password === undefined ? 1 : 2
    sock.setTimeout(2000, () => sock.destroy(new Error("redis command timed out")))
    sock.on("error", reject)
    sock.on("data", (d) => {
      buf += d.toString("latin1")
      const lines = buf.split("\r\n")
      if (lines.length > expected) {
        sock.end()
        resolve(lines[expected - 1])
      }
    })
    sock.on("connect", () => sock.write((password === undefined ? "" : enc(["AUTH", password])) + enc(args)))
  })

export const startRedis = async (options: { readonly password?: string } = {}): Promise<TestRedis> => {
  const bin = binary()
  const dir = await mkdtemp(path.join(tmpdir(), "openproxy-redis-"))
  const port = await freePort()
  const password = options.password
  let child: ChildProcess | undefined

  const launch = async () => {
    const args = ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    args.push("--dir", dir, "--daemonize", "no", "--loglevel", "warning")
    if (password !== undefined) args.push("--requirepass", password)
    const c = spawn(bin, args, { stdio: ["ignore", "ignore", "pipe"] })
    child = c
    // If the test process ends without stopping it (a crash, a time-out), the server goes with it.
    const reap = () => c.kill("SIGKILL")
    process.once("exit", reap)
    c.once("exit", () => process.removeListener("exit", reap))
    let stderr = ""
    c.stderr?.on("data", (d) => {
      stderr += String(d)
    })
    const deadline = Date.now() + 10_000
    for (;;) {
      if (c.exitCode !== null) throw new Error(`redis-server exited: ${stderr}`)
      const reply = await send(port, password, ["PING"]).catch(() => "")
      if (reply === "+PONG") return
      if (Date.now() > deadline) throw new Error(`redis-server did not answer on ${port}: ${stderr}`)
      await new Promise((r) => setTimeout(r, 50))
    }
  }
  const halt = async () => {
    const c = child
    child = undefined
    if (c === undefined || c.exitCode !== null) return
    const exited = new Promise((r) => c.once("exit", r))
    c.kill("SIGCONT")
    c.kill("SIGTERM")
    await exited
  }

  await launch()
  return {
    port,
    url:
      password === undefined
        ? `redis://127.0.0.1:${port}`
        : `redis://:${encodeURIComponent(password)}@127.0.0.1:${port}`,
    stop: halt,
    dispose: async () => {
      await halt()
      await rm(dir, { recursive: true, force: true })
    },
    restart: async () => {
      await halt()
      await launch()
    },
    pause: () => child?.kill("SIGSTOP"),
    resume: () => child?.kill("SIGCONT"),
    command: (...args) => send(port, password, args)
  }
}
