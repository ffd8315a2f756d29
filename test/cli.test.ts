// The built CLI (SPEC §1): `check` and `start` on bad configs exit 1 with one line naming the field, never a
// stack trace; `check` on the example exits 0; a port in use is a one-line error too. Needs `npm run build`.
import { writeFile } from "node:fs/promises"
import * as net from "node:net"
import * as path from "node:path"
import { beforeAll, describe, expect, it } from "vitest"
import { runCli, tempDir } from "./support/proxy.js"

let dir: string
beforeAll(async () => {
  dir = await tempDir()
})

const write = async (name: string, text: string) => {
  const f = path.join(dir, name)
  await writeFile(f, text)
  return f
}

const provider = `providers:\n  - { type: openai, host: "a.test", endpoint: "127.0.0.1:9", tls: false }\n`

describe("openproxy check / start with bad configs", () => {
  const bad: Array<[string, string, RegExp]> = [
    ["unknown key", `http_port: 1\nhttp_prot: 2\n${provider}`, /http_prot: unknown field/],
    [
      "unknown provider key",
      `http_port: 1\nproviders:\n  - { type: openai, host: a, endpoint: b, wieght: 2 }\n`,
      /providers\[0\]\.wieght/
    ],
    [
      "zero weight",
      `http_port: 1\nproviders:\n  - { type: openai, host: a, endpoint: b, weight: 0 }\n`,
      /providers\[0\]\.weight/
    ],
    [
      "negative weight",
      `http_port: 1\nproviders:\n  - { type: openai, host: a, endpoint: b, weight: -1 }\n`,
      /providers\[0\]\.weight/
    ],
    [
      "missing cert file",
      `https_port: 1\ncert_file: /nonexistent/c.pem\nprivate_key_file: /nonexistent/k.pem\n${provider}`,
      /cert_file/
    ],
    ["no listener", provider, /http_port/],
    [
      "unset variable",
      `http_port: 1\nproviders:\n  - { type: openai, host: a, endpoint: b, api_key: "\${OPENPROXY_TEST_UNSET_VAR}" }\n`,
      /providers\[0\]\.api_key.*OPENPROXY_TEST_UNSET_VAR/
    ],
    ["broken YAML", `http_port: 1\nproviders: [ {type: openai\n`, /line \d+/]
  ]
  for (const [name, text, pattern] of bad) {
    for (const cmd of ["check", "start"]) {
      it(`${cmd}: ${name} → exit 1 naming the field`, async () => {
        const f = await write(`${name.replace(/\W/g, "_")}.yml`, text)
        const env = { ...process.env }
        delete env.OPENPROXY_TEST_UNSET_VAR
        const r = await runCli([cmd, "-c", f], env)
        expect(r.code).toBe(1)
        const lines = r.stderr.trim().split("\n")
        expect(lines).toHaveLength(1)
        expect(lines[0]).toMatch(pattern)
        expect(lines[0]).toContain(f)
        expect(r.stderr).not.toMatch(/\n\s+at /)
      })
    }
  }
  it("check on examples/config.yml exits 0 and prints a summary", async () => {
    const r = await runCli(["check", "-c", path.resolve(import.meta.dirname, "../examples/config.yml")])
    expect(r.code).toBe(0)
    expect(r.stdout).toContain("providers (")
    expect(r.stdout).not.toContain("sk-mock-openai")
  })
  it("start on a port in use exits 1 with one line", async () => {
    const blocker = net.createServer()
    await new Promise<void>((r) => blocker.listen(0, "127.0.0.1", r))
    const port = (blocker.address() as net.AddressInfo).port
    try {
      const f = await write("busy.yml", `http_port: ${port}\nhttp_bind_address: 127.0.0.1\n${provider}`)
      const r = await runCli(["start", "-c", f])
      expect(r.code).toBe(1)
      expect(r.stderr.trim().split("\n")).toHaveLength(1)
      expect(r.stderr).toContain("EADDRINUSE")
    } finally {
      blocker.close()
    }
  })
  it("--version prints the version", async () => {
    const r = await runCli(["--version"])
    expect(r.code).toBe(0)
    expect(r.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/)
  })
})

describe("V8 flags per Node version (src/v8flags.ts)", () => {
  it("start flags are known to every supported Node; runtime flags are listed per major, none for others", async () => {
    const { START_V8_FLAGS, runtimeV8Flags } = await import("../src/v8flags.js")
    expect(START_V8_FLAGS).toEqual(["--single-threaded-gc", "--v8-pool-size=1", "--max-semi-space-size=16"])
    // Node 20 knows only --memory-reducer-single-gc, Node 22 and 24 only --memory-reducer-gc-count
    expect(runtimeV8Flags("20.20.2")).toEqual(["--memory-reducer-single-gc"])
    expect(runtimeV8Flags("22.23.5")).toEqual(["--memory-reducer-gc-count=1"])
    expect(runtimeV8Flags("24.22.3")).toEqual(["--memory-reducer-gc-count=1"])
    expect(runtimeV8Flags("26.0.0")).toEqual([])
    expect(runtimeV8Flags("23.1.0")).toEqual([])
  })
  it("a flag the operator gave (any form, command line or NODE_OPTIONS) is never overridden", async () => {
    const { applyRuntimeV8Flags, proxyExecArgv, START_V8_FLAGS } = await import("../src/v8flags.js")
    expect(applyRuntimeV8Flags("24.1.0", ["--memory-reducer-gc-count=2"], undefined)).toEqual([])
    expect(applyRuntimeV8Flags("24.1.0", [], "--max-old-space-size=512 --memory_reducer_gc_count=3")).toEqual([])
    expect(applyRuntimeV8Flags("20.18.0", ["--no-memory-reducer-single-gc"], undefined)).toEqual([])
    // workers and upgrades: the current execArgv plus the start flags it lacks, never a runtime flag
    expect(proxyExecArgv(["--no-single-threaded-gc", "--inspect"])).toEqual([
      "--no-single-threaded-gc",
      "--inspect",
      ...START_V8_FLAGS.filter((f) => f !== "--single-threaded-gc")
    ])
    expect(proxyExecArgv([])).toEqual([...START_V8_FLAGS])
  })
})
