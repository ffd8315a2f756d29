// One KeyResolver per process (issue 13): the health probe and the request path share it, so a `$(command)`
// provider key with `api_key_cache_ttl` is run once for both (before, each had its own cache and ran it twice).
// Over real sockets with the full layers, a mock provider and a command that counts its runs in a file.
import { readFile } from "node:fs/promises"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { h1 } from "./support/http.js"
import { DEFAULT_KEYS, type MockProvider, startMockProvider } from "./support/mockProvider.js"
import { type RunningProxy, startProxy, tempDir } from "./support/proxy.js"

let mock: MockProvider
let proxy: RunningProxy
let runs: string

beforeAll(async () => {
  mock = await startMockProvider()
  runs = path.join(await tempDir("openproxy-provider-keys-"), "runs")
  proxy = await startProxy(`
http_port: 0
http_bind_address: 127.0.0.1
health_check: { enabled: true, interval: 30, timeout: 2 }
providers:
  - type: openai
    host: only.test
    endpoint: "127.0.0.1:${mock.port}"
    tls: false
    api_key: '$(echo run >> ${runs}; printf ${DEFAULT_KEYS.openai})'
    api_key_cache_ttl: 60
    health_check: { path: /health }
`)
})
afterAll(async () => {
  await proxy?.close()
  await mock?.close()
})

const runCount = async () => (await readFile(runs, "utf8").catch(() => "")).split("\n").filter((l) => l !== "").length

describe("ProviderKeys", () => {
  it("the probe and the requests share one cached $(command) key", async () => {
    // The first probe runs at start-up with the key: wait for it to reach the mock.
    for (let i = 0; i < 200 && !mock.received.some((r) => r.path === "/health"); i++)
      await new Promise((r) => setTimeout(r, 10))
    const probe = mock.received.find((r) => r.path === "/health")
    expect(probe?.rawHeaders).toContain(`Bearer ${DEFAULT_KEYS.openai}`)
    for (let i = 0; i < 3; i++) {
      const r = await h1(proxy.httpPort!, {
        host: "only.test",
        method: "POST",
        path: "/v1/chat/completions",
        headers: [["Content-Type", "application/json"]],
        body: JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] })
      })
      expect(r.status).toBe(200)
    }
    expect(mock.received.filter((r) => r.path === "/v1/chat/completions").at(-1)?.rawHeaders).toContain(
      `Bearer ${DEFAULT_KEYS.openai}`
    )
    expect(await runCount()).toBe(1)
  })
})
