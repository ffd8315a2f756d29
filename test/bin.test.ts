// The built `openproxy` bin run through its shebang (`./dist/main.js`, not `node dist/main.js`), on the Node that
// runs this test: .ci/run runs the suite once per supported Node version with that version first on PATH, and
// the spawned bin gets the same PATH order, so each version starts the bin with the shebang's flags (issue 11:
// Node 22 and 24 refused a flag only Node 20 knew). Checks `--version`, `check`, `start` answering a request, and
// `workers: 2` answering requests from two workers started with the start flags and the version's runtime flags.
// Needs `npm run build`.
import { type ChildProcess, spawn } from "node:child_process"
import { readFile, writeFile } from "node:fs/promises"
import * as path from "node:path"
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest"
import { runtimeV8Flags, START_V8_FLAGS } from "../src/v8flags.js"
import { h1 } from "./support/http.js"
import { type MockProvider, startMockProvider } from "./support/mockProvider.js"
import { tempDir } from "./support/proxy.js"

const BIN = path.resolve(import.meta.dirname, "../dist/main.js")
/** This test's Node first on PATH: the shebang's `env node` finds the version under test. */
const env = { ...process.env, PATH: `${path.dirname(process.execPath)}${path.delimiter}${process.env.PATH ?? ""}` }

let dir: string
let mock: MockProvider
const children: Array<ChildProcess> = []

beforeAll(async () => {
  dir = await tempDir("openproxy-bin-")
  mock = await startMockProvider({})
})
afterEach(async () => {
  for (const c of children.splice(0)) {
    if (c.exitCode === null && c.signalCode === null) {
      c.kill("SIGTERM")
      await new Promise((r) => c.once("exit", r))
    }
  }
})
afterAll(() => mock.close())

const run = (args: ReadonlyArray<string>) =>
  new Promise<{ code: number | null; out: string }>((resolve, reject) => {
    const c = spawn(BIN, args, { env, stdio: ["ignore", "pipe", "pipe"] })
    let out = ""
    c.stdout.on("data", (b: Buffer) => (out += b.toString()))
    c.stderr.on("data", (b: Buffer) => (out += b.toString()))
    c.once("error", reject)
    c.once("exit", (code) => resolve({ code, out }))
  })

/** Starts the bin and waits for `lines` log lines matching `ready` (bounded). */
const start = (configFile: string, ready: RegExp, lines = 1) =>
  new Promise<{ child: ChildProcess; output: () => string }>((resolve, reject) => {
    const child = spawn(BIN, ["start", "-c", configFile], { env, stdio: ["ignore", "pipe", "pipe"] })
    children.push(child)
    let out = ""
    const timer = setTimeout(() => reject(new Error(`bin did not start in time:\n${out}`)), 20_000)
    const onData = (b: Buffer) => {
      out += b.toString()
      if ((out.match(new RegExp(ready.source, "g")) ?? []).length >= lines) {
        clearTimeout(timer)
        resolve({ child, output: () => out })
      }
    }
    child.stdout.on("data", onData)
    child.stderr.on("data", onData)
    child.once("exit", (code) => {
      clearTimeout(timer)
      reject(new Error(`bin exited (${code}) before it was ready:\n${out}`))
    })
  })

const config = async (name: string, extra = "") => {
  const f = path.join(dir, `${name}.yml`)
  await writeFile(
    f,
    `http_port: 0
http_bind_address: 127.0.0.1
${extra}
providers:
  - { type: openai, host: "127.0.0.1", endpoint: "127.0.0.1:${mock.port}", tls: false, api_key: sk-mock-openai }
`
  )
  return f
}

/** A free port (cluster workers share a fixed port, not an ephemeral one). */
const freePort = async () => {
  const net = await import("node:net")
  return new Promise<number>((r) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => {
      const n = (s.address() as import("node:net").AddressInfo).port
      s.close(() => r(n))
    })
  })
}

const nodeFlagsOf = (line: string) => /node_flags="([^"]*)"/.exec(line)?.[1]?.split(" ") ?? []

describe(`the bin through its shebang on Node ${process.version}`, () => {
  it("starts with the start flags, which are the only flags in the shebang", async () => {
    const first = (await readFile(BIN, "utf8")).split("\n")[0]
    expect(first).toBe(`#!/usr/bin/env -S node ${START_V8_FLAGS.join(" ")}`)
  })

  it("--version", async () => {
    const r = await run(["--version"])
    expect(r.out.trim()).toMatch(/^\d+\.\d+\.\d+$/)
    expect(r.code).toBe(0)
  })

  it("check -c FILE", async () => {
    const r = await run(["check", "-c", await config("check")])
    expect(r.code).toBe(0)
    expect(r.out).not.toMatch(/bad option|unrecognized flag/)
  })

  it("start answers a request, on this Node, with the start flags and this version's runtime flags", async () => {
    const { output } = await start(await config("start"), /openproxy started/)
    const line = output()
      .split("\n")
      .find((l) => l.includes("openproxy started"))!
    expect(line).toContain(`node=${process.version}`)
    expect(nodeFlagsOf(line)).toEqual([...START_V8_FLAGS, ...runtimeV8Flags(process.versions.node)])
    expect(output()).not.toMatch(/unrecognized flag|bad option/)
    const port = Number(/port=(\d+)/.exec(output())![1])
    const r = await h1(port, { host: "127.0.0.1", path: "/v1/models" })
    expect(r.status).toBe(200)
  })

  it("workers: 2 answers requests from two workers started with the same flags", async () => {
    const port = await freePort()
    const f = await config("workers", "workers: 2").then(async (file) => {
      const text = (await readFile(file, "utf8")).replace("http_port: 0", `http_port: ${port}`)
      await writeFile(file, text)
      return file
    })
    const { output } = await start(f, /openproxy started/)
    const workerLines = output()
      .split("\n")
      .filter((l) => l.includes("worker started"))
    expect(workerLines).toHaveLength(2)
    for (const l of workerLines) {
      expect(l).toContain(`node=${process.version}`)
      // a worker gets the start flags on its command line and sets this version's runtime flags itself
      expect(nodeFlagsOf(l)).toEqual([...START_V8_FLAGS, ...runtimeV8Flags(process.versions.node)])
    }
    const pids = new Set(workerLines.map((l) => /pid=(\d+)/.exec(l)![1]))
    expect(pids.size).toBe(2)
    for (let i = 0; i < 6; i++) {
      const r = await h1(port, { host: "127.0.0.1", path: "/v1/models" })
      expect(r.status).toBe(200)
    }
  })
})
