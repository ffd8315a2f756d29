// The access log of a real `openproxy start` process (SPEC §10): on stdout (the other log lines stay on stderr), in
// the `--log-format` chosen on the command line (json here), one line per request; `access_log: false` applied by a
// SIGHUP reload stops it for the requests that follow.
import { writeFile } from "node:fs/promises"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { h1 } from "./support/http.js"
import { DEFAULT_KEYS, type MockProvider, startMockProvider } from "./support/mockProvider.js"
import { type ProxyProcess, startProxyProcess, tempDir } from "./support/proxy.js"

let mock: MockProvider
let proc: ProxyProcess
let file: string
let port = 0
let stdout = ""
let stderr = ""

const config = (accessLog: boolean) => `
http_port: 0
http_bind_address: 127.0.0.1
access_log: ${accessLog}
providers:
  - {type: openai, host: oa.test, endpoint: "127.0.0.1:${mock.port}", tls: false, api_key: ${DEFAULT_KEYS.openai}}
`

beforeAll(async () => {
  mock = await startMockProvider()
  file = path.join(await tempDir(), "config.yml")
  await writeFile(file, config(true))
  proc = await startProxyProcess(file, ["--log-format", "json"])
  // (the harness reads ports from text lines; json ones say it as a field)
  port = Number(/"message":"listening"[^\n]*"port":(\d+)/.exec(proc.output())?.[1])
  proc.child.stdout!.on("data", (b: Buffer) => (stdout += b.toString()))
  proc.child.stderr!.on("data", (b: Buffer) => (stderr += b.toString()))
})
afterAll(async () => {
  await proc?.stop()
  await mock?.close()
})

const chat = (id: string) =>
  h1(port, {
    host: "oa.test",
    method: "POST",
    path: "/v1/chat/completions?trace=1",
    headers: [
      ["Content-Type", "application/json"],
      ["x-request-id", id],
      ["x-mock-usage", "input=21,output=8,cache_read=4,reasoning=2"]
    ],
    body: JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] })
  })

const until = async (cond: () => boolean, what: string): Promise<void> => {
  for (let i = 0; i < 250; i++) {
    if (cond()) return
    await new Promise((r) => setTimeout(r, 20))
  }
  throw new Error(`timed out waiting for ${what}`)
}

describe("the access log of an openproxy process", () => {
  it("json lines on stdout in the --log-format; off after a reload with access_log: false", async () => {
    const r = await chat("proc-id-1")
    expect(r.status).toBe(200)
    await until(() => stdout.includes('"request_id":"proc-id-1"'), "the access line")
    const line = stdout.split("\n").find((l) => l.includes('"request_id":"proc-id-1"'))!
    const entry = JSON.parse(line) as Record<string, unknown>
    expect(entry).toMatchObject({
      level: "info",
      message: "access",
      request_id: "proc-id-1",
      client: "127.0.0.1",
      listener: "http",
      protocol: "http/1.1",
      method: "POST",
      host: "oa.test",
      path: "/v1/chat/completions",
      provider: "oa.test#0",
      upstream_protocol: "http/1.1",
      key: null,
      status: 200,
      bytes_out: r.body.length,
      ttft_ms: null,
      attempts: 1,
      model: "gpt-4o-mini",
      input_tokens: 21,
      output_tokens: 8,
      cache_read_tokens: 4,
      cache_write_tokens: 0,
      reasoning_tokens: 2,
      outcome: "ok"
    })
    expect(stderr).not.toContain("proc-id-1")

    await writeFile(file, config(false))
    const reloads = stderr.split("config reloaded").length
    proc.child.kill("SIGHUP")
    await until(() => stderr.split("config reloaded").length > reloads, "the reload")
    expect((await chat("proc-id-2")).status).toBe(200)
    // a later line would be out by now (one event-loop turn): a third request with the log back on proves it
    await writeFile(file, config(true))
    proc.child.kill("SIGHUP")
    await until(() => stderr.split("config reloaded").length > reloads + 1, "the second reload")
    expect((await chat("proc-id-3")).status).toBe(200)
    await until(() => stdout.includes('"request_id":"proc-id-3"'), "the access line after the log is back on")
    expect(stdout).not.toContain("proc-id-2")
  })
})
