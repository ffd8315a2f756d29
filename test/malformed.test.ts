// Malformed input and time-outs (SPEC §5, §8, §9) over raw sockets: every bad request is answered with a 4xx
// without reaching the upstream, and the proxy keeps serving; slow clients and dead upstreams are cut off.
import * as net from "node:net"
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
http_max_header_size: 4096
max_request_body_size: 1000
timeouts: { client_header: 1, response_header: 1, connect: 1 }
providers:
  - { type: forward, host: "m.test", endpoint: "127.0.0.1:${mock.port}", tls: false }
  - { type: forward, host: "dead.test", endpoint: "127.0.0.1:1", tls: false }
`)
})
afterAll(async () => {
  await proxy?.close()
  await mock?.close()
})

/** Sends raw bytes and collects everything until the server closes (or `waitMs` passes). */
const raw = (data: string | Array<string>, waitMs = 3000, gapMs = 0) =>
  new Promise<{ text: string; closed: boolean; ms: number }>((resolve) => {
    const t0 = Date.now()
    const s = net.connect(proxy.httpPort!, "127.0.0.1")
    let text = ""
    let closed = false
    const timer = setTimeout(() => {
      s.destroy()
      resolve({ text, closed, ms: Date.now() - t0 })
    }, waitMs)
    s.on("data", (c: Buffer) => (text += c.toString()))
    s.on("close", () => {
      closed = true
      clearTimeout(timer)
      resolve({ text, closed, ms: Date.now() - t0 })
    })
    s.on("error", () => undefined)
    const parts = Array.isArray(data) ? data : [data]
    let i = 0
    const next = () => {
      if (i >= parts.length || s.destroyed) return
      s.write(parts[i++])
      if (gapMs > 0) setTimeout(next, gapMs)
      else next()
    }
    next()
  })

const statusOf = (text: string) => Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0)

describe("malformed requests", () => {
  const cases: Array<[string, string, number]> = [
    [
      "Content-Length with Transfer-Encoding",
      "POST /__upload HTTP/1.1\r\nHost: m.test\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
      400
    ],
    [
      "duplicate Content-Length",
      "POST /__upload HTTP/1.1\r\nHost: m.test\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
      400
    ],
    [
      "duplicate equal Content-Length",
      "POST /__upload HTTP/1.1\r\nHost: m.test\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
      400
    ],
    ["unknown Transfer-Encoding", "POST /__upload HTTP/1.1\r\nHost: m.test\r\nTransfer-Encoding: gzip\r\n\r\n", 501],
    ["missing Host", "GET /__headers HTTP/1.1\r\n\r\n", 400],
    ["two Host headers", "GET /__headers HTTP/1.1\r\nHost: m.test\r\nHost: other.test\r\n\r\n", 400],
    ["oversized head", `GET /__headers HTTP/1.1\r\nHost: m.test\r\nX-Big: ${"a".repeat(8000)}\r\n\r\n`, 431],
    [
      "oversized body by Content-Length",
      "POST /__upload HTTP/1.1\r\nHost: m.test\r\nContent-Length: 5000\r\n\r\n",
      413
    ],
    ["garbage request line", "NOT HTTP\r\n\r\n", 400]
  ]
  for (const [name, request, status] of cases) {
    it(`${name} → ${status}, upstream untouched`, async () => {
      const before = mock.received.length
      const r = await raw(request)
      expect(statusOf(r.text), r.text.slice(0, 200)).toBe(status)
      expect(mock.received.length).toBe(before)
      // and the proxy keeps serving
      const ok = await h1(proxy.httpPort!, { host: "m.test", path: "/__headers" })
      expect(ok.status).toBe(200)
    })
  }
  it("a chunked body that grows past max_request_body_size is answered 413", async () => {
    const chunk = "x".repeat(600)
    const r = await raw(
      `POST /__upload HTTP/1.1\r\nHost: m.test\r\nTransfer-Encoding: chunked\r\n\r\n258\r\n${chunk}\r\n258\r\n${chunk}\r\n0\r\n\r\n`
    )
    expect(statusOf(r.text)).toBe(413)
  })
  it("a body within the limit passes", async () => {
    const r = await h1(proxy.httpPort!, { host: "m.test", method: "POST", path: "/__upload", body: "y".repeat(999) })
    expect(JSON.parse(r.text).bytes).toBe(999)
  })
})

describe("time-outs", () => {
  it("a client trickling its head slower than client_header is cut off", async () => {
    const parts = [
      "GET /__headers HTTP/1.1\r\n",
      "Host: m.test\r\n",
      "X-A: 1\r\n",
      "X-B: 2\r\n",
      "X-C: 3\r\n",
      "X-D: 4\r\n"
    ]
    const r = await raw(parts, 6000, 400)
    expect(r.closed).toBe(true)
    expect(r.ms).toBeLessThan(5500)
    expect([0, 408]).toContain(statusOf(r.text))
  })
  it("an upstream that never answers gives 504 after response_header", async () => {
    const r = await h1(proxy.httpPort!, { host: "m.test", path: "/__hang" })
    expect(r.status).toBe(504)
    expect(r.text).toBe("upstream timed out")
  })
  it("an unreachable upstream gives 502", async () => {
    const r = await h1(proxy.httpPort!, { host: "dead.test", path: "/" })
    expect(r.status).toBe(502)
    expect(r.text).toBe("upstream connection failed")
  })
})
