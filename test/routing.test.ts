// Routing (SPEC §3) over real sockets: host matching, path prefixes, 404/401, priority, fallback, weights.
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { h1 } from "./support/http.js"
import { type MockProvider, startMockProvider } from "./support/mockProvider.js"
import { type RunningProxy, startProxy } from "./support/proxy.js"

let mock: MockProvider
let proxy: RunningProxy

beforeAll(async () => {
  mock = await startMockProvider()
  proxy = await startProxy(`
http_port: 0
http_bind_address: 127.0.0.1
auth_keys: ["client-key"]
providers:
  - { type: openai, host: "api.example.com", endpoint: "127.0.0.1:${mock.port}", tls: false, api_key: sk-mock-openai }
  - { type: openai, host: "local/openai", endpoint: "127.0.0.1:${mock.port}", tls: false, api_key: sk-mock-openai }
`)
})
afterAll(async () => {
  await proxy?.close()
  await mock?.close()
})

describe("routing", () => {
  it("routes by Host case-insensitively and without a trailing dot", async () => {
    for (const host of [
      "api.example.com",
      "API.Example.COM",
      "api.example.com.",
      `api.example.com:${proxy.httpPort}`
    ]) {
      const r = await h1(proxy.httpPort!, {
        host,
        path: "/v1/models",
        headers: [["authorization", "Bearer client-key"]]
      })
      expect(r.status, host).toBe(200)
      expect(r.headers["x-upstream-protocol"]).toBe("http/1.1")
    }
  })
  it("404 with the exact body for an unknown host", async () => {
    const r = await h1(proxy.httpPort!, { host: "nope.example.com", path: "/v1/models" })
    expect(r.status).toBe(404)
    expect(r.text).toBe("No provider found")
    expect(r.headers["content-type"]).toBe("text/plain; charset=utf-8")
  })
  it("strips the path prefix", async () => {
    const r = await h1(proxy.httpPort!, {
      host: "local",
      path: "/openai/v1/models",
      headers: [["authorization", "Bearer client-key"]]
    })
    expect(r.status).toBe(200)
    expect(mock.received.at(-1)!.path).toBe("/v1/models")
  })
})
