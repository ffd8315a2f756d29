// WebSocket through the proxy (SPEC §5, issue 3) over real sockets: ws:// and wss:// (HTTP/1.1 Upgrade), HTTP/2
// extended CONNECT on TLS and h2c, the credential swap on the handshake (SPEC §4), negotiation, refusals, closes
// started by either side, the idle time-out, and 1,000 concurrent WebSockets.
import * as http2 from "node:http2"
import type { AddressInfo } from "node:net"
import * as net from "node:net"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import WebSocket, { WebSocketServer } from "ws"
import { makeTestCerts, type TestCerts } from "./support/certs.js"
import { h1 } from "./support/http.js"
import { type MockProvider, startMockProvider } from "./support/mockProvider.js"
import { logLines, type RunningProxy, startProxy, tempDir } from "./support/proxy.js"
import {
  closed,
  exerciseEcho,
  expectOpen,
  h2WebSocket,
  isOpen,
  nextMessage,
  type Refusal,
  wsConnect
} from "./support/wsClient.js"

const AUTH = { Authorization: "Bearer client-key" }

let certs: TestCerts
let mock: MockProvider
let mockTls: MockProvider
let local: WebSocketServer
let localPort: number
let proxy: RunningProxy

/** A plain upstream that closes or pings on request, to show both directions of close and ping. */
const startLocal = (): Promise<void> =>
  new Promise((resolve) => {
    local = new WebSocketServer({ host: "127.0.0.1", port: 0, perMessageDeflate: false }, () => {
      localPort = (local.address() as AddressInfo).port
      resolve()
    })
    local.on("connection", (ws) => {
      ws.on("message", (data: Buffer, isBinary: boolean) => {
        const text = data.toString()
        if (!isBinary && text.startsWith("close:")) {
          const [, code, reason] = text.split(":")
          ws.close(Number(code), reason)
        } else if (!isBinary && text === "ping-me") {
          ws.once("pong", (d: Buffer) => ws.send(`ponged:${d.toString()}`))
          ws.ping("from-server")
        } else ws.send(data, { binary: isBinary })
      })
    })
  })

const headerValues = (raw: ReadonlyArray<string>, name: string): Array<string> => {
  const out: Array<string> = []
  for (let i = 0; i < raw.length; i += 2) if (raw[i].toLowerCase() === name) out.push(raw[i + 1])
  return out
}

const lastHandshake = (m: MockProvider, pathStart: string) => {
  const r = [...m.received].reverse().find((x) => x.path.startsWith(pathStart))
  if (r === undefined) throw new Error(`no upstream request for ${pathStart}`)
  return r
}

const ws = (path: string) => `ws://127.0.0.1:${proxy.httpPort}${path}`
const wss = (path: string) => `wss://127.0.0.1:${proxy.httpsPort}${path}`

beforeAll(async () => {
  const dir = await tempDir()
  certs = await makeTestCerts(dir)
  mock = await startMockProvider()
  mockTls = await startMockProvider({ tls: { cert: certs.cert, key: certs.key } })
  await startLocal()
  proxy = await startProxy(
    `
http_port: 0
http_bind_address: 127.0.0.1
https_port: 0
https_bind_address: 127.0.0.1
cert_file: ${certs.certFile}
private_key_file: ${certs.keyFile}
auth_keys: ["client-key"]
providers:
  - { type: openai, host: "openai.test", endpoint: "127.0.0.1:${mock.port}", tls: false, api_key: sk-mock-openai }
  - { type: openai, host: "secure.test", endpoint: "127.0.0.1:${mockTls.port}", tls: true, ca_file: "${certs.caFile}", api_key: sk-mock-openai }
  - { type: anthropic, host: "anthropic.test", endpoint: "127.0.0.1:${mock.port}", tls: false, api_key: sk-ant-mock }
  - { type: gemini, host: "gemini.test", endpoint: "127.0.0.1:${mock.port}", tls: false, api_key: gemini-mock-key }
  - { type: forward, host: "local.test", endpoint: "127.0.0.1:${localPort}", tls: false }
`,
    dir
  )
})
afterAll(async () => {
  await proxy?.close()
  await mock?.close()
  await mockTls?.close()
  for (const c of local?.clients ?? []) c.terminate()
  await new Promise<void>((r) => (local ? local.close(() => r()) : r()))
})

