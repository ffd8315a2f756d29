// The `forward` provider type (SPEC §4, issue 3): transparent, no client auth even with global auth_keys; the
// client's own Authorization and custom headers reach the upstream unchanged, Proxy-Authorization and hop-by-hop
// headers do not, Host is the upstream's. Over HTTP/1.1, HTTP/2 (h2c) and a WebSocket handshake.
import * as http2 from "node:http2"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { h1, h2req } from "./support/http.js"
import { type MockProvider, type RecordedRequest, startMockProvider } from "./support/mockProvider.js"
import { type RunningProxy, startProxy } from "./support/proxy.js"
import { closed, expectOpen, nextMessage, wsConnect } from "./support/wsClient.js"

let mock: MockProvider
let proxy: RunningProxy

beforeAll(async () => {
  mock = await startMockProvider()
  proxy = await startProxy(`
http_port: 0
http_bind_address: 127.0.0.1
auth_keys: ["client-key"]
providers:
  - { type: forward, host: "internal.test", endpoint: "127.0.0.1:${mock.port}", tls: false }
  - { type: forward, host: "internal.test/svc", endpoint: "127.0.0.1:${mock.port}", tls: false }
`)
})
afterAll(async () => {
  await proxy?.close()
  await mock?.close()
})

const pairs = (rec: RecordedRequest): Array<[string, string]> => {
  const out: Array<[string, string]> = []
  for (let i = 0; i < rec.rawHeaders.length; i += 2) out.push([rec.rawHeaders[i], rec.rawHeaders[i + 1]])
  return out
}
const values = (rec: RecordedRequest, name: string) =>
  pairs(rec)
    .filter(([k]) => k.toLowerCase() === name)
    .map(([, v]) => v)

describe("forward", () => {
  it("HTTP/1.1: Authorization and custom headers unchanged; no Proxy-Authorization, no hop-by-hop; Host upstream", async () => {
    const r = await h1(proxy.httpPort!, {
      host: "internal.test",
      path: "/anything?key=kept&x=1",
      headers: [
        ["Authorization", "Bearer internal-service-token"],
        ["X-Custom", "one"],
        ["x-custom", "two"],
        ["X-Api-Key", "their-own-key"],
        ["Proxy-Authorization", "Bearer client-key"],
        ["Connection", "keep-alive, X-Hop"],
        ["X-Hop", "drop me"],
        ["Keep-Alive", "timeout=5"]
      ]
    })
    expect(r.status).toBe(404) // the mock's answer to an unknown path, relayed
    const rec = mock.received.at(-1)!
    expect(rec.path).toBe("/anything?key=kept&x=1")
    const sent = pairs(rec)
    expect(sent).toContainEqual(["Authorization", "Bearer internal-service-token"])
    expect(values(rec, "authorization")).toEqual(["Bearer internal-service-token"])
    // custom headers keep their order, letter case and repetitions
    expect(sent.filter(([k]) => k.toLowerCase() === "x-custom")).toEqual([
      ["X-Custom", "one"],
      ["x-custom", "two"]
    ])
    expect(values(rec, "x-api-key")).toEqual(["their-own-key"])
    expect(values(rec, "proxy-authorization")).toEqual([])
    expect(values(rec, "x-hop")).toEqual([])
    expect(values(rec, "keep-alive")).toEqual([])
    expect(values(rec, "host")).toEqual([`127.0.0.1:${mock.port}`])
  })

  it("needs no client key even when auth_keys is set, and strips its path prefix", async () => {
    const r = await h1(proxy.httpPort!, { host: "internal.test", path: "/svc/v1/models" })
    expect(r.status).toBe(401) // the mock wants an OpenAI key: the proxy let the request through untouched
    const rec = mock.received.at(-1)!
    expect(rec.path).toBe("/v1/models")
    expect(values(rec, "authorization")).toEqual([])
    const ok = await h1(proxy.httpPort!, {
      host: "internal.test",
      path: "/svc/v1/models",
      headers: [["Authorization", "Bearer sk-mock-openai"]]
    })
    expect(ok.status).toBe(200)
  })

  it("HTTP/2 (h2c) client: the same rules", async () => {
    const session = http2.connect(`http://127.0.0.1:${proxy.httpPort}`)
    try {
      const r = await h2req(session, {
        authority: "internal.test",
        path: "/svc/v1/models",
        headers: {
          authorization: "Bearer sk-mock-openai",
          "x-custom": "h2",
          "proxy-authorization": "Bearer client-key"
        }
      })
      expect(r.status).toBe(200)
      const rec = mock.received.at(-1)!
      expect(values(rec, "authorization")).toEqual(["Bearer sk-mock-openai"])
      expect(values(rec, "x-custom")).toEqual(["h2"])
      expect(values(rec, "proxy-authorization")).toEqual([])
    } finally {
      session.destroy()
    }
  })

  it("WebSocket handshake: Authorization, subprotocols (even openai-insecure-api-key.*) and query pass as sent", async () => {
    const c = expectOpen(
      await wsConnect(`ws://127.0.0.1:${proxy.httpPort}/svc/v1/realtime?model=m1&key=kept`, {
        host: "internal.test",
        headers: { Authorization: "Bearer sk-mock-openai", "X-Custom": "ws", "Proxy-Authorization": "Bearer x" },
        protocols: ["realtime", "openai-insecure-api-key.client-side"]
      })
    )
    expect(c.protocol).toBe("realtime")
    expect(JSON.parse((await nextMessage(c)).data.toString()).session.model).toBe("m1")
    c.close(1000)
    await closed(c)
    const rec = mock.received.at(-1)!
    expect(rec.path).toBe("/v1/realtime?model=m1&key=kept")
    expect(values(rec, "authorization")).toEqual(["Bearer sk-mock-openai"])
    expect(values(rec, "x-custom")).toEqual(["ws"])
    expect(values(rec, "proxy-authorization")).toEqual([])
    expect(values(rec, "sec-websocket-protocol")).toEqual(["realtime, openai-insecure-api-key.client-side"])
  })
})
