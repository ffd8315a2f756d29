// Per-request observability wired into the phases (SPEC §10, issue 14's request path part): a request id on every
// response (the client's sane `x-request-id`, else a new one; the proxy's own errors too; a provider's own id is
// relayed as `x-upstream-request-id`) and `Metrics.record` once per request from the log phase, by provider, key name, status and
// protocol, with the in-flight gauge back to 0 afterwards. Over real sockets with the full layers and the mock.
import * as http2 from "node:http2"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { h1 } from "./support/http.js"
import { seriesValue } from "./support/metrics.js"
import { DEFAULT_KEYS, type MockProvider, startMockProvider } from "./support/mockProvider.js"
import { type RunningProxy, startProxy } from "./support/proxy.js"

let mock: MockProvider
let plain: import("node:http").Server
let proxy: RunningProxy
let admin: number

beforeAll(async () => {
  mock = await startMockProvider()
  // An upstream that sends no x-request-id of its own.
  const http = await import("node:http")
  plain = http.createServer((_req, res) => res.end("plain"))
  await new Promise<void>((r) => plain.listen(0, "127.0.0.1", () => r()))
  const plainPort = (plain.address() as import("node:net").AddressInfo).port
  proxy = await startProxy(`
http_port: 0
admin: {port: 0}
auth_keys:
  - {name: team-a, key: client-a}
providers:
  - {type: openai, host: up.test, endpoint: "127.0.0.1:${mock.port}", tls: false, api_key: ${DEFAULT_KEYS.openai}}
  - {type: openai, host: plain.test, endpoint: "127.0.0.1:${plainPort}", tls: false, api_key: sk-x}
`)
  admin = proxy.adminPort()!
})
afterAll(async () => {
  await proxy?.close()
  await mock?.close()
  plain?.closeAllConnections()
  await new Promise((r) => plain?.close(r))
})

const auth: ReadonlyArray<readonly [string, string]> = [["Authorization", "Bearer client-a"]]
const GENERATED = /^[A-Za-z0-9_-]{12}-[0-9a-z]+$/

describe("request ids", () => {
  it("a new id on a relayed response and on the proxy's own errors; distinct per request", async () => {
    const a = await h1(proxy.httpPort!, { host: "plain.test", headers: auth })
    const b = await h1(proxy.httpPort!, { host: "plain.test", headers: auth })
    expect(a.text).toBe("plain")
    expect(a.headers["x-request-id"]).toMatch(GENERATED)
    expect(b.headers["x-request-id"]).toMatch(GENERATED)
    expect(a.headers["x-request-id"]).not.toBe(b.headers["x-request-id"])
    const refused = await h1(proxy.httpPort!, { host: "nobody.test", headers: auth })
    expect(refused.status).toBe(404)
    expect(refused.text).toBe("No provider found")
    expect(refused.headers["x-request-id"]).toMatch(GENERATED)
    const unauthorized = await h1(proxy.httpPort!, { host: "plain.test" })
    expect(unauthorized.status).toBe(401)
    expect(unauthorized.headers["x-request-id"]).toMatch(GENERATED)
  })

  it("the client's sane x-request-id is used; one that is not (or several) is replaced", async () => {
    const mine = await h1(proxy.httpPort!, { host: "plain.test", headers: [...auth, ["X-Request-Id", "trace-42"]] })
    expect(mine.headers["x-request-id"]).toBe("trace-42")
    const spaced = await h1(proxy.httpPort!, { host: "plain.test", headers: [...auth, ["X-Request-Id", "a b"]] })
    expect(spaced.headers["x-request-id"]).toMatch(GENERATED)
    const two = await h1(proxy.httpPort!, {
      host: "plain.test",
      headers: [...auth, ["X-Request-Id", "one"], ["X-Request-Id", "two"]]
    })
    expect(two.headers["x-request-id"]).toMatch(GENERATED)
    const refused = await h1(proxy.httpPort!, { host: "nobody.test", headers: [["X-Request-Id", "trace-43"]] })
    expect(refused.headers["x-request-id"]).toBe("trace-43")
  })

  it("a provider's own x-request-id is relayed as x-upstream-request-id; x-request-id is ours (one of each)", async () => {
    const r = await h1(proxy.httpPort!, {
      host: "up.test",
      path: "/v1/models",
      headers: [...auth, ["X-Request-Id", "trace-77"]]
    })
    expect(r.status).toBe(200)
    expect(r.headers["x-request-id"]).toBe("trace-77")
    expect(r.headers["x-upstream-request-id"]).toBe("req_mock")
    const raw = await h1(proxy.httpPort!, { host: "up.test", path: "/v1/models", headers: auth })
    expect(raw.headers["x-request-id"]).toMatch(GENERATED)
    expect(raw.headers["x-upstream-request-id"]).toBe("req_mock")
  })

  it("HTTP/2: the id is on the response too", async () => {
    const session = http2.connect(`http://127.0.0.1:${proxy.httpPort}`)
    try {
      const headers = await new Promise<http2.IncomingHttpHeaders>((resolve, reject) => {
        const s = session.request({ ":authority": "plain.test", ":path": "/", authorization: "Bearer client-a" })
        s.on("response", resolve)
        s.on("error", reject)
        s.resume()
        s.end()
      })
      expect(headers["x-request-id"]).toMatch(GENERATED)
    } finally {
      session.close()
    }
  })
})

describe("metrics from the log phase", () => {
  it("counts each request once by provider, key name, status and protocol; nothing left in flight", async () => {
    const metrics = async () => (await h1(admin, { path: "/metrics" })).text
    const series = 'openproxy_requests_total{provider="plain.test#1",key="team-a",code="200",protocol="http/1.1"}'
    const before = seriesValue(await metrics(), series) ?? 0
    for (let i = 0; i < 5; i++) await h1(proxy.httpPort!, { host: "plain.test", headers: auth })
    // An `Upgrade: h2c` request is served as a plain one on a socket the HTTP parser let go of: it ends too.
    const h2c = await h1(proxy.httpPort!, {
      host: "plain.test",
      headers: [...auth, ["Connection", "Upgrade"], ["Upgrade", "h2c"]]
    })
    expect(h2c.text).toBe("plain")
    expect(h2c.headers["x-request-id"]).toMatch(GENERATED)
    await new Promise((r) => setTimeout(r, 100))
    const text = await metrics()
    expect(seriesValue(text, series)).toBe(before + 6)
    const refused = seriesValue(text, 'openproxy_requests_total{provider="",key="",code="401",protocol="http/1.1"}')
    expect(refused).toBeGreaterThanOrEqual(1)
    expect(seriesValue(text, "openproxy_inflight_requests")).toBe(0)
  })
})