describe("WebSocket over HTTP/1.1", () => {
  it("echoes text, binary, 16 MiB, ping/pong and a client close over ws://", async () => {
    const c = expectOpen(await wsConnect(ws("/ws"), { host: "openai.test", headers: AUTH }))
    await exerciseEcho(c)
  })

  it("echoes over wss:// to a TLS upstream (SNI-less IP endpoint, ca_file)", async () => {
    const c = expectOpen(await wsConnect(wss("/ws"), { host: "secure.test", headers: AUTH, ca: certs.caCert }))
    await exerciseEcho(c)
    const rec = lastHandshake(mockTls, "/ws")
    expect(headerValues(rec.rawHeaders, "authorization")).toEqual(["Bearer sk-mock-openai"])
  })

  it("relays a close and a ping started by the upstream", async () => {
    const c = expectOpen(await wsConnect(ws("/"), { host: "local.test" }))
    c.send("ping-me")
    const pinged = new Promise<string>((r) => c.once("ping", (d: Buffer) => r(d.toString())))
    expect(await pinged).toBe("from-server")
    expect((await nextMessage(c)).data.toString()).toBe("ponged:from-server")
    const done = closed(c)
    c.send("close:4001:server bye")
    expect(await done).toEqual({ code: 4001, reason: "server bye" })
  })

  it("swaps the credential: the upstream sees the provider key once and none of the client's", async () => {
    const c = expectOpen(
      await wsConnect(ws("/v1/realtime?model=gpt-realtime"), {
        host: "openai.test",
        headers: { ...AUTH, "Proxy-Authorization": "Bearer client-key", "OpenAI-Beta": "realtime=v1" },
        protocols: ["realtime"]
      })
    )
    expect(c.protocol).toBe("realtime")
    const created = JSON.parse((await nextMessage(c)).data.toString())
    expect(created.type).toBe("session.created")
    expect(created.session.model).toBe("gpt-realtime")
    c.send(JSON.stringify({ type: "response.create" }))
    expect(JSON.parse((await nextMessage(c)).data.toString())).toEqual({
      type: "echo",
      event: { type: "response.create" }
    })
    c.close(1000, "bye")
    await closed(c)
    const rec = lastHandshake(mock, "/v1/realtime")
    expect(rec.auth).toBe("authorization")
    expect(rec.path).toBe("/v1/realtime?model=gpt-realtime")
    expect(headerValues(rec.rawHeaders, "authorization")).toEqual(["Bearer sk-mock-openai"])
    expect(headerValues(rec.rawHeaders, "proxy-authorization")).toEqual([])
    expect(headerValues(rec.rawHeaders, "openai-beta")).toEqual(["realtime=v1"])
    expect(headerValues(rec.rawHeaders, "host")).toEqual([`127.0.0.1:${mock.port}`])
    expect(headerValues(rec.rawHeaders, "sec-websocket-protocol")).toEqual(["realtime"])
    expect(rec.rawHeaders.join("\n")).not.toContain("client-key")
  })

  it("swaps the browser form openai-insecure-api-key.K in the same place", async () => {
    const c = expectOpen(
      await wsConnect(ws("/v1/realtime"), {
        host: "openai.test",
        protocols: ["realtime", "openai-insecure-api-key.client-key", "openai-beta.realtime-v1"]
      })
    )
    expect(c.protocol).toBe("realtime")
    expect(JSON.parse((await nextMessage(c)).data.toString()).type).toBe("session.created")
    c.close()
    await closed(c)
    const rec = lastHandshake(mock, "/v1/realtime")
    expect(rec.auth).toBe("subprotocol")
    expect(headerValues(rec.rawHeaders, "authorization")).toEqual([])
    expect(headerValues(rec.rawHeaders, "sec-websocket-protocol")).toEqual([
      "realtime, openai-insecure-api-key.sk-mock-openai, openai-beta.realtime-v1"
    ])
    expect(rec.rawHeaders.join("\n")).not.toContain("client-key")
  })

  it("with an Authorization header, drops the subprotocol key entry and sends the provider key once", async () => {
    const c = expectOpen(
      await wsConnect(ws("/ws"), {
        host: "openai.test",
        headers: AUTH,
        protocols: ["chat", "openai-insecure-api-key.whatever"]
      })
    )
    expect(c.protocol).toBe("chat")
    c.terminate()
    const rec = lastHandshake(mock, "/ws")
    expect(headerValues(rec.rawHeaders, "authorization")).toEqual(["Bearer sk-mock-openai"])
    expect(headerValues(rec.rawHeaders, "sec-websocket-protocol")).toEqual(["chat"])
  })

  it("uses each provider type's credential header (anthropic x-api-key, gemini x-goog-api-key without ?key)", async () => {
    const a = expectOpen(
      await wsConnect(ws("/ws?x=1"), { host: "anthropic.test", headers: { "x-api-key": "client-key" } })
    )
    a.terminate()
    const ra = lastHandshake(mock, "/ws?x=1")
    expect(headerValues(ra.rawHeaders, "x-api-key")).toEqual(["sk-ant-mock"])
    expect(headerValues(ra.rawHeaders, "authorization")).toEqual([])

    const g = expectOpen(await wsConnect(ws("/ws?key=client-key&alt=sse"), { host: "gemini.test" }))
    g.terminate()
    const rg = lastHandshake(mock, "/ws?alt=sse")
    expect(rg.path).toBe("/ws?alt=sse")
    expect(headerValues(rg.rawHeaders, "x-goog-api-key")).toEqual(["gemini-mock-key"])
  })

  it("relays the negotiated permessage-deflate extension and compressed frames", async () => {
    const c = expectOpen(await wsConnect(ws("/ws"), { host: "openai.test", headers: AUTH, deflate: true }))
    expect(c.extensions).toContain("permessage-deflate")
    const text = "compress me ".repeat(100_000)
    c.send(text)
    expect((await nextMessage(c)).data.toString()).toBe(text)
    c.close(1000)
    await closed(c)
    const rec = lastHandshake(mock, "/ws")
    expect(headerValues(rec.rawHeaders, "sec-websocket-extensions")[0]).toContain("permessage-deflate")
  })

  it("relays the upstream's refusal with its status and body (401, 403, 404)", async () => {
    for (const status of [401, 403, 404]) {
      const r = (await wsConnect(ws(`/ws?refuse=${status}`), { host: "openai.test", headers: AUTH })) as Refusal
      expect(isOpen(r)).toBe(false)
      expect(r.status).toBe(status)
      expect(r.body).toBe(`upgrade refused with ${status}\n`)
    }
  })

  it("answers its own 404 / 401 with the exact text/plain bodies", async () => {
    const nf = (await wsConnect(ws("/ws"), { host: "nowhere.test", headers: AUTH })) as Refusal
    expect(nf.status).toBe(404)
    expect(nf.body).toBe("No provider found")
    expect(nf.headers["content-type"]).toBe("text/plain; charset=utf-8")
    const bad = (await wsConnect(ws("/ws"), {
      host: "openai.test",
      headers: { Authorization: "Bearer wrong" }
    })) as Refusal
    expect(bad.status).toBe(401)
    expect(bad.body).toBe("authentication failed")
    const none = (await wsConnect(ws("/ws"), { host: "openai.test" })) as Refusal
    expect(none.status).toBe(401)
  })

  it("serves a non-WebSocket upgrade (Upgrade: h2c) as a plain request", async () => {
    const r = await h1(proxy.httpPort!, {
      host: "openai.test",
      path: "/v1/models",
      headers: [
        ["Connection", "Upgrade, HTTP2-Settings"],
        ["Upgrade", "h2c"],
        ["HTTP2-Settings", "AAMAAABkAAQCAAAAAAIAAAAA"],
        ["Authorization", "Bearer client-key"]
      ]
    })
    expect(r.status).toBe(200)
    expect(JSON.parse(r.text).object).toBe("list")
    const rec = lastHandshake(mock, "/v1/models")
    expect(headerValues(rec.rawHeaders, "upgrade")).toEqual([])
    expect(headerValues(rec.rawHeaders, "http2-settings")).toEqual([])
  })
})

