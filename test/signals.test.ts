// Signals before the proxy is ready, and the safety net (issue 10, defect 8; docs/lifecycle.md): a SIGHUP or
// SIGUSR2 that arrives while a process starts is applied once it serves, never fatal — in a single process, at
// the cluster primary (which holds a SIGHUP for a worker still starting until it is ready) and in workers; an
// uncaught exception replaces the process in an orderly way instead of leaving it serving in an unknown state.
// Real processes (`node dist/main.js`, needs `npm run build`) and real signals.
import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import { open, readdir, readFile, readlink, writeFile } from "node:fs/promises"
import * as path from "node:path"
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest"
import { h1 } from "./support/http.js"
import { type MockProvider, startMockProvider } from "./support/mockProvider.js"
import { tempDir } from "./support/proxy.js"

const DIST_MAIN = path.resolve(import.meta.dirname, "../dist/main.js")
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

interface Proc {
  readonly child: ChildProcess
  readonly output: () => string
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

const procs: Array<Proc> = []
const extraPids = new Set<number>()
afterEach(async () => {
  for (const p of procs.splice(0)) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill("SIGKILL")
  for (const pid of extraPids) {
    try {
      process.kill(pid, "SIGKILL")
    } catch {
      // gone already
    }
  }
  extraPids.clear()
})

let dir: string
let upstream: number
let mock: MockProvider | undefined
beforeAll(async () => {
  dir = await tempDir("openproxy-signals-")
  mock = await startMockProvider()
  upstream = mock.port
})
afterAll(async () => {
  await mock?.close()
})

/** `node dist/main.js start -c file`, not waiting for anything. */
const spawnProxy = (file: string, env: NodeJS.ProcessEnv = process.env): Proc => {
  const child = spawn(process.execPath, [DIST_MAIN, "start", "-c", file], { env, stdio: ["ignore", "pipe", "pipe"] })
  let out = ""
  child.stdout!.on("data", (b: Buffer) => (out += b.toString()))
  child.stderr!.on("data", (b: Buffer) => (out += b.toString()))
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
    child.once("exit", (code, signal) => r({ code, signal }))
  )
  const p = { child, output: () => out, exited }
  procs.push(p)
  return p
}

/** Polls the output until `re` matches `times` times; fails early (with the output) if the process exits. */
const waitLog = async (p: Proc, re: RegExp, times = 1, ms = 15_000) => {
  const deadline = Date.now() + ms
  const count = () => (p.output().match(new RegExp(re.source, "g")) ?? []).length
  while (Date.now() < deadline) {
    if (count() >= times) return
    if (p.child.exitCode !== null || p.child.signalCode !== null) {
      if (count() >= times) return
      throw new Error(`process exited (${p.child.exitCode ?? p.child.signalCode}) before ${re}:\n${p.output()}`)
    }
    await sleep(20)
  }
  throw new Error(`log did not show ${re} x${times}:\n${p.output()}`)
}

/** Waits until process `pid` holds no descriptor of `file` (a reader that got EOF and closed it). */
const waitClosed = async (pid: number, file: string) => {
  const deadline = Date.now() + 10_000
  for (;;) {
    const fds = await readdir(`/proc/${pid}/fd`).catch(() => [])
    const links = await Promise.all(fds.map((fd) => readlink(`/proc/${pid}/fd/${fd}`).catch(() => "")))
    if (!links.includes(file)) return
    if (Date.now() > deadline) throw new Error(`${file} still open`)
    await sleep(10)
  }
}

/**
 * Writes `text` to a FIFO once its reader (the proxy reading its config) opens it, and waits for that reader to
 * close it (a second writer before that would add to the same read).
 */
const serveFifo = async (pid: number, fifo: string, text: string) => {
  const fh = await open(fifo, "w")
  await fh.writeFile(text)
  await fh.close()
  await waitClosed(pid, fifo)
}

/** The pids whose parent is `pid` (from /proc). */
const childrenOf = async (pid: number): Promise<Array<number>> => {
  const out: Array<number> = []
  for (const name of await readdir("/proc")) {
    if (!/^\d+$/.test(name)) continue
    const stat = await readFile(`/proc/${name}/stat`, "utf8").catch(() => "")
    const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1])
    if (ppid === pid) out.push(Number(name))
  }
  return out
}

/** The first child process of `pid` (noted for clean-up). */
const waitChild = async (pid: number): Promise<number> => {
  const deadline = Date.now() + 10_000
  for (;;) {
    const [first] = await childrenOf(pid)
    if (first !== undefined) {
      extraPids.add(first)
      return first
    }
    if (Date.now() > deadline) throw new Error("no child process")
    await sleep(5)
  }
}

const config = (o: { workers?: number; host?: string } = {}) => `
http_port: 0
http_bind_address: 127.0.0.1
graceful_shutdown_timeout: 2
workers: ${o.workers ?? 1}
providers:
  - { type: openai, host: "${o.host ?? "127.0.0.1"}", endpoint: "127.0.0.1:${upstream}", tls: false, api_key: sk-mock-openai }
`

const portOf = (p: Proc): number => Number(/listening kind=http address=\S+ port=(\d+)/.exec(p.output())![1])

describe("signals before the proxy is ready", () => {
  it("single process: a SIGHUP while the config loads is applied once it serves (a reload), not fatal", async () => {
    // The config file is a FIFO: the proxy blocks reading it, well into its start-up and before any of its own
    // handlers exist, until the test writes it. That is where the signal lands. (`start` reads the file twice:
    // once for `workers`, once for the proxy.)
    const fifo = path.join(dir, "hup.fifo")
    execFileSync("mkfifo", [fifo])
    const p = spawnProxy(fifo)
    const fh = await open(fifo, "w")
    p.child.kill("SIGHUP")
    await sleep(100)
    await fh.writeFile(config({ host: "before.test" }))
    await fh.close()
    await waitClosed(p.child.pid!, fifo)
    await serveFifo(p.child.pid!, fifo, config({ host: "before.test" }))
    await waitLog(p, /openproxy started/)
    // the reload re-reads the file: a changed config, which the proxy then serves
    await serveFifo(p.child.pid!, fifo, config({ host: "after.test" }))
    await waitLog(p, /config reloaded/)
    expect(p.output()).toMatch(/signal received while starting, applied now signal=SIGHUP/)
    const port = portOf(p)
    expect((await h1(port, { host: "after.test", path: "/v1/models" })).status).toBe(200)
    expect((await h1(port, { host: "before.test", path: "/v1/models" })).status).toBe(404)
    p.child.kill("SIGTERM")
    expect(await p.exited).toEqual({ code: 0, signal: null })
  })

  it("single process: a SIGUSR2 while the config loads upgrades once it serves, not fatal", async () => {
    const fifo = path.join(dir, "usr2.fifo")
    execFileSync("mkfifo", [fifo])
    const p = spawnProxy(fifo)
    const fh = await open(fifo, "w")
    p.child.kill("SIGUSR2")
    await sleep(100)
    await fh.writeFile(config())
    await fh.close()
    await waitClosed(p.child.pid!, fifo)
    await serveFifo(p.child.pid!, fifo, config())
    await waitLog(p, /openproxy started/)
    // the new process of the upgrade reads the config too
    const writing = open(fifo, "w")
    const newProcess = await waitChild(p.child.pid!)
    const w = await writing
    await w.writeFile(config())
    await w.close()
    await waitLog(p, /upgrade: new process ready, draining/)
    const newPid = Number(/new_pid=(\d+)/.exec(p.output())![1])
    extraPids.add(newPid)
    expect(newPid).toBe(newProcess)
    expect(await p.exited).toEqual({ code: 0, signal: null })
    expect(() => process.kill(newPid, 0)).not.toThrow()
  })

  it("single process: a SIGTERM while the config loads ends it with exit 0", async () => {
    const fifo = path.join(dir, "term.fifo")
    execFileSync("mkfifo", [fifo])
    const p = spawnProxy(fifo)
    const fh = await open(fifo, "w")
    p.child.kill("SIGTERM")
    // End the read (EOF) a moment later: a process cannot exit while a thread of it blocks in a read of a FIFO.
    await sleep(200)
    await fh.close()
    const exit = await Promise.race([p.exited, sleep(10_000).then(() => p.output())])
    expect(exit).toEqual({ code: 0, signal: null })
    expect(p.output()).not.toMatch(/openproxy started/)
  })

  it("cluster: SIGHUP and SIGUSR2 to the primary while its workers start are applied once they serve", async () => {
    const file = path.join(dir, "cluster.yml")
    await writeFile(file, config({ workers: 2 }))
    const p = spawnProxy(file)
    await waitChild(p.child.pid!)
    // The workers are starting (Node is still loading them): the old primary passed the SIGHUP on at once.
    p.child.kill("SIGHUP")
    p.child.kill("SIGUSR2")
    await waitLog(p, /openproxy started/)
    await waitLog(p, /config reloaded/, 2)
    await waitLog(p, /workers replaced/)
    expect(p.output()).not.toMatch(/exited before it was ready/)
    expect((await h1(portOf(p), { host: "127.0.0.1", path: "/v1/models" })).status).toBe(200)
    p.child.kill("SIGTERM")
    expect(await p.exited).toEqual({ code: 0, signal: null })
  })
})