describe("WebSocket over HTTP/2 extended CONNECT (RFC 8441)", () => {
  const sessions: Array<http2.ClientHttp2Session> = []
  const tlsSession = () => {
    const s = http2.connect(`https://127.0.0.1:${proxy.httpsPort}`, { ca: certs.caCert })
    sessions.push(s)
    return s
  }
  const h2cSession = () => {
    const s = http2.connect(`http://127.0.0.1:${proxy.httpPort}`)
    sessions.push(s)
    return s
  }
  afterAll(() => {
    for (const s of sessions) s.destroy()
  })

  for (const [name, open, scheme] of [
    ["TLS", tlsSession, "https"],
    ["h2c", h2cSession, "http"]
  ] as const) {
    it(`${name}: 200, negotiated subprotocol, then the echo exercise`, async () => {
      const session = open()
      const r = await h2WebSocket(session, {
        authority: "openai.test",
        path: "/ws",
        scheme,
        headers: { authorization: "Bearer client-key", "sec-websocket-protocol": "chat, other" }
      })
      expect(r.status).toBe(200)
      expect(r.headers["sec-websocket-protocol"]).toBe("chat")
      expect(r.headers["sec-websocket-accept"]).toBeUndefined()
      const rec = lastHandshake(mock, "/ws")
      expect(headerValues(rec.rawHeaders, "authorization")).toEqual(["Bearer sk-mock-openai"])
      expect(headerValues(rec.rawHeaders, "sec-websocket-key")).toHaveLength(1)
      expect(headerValues(rec.rawHeaders, "sec-websocket-version")).toEqual(["13"])
      await exerciseEcho(r.ws!)
    })

    it(`${name}: a close and a ping started by the upstream; streams multiplex on one session`, async () => {
      const session = open()
      const [a, b] = await Promise.all([
        h2WebSocket(session, { authority: "local.test", path: "/", scheme }),
        h2WebSocket(session, { authority: "local.test", path: "/", scheme })
      ])
      a.ws!.send("from a")
      b.ws!.send("from b")
      expect((await nextMessage(a.ws!)).data.toString()).toBe("from a")
      expect((await nextMessage(b.ws!)).data.toString()).toBe("from b")
      const pinged = new Promise<string>((r) => a.ws!.once("ping", (d: Buffer) => r(d.toString())))
      a.ws!.send("ping-me")
      expect(await pinged).toBe("from-server")
      expect((await nextMessage(a.ws!)).data.toString()).toBe("ponged:from-server")
      const done = closed(a.ws!)
      a.ws!.send("close:4002:server bye")
      expect(await done).toEqual({ code: 4002, reason: "server bye" })
      // the other stream on the same session still works
      b.ws!.send("still here")
      expect((await nextMessage(b.ws!)).data.toString()).toBe("still here")
      const bc = closed(b.ws!)
      b.ws!.close(1000, "ok")
      expect(await bc).toEqual({ code: 1000, reason: "ok" })
    })

    it(`${name}: relays refusals, answers 404/401, negotiates permessage-deflate`, async () => {
      const session = open()
      for (const status of [401, 403, 404]) {
        const r = await h2WebSocket(session, {
          authority: "openai.test",
          path: `/ws?refuse=${status}`,
          scheme,
          headers: { authorization: "Bearer client-key" }
        })
        expect(r.status).toBe(status)
        expect(r.body).toBe(`upgrade refused with ${status}\n`)
      }
      const nf = await h2WebSocket(session, { authority: "nowhere.test", path: "/ws", scheme })
      expect([nf.status, nf.body]).toEqual([404, "No provider found"])
      const bad = await h2WebSocket(session, { authority: "openai.test", path: "/ws", scheme })
      expect([bad.status, bad.body]).toEqual([401, "authentication failed"])
      const d = await h2WebSocket(session, {
        authority: "openai.test",
        path: "/ws",
        scheme,
        headers: { authorization: "Bearer client-key", "sec-websocket-extensions": "permessage-deflate" }
      })
      expect(d.status).toBe(200)
      expect(d.headers["sec-websocket-extensions"]).toContain("permessage-deflate")
      d.ws!.terminate()
    })
  }

  it("refuses a plain HTTP/2 CONNECT (no :protocol) with 405", async () => {
    const session = h2cSession()
    const stream = session.request({ ":method": "CONNECT", ":authority": "openai.test:443" })
    const status = await new Promise<number>((r) => stream.once("response", (h) => r(Number(h[":status"]))))
    expect(status).toBe(405)
    stream.destroy()
  })
})