describe("the safety net (uncaught exceptions)", () => {
  // A preload that throws from a signal listener: an uncaught exception on demand, in any of the processes.
  const preload = async () => {
    const file = path.join(dir, "throw-on-winch.cjs")
    await writeFile(file, `process.on("SIGWINCH", () => { throw new Error("boom") })\n`)
    return { ...process.env, NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ""} --require ${file}`.trim() }
  }

  it("a cluster worker that hits one drains and exits 70; the primary starts another; requests keep succeeding", async () => {
    const file = path.join(dir, "net-cluster.yml")
    await writeFile(file, config({ workers: 2 }))
    const p = spawnProxy(file, await preload())
    await waitLog(p, /openproxy started/)
    const port = portOf(p)
    const victim = Number(/worker_pids=(\d+)/.exec(p.output())![1])
    let failures = 0
    let ok = 0
    let running = true
    const loop = (async () => {
      while (running) {
        const r = await h1(port, { host: "127.0.0.1", path: "/v1/models" }).catch(() => undefined)
        if (r?.status === 200) ok++
        else failures++
      }
    })()
    process.kill(victim, "SIGWINCH")
    await waitLog(p, /uncaught exception: draining this worker, it exits 70/)
    await waitLog(p, new RegExp(`worker exited, starting another pid=${victim} code=70`))
    await waitLog(p, /worker started/, 3)
    const okBefore = ok
    await sleep(300)
    running = false
    await loop
    expect(failures).toBe(0)
    expect(ok).toBeGreaterThan(okBefore)
    expect(() => process.kill(victim, 0)).toThrow()
    p.child.kill("SIGTERM")
    expect((await p.exited).code).toBe(0)
  })

  it("a single process that hits one is replaced by an upgrade (a new process on the same port) and exits", async () => {
    const file = path.join(dir, "net-single.yml")
    await writeFile(file, config())
    const p = spawnProxy(file, await preload())
    await waitLog(p, /openproxy started/)
    const port = portOf(p)
    p.child.kill("SIGWINCH")
    await waitLog(p, /uncaught exception: replacing this process \(upgrade\)/)
    await waitLog(p, /upgrade: new process ready, draining/)
    const newPid = Number(/new_pid=(\d+)/.exec(p.output())![1])
    extraPids.add(newPid)
    expect(await p.exited).toEqual({ code: 0, signal: null })
    expect((await h1(port, { host: "127.0.0.1", path: "/v1/models" })).status).toBe(200)
  })
})