describe("WebSocket handshake failures", () => {
  let raw: net.Server
  let rawPort: number
  let deadPort: number
  let p: RunningProxy
  beforeAll(async () => {
    // An upstream that answers the handshake wrongly (/bad-accept) or never (/hang).
    raw = net.createServer((s) => {
      s.on("error", () => undefined)
      s.once("data", (d: Buffer) => {
        if (d.toString().startsWith("GET /bad-accept"))
          s.write(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: bogus\r\n\r\n"
          )
      })
    })
    rawPort = await new Promise<number>((r) => raw.listen(0, "127.0.0.1", () => r((raw.address() as AddressInfo).port)))
    const spare = net.createServer()
    deadPort = await new Promise<number>((r) =>
      spare.listen(0, "127.0.0.1", () => r((spare.address() as AddressInfo).port))
    )
    await new Promise<void>((r) => spare.close(() => r()))
    p = await startProxy(`
http_port: 0
http_bind_address: 127.0.0.1
timeouts: { response_header: 1 }
providers:
  - { type: forward, host: "raw.test", endpoint: "127.0.0.1:${rawPort}", tls: false }
  - { type: forward, host: "dead.test", endpoint: "127.0.0.1:${deadPort}", tls: false }
  - { type: forward, host: "failover.test", endpoint: "127.0.0.1:${deadPort}", tls: false, priority: 10 }
  - { type: forward, host: "failover.test", endpoint: "127.0.0.1:${mock.port}", tls: false, priority: 1 }
`)
  })
  afterAll(async () => {
    await p?.close()
    raw?.close()
  })
  const url = (path: string) => `ws://127.0.0.1:${p.httpPort}${path}`

  it("a 101 with a wrong Sec-WebSocket-Accept → 502", async () => {
    const r = (await wsConnect(url("/bad-accept"), { host: "raw.test" })) as Refusal
    expect([r.status, r.body]).toEqual([502, "upstream connection failed"])
  })
  it("no handshake answer within response_header → 504", async () => {
    const t0 = Date.now()
    const r = (await wsConnect(url("/hang"), { host: "raw.test" })) as Refusal
    expect([r.status, r.body]).toEqual([504, "upstream timed out"])
    expect(Date.now() - t0).toBeGreaterThan(900)
  })
  it("an unreachable upstream → 502; another provider for the host is tried first", async () => {
    const r = (await wsConnect(url("/ws"), { host: "dead.test" })) as Refusal
    expect([r.status, r.body]).toEqual([502, "upstream connection failed"])
    const c = expectOpen(await wsConnect(url("/ws"), { host: "failover.test" }))
    c.send("via the fallback")
    expect((await nextMessage(c)).data.toString()).toBe("via the fallback")
    c.close()
    await closed(c)
  })
})

describe("WebSocket limits", () => {
  it("1,000 concurrent WebSockets through one proxy, each exchanging messages intact", async () => {
    const N = 1000
    const started = Date.now()
    const sockets: Array<WebSocket> = []
    // Open in waves so the listen backlogs never overflow (a SYN retry costs a second), but keep all open.
    for (let i = 0; i < N; i += 100) {
      const wave = await Promise.all(
        Array.from({ length: Math.min(100, N - i) }, () => wsConnect(ws("/ws"), { host: "openai.test", headers: AUTH }))
      )
      for (const w of wave) sockets.push(expectOpen(w))
    }
    expect(sockets.filter((s) => s.readyState === WebSocket.OPEN)).toHaveLength(N)
    await Promise.all(
      sockets.map(async (s, i) => {
        for (let m = 0; m < 3; m++) {
          const payload = `socket ${i} message ${m} ${"x".repeat(i % 50)}`
          s.send(payload)
          expect((await nextMessage(s)).data.toString()).toBe(payload)
        }
        const bin = Buffer.alloc(1024, i & 255)
        s.send(bin)
        expect((await nextMessage(s)).data.equals(bin)).toBe(true)
      })
    )
    await Promise.all(
      sockets.map((s) => {
        const c = closed(s)
        s.close(1000, "done")
        return c
      })
    )
    expect(Date.now() - started).toBeLessThan(30_000)
  }, 60_000)

  it("closes both sides after `idle` without a byte either way", async () => {
    const dir = await tempDir()
    const idle = await startProxy(
      `
http_port: 0
http_bind_address: 127.0.0.1
timeouts: { idle: 1 }
providers:
  - { type: forward, host: "local.test", endpoint: "127.0.0.1:${localPort}", tls: false }
`,
      dir
    )
    try {
      const c = expectOpen(await wsConnect(`ws://127.0.0.1:${idle.httpPort}/`, { host: "local.test" }))
      const upstreamCount = local.clients.size
      // Traffic keeps it open past the idle time.
      for (let i = 0; i < 4; i++) {
        await new Promise((r) => setTimeout(r, 400))
        c.send(`keep ${i}`)
        expect((await nextMessage(c)).data.toString()).toBe(`keep ${i}`)
      }
      const t0 = Date.now()
      const done = await closed(c)
      expect(done.code).toBe(1006)
      expect(Date.now() - t0).toBeGreaterThan(700)
      expect(Date.now() - t0).toBeLessThan(3_000)
      await new Promise((r) => setTimeout(r, 100))
      expect(local.clients.size).toBeLessThan(upstreamCount)
    } finally {
      await idle.close()
    }
  })

  it("shutdown closes open WebSockets (h1 and h2) and their upstream connections after the grace period", async () => {
    const dir = await tempDir()
    const p = await startProxy(
      `
http_port: 0
http_bind_address: 127.0.0.1
graceful_shutdown_timeout: 1
providers:
  - { type: forward, host: "local.test", endpoint: "127.0.0.1:${localPort}", tls: false }
`,
      dir
    )
    const before = local.clients.size
    const a = expectOpen(await wsConnect(`ws://127.0.0.1:${p.httpPort}/`, { host: "local.test" }))
    const session = http2.connect(`http://127.0.0.1:${p.httpPort}`)
    session.on("error", () => undefined)
    const b = await h2WebSocket(session, { authority: "local.test", path: "/", scheme: "http" })
    b.ws!.send("x")
    expect((await nextMessage(b.ws!)).data.toString()).toBe("x")
    expect(local.clients.size).toBe(before + 2)
    const aClosed = closed(a)
    const bClosed = closed(b.ws!)
    const t0 = Date.now()
    await p.close()
    await Promise.all([aClosed, bClosed])
    expect(Date.now() - t0).toBeLessThan(5_000)
    for (let i = 0; i < 50 && local.clients.size > before; i++) await new Promise((r) => setTimeout(r, 20))
    expect(local.clients.size).toBe(before)
    session.destroy()
  })

  it("never logs a key", () => {
    const all = logLines.join("")
    expect(all).not.toContain("client-key")
    expect(all).not.toContain("sk-mock-openai")
    expect(all).not.toContain("sk-ant-mock")
    expect(all).not.toContain("gemini-mock-key")
  })
})
