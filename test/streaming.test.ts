// Streaming and framing through the proxy (SPEC §5): SSE events are not held back, 50 MiB each way arrive
// byte-exact, HEAD/204/304/100-continue/close-delimited framing, gzip untouched, trailers on HTTP/2.
import { createHash } from "node:crypto"
import * as http from "node:http"
import * as http2 from "node:http2"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { h1, h2req } from "./support/http.js"
import { deterministicBytes, type MockProvider, startMockProvider } from "./support/mockProvider.js"
import { type RunningProxy, startProxy } from "./support/proxy.js"

let mock: MockProvider
let h2mock: MockProvider
let proxy: RunningProxy
const MiB = 1024 * 1024

beforeAll(async () => {
  mock = await startMockProvider()
  h2mock = await startMockProvider({ http2: true })
  proxy = await startProxy(`
http_port: 0
http_bind_address: 127.0.0.1
providers:
  - { type: forward, host: "s.test", endpoint: "127.0.0.1:${mock.port}", tls: false }
  - { type: forward, host: "h2.test", endpoint: "127.0.0.1:${h2mock.port}", tls: false, http2: true }
`)
})
afterAll(async () => {
  await proxy?.close()
  await mock?.close()
  await h2mock?.close()
})

const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex")

describe("SSE", () => {
  it("the first event reaches the client before the upstream sends the last (HTTP/1.1)", async () => {
    const gate = `g${Date.now()}`
    const first = await new Promise<{ first: string; rest: Promise<string> }>((resolve, reject) => {
      const req = http.request({
        host: "127.0.0.1",
        port: proxy.httpPort,
        path: `/__sse?events=3&interval_ms=1&gate=${gate}`,
        headers: { host: "s.test" }
      })
      req.on("response", (res) => {
        expect(res.headers["content-type"]).toContain("text/event-stream")
        let buf = ""
        let got = false
        let done: (s: string) => void = () => undefined
        const rest = new Promise<string>((r) => (done = r))
        res.on("data", (c: Buffer) => {
          buf += c.toString()
          if (!got && buf.includes("\n\n")) {
            got = true
            resolve({ first: buf, rest })
          }
        })
        res.on("end", () => done(buf))
      })
      req.on("error", reject)
      req.end()
    })
    // The mock holds every later event until released: had the proxy buffered, we would never get here.
    expect(first.first).toContain('data: {"i":0}')
    expect(first.first).not.toContain('"i":2')
    mock.release(gate)
    const all = await first.rest
    expect(all).toContain('"i":2')
  })
  it("the first event reaches an HTTP/2 client before the last is sent", async () => {
    const gate = `h${Date.now()}`
    const s = http2.connect(`http://127.0.0.1:${proxy.httpPort}`)
    try {
      const stream = s.request({ ":path": `/__sse?events=2&interval_ms=1&gate=${gate}`, ":authority": "s.test" })
      let buf = ""
      await new Promise<void>((resolve) =>
        stream.on("data", (c: Buffer) => {
          buf += c.toString()
          if (buf.includes("\n\n")) resolve()
        })
      )
      expect(buf).not.toContain('"i":1')
      mock.release(gate)
      await new Promise((r) => stream.on("end", r))
      expect(buf).toContain('"i":1')
    } finally {
      s.close()
    }
  })
})

describe("large bodies", () => {
  const big = deterministicBytes(50 * MiB, 7)
  const bigHash = sha(big)
  it("50 MiB up, byte-exact (HTTP/1.1 client, streamed, Content-Length)", async () => {
    const r = await h1(proxy.httpPort!, { host: "s.test", method: "POST", path: "/__upload", body: big })
    expect(r.status).toBe(200)
    expect(JSON.parse(r.text)).toEqual({ bytes: big.length, sha256: bigHash })
  })
  it("50 MiB up chunked (no Content-Length), byte-exact", async () => {
    const r = await new Promise<string>((resolve, reject) => {
      const req = http.request({
        host: "127.0.0.1",
        port: proxy.httpPort,
        method: "POST",
        path: "/__upload",
        headers: { host: "s.test", "transfer-encoding": "chunked" }
      })
      req.on("response", (res) => {
        let t = ""
        res.on("data", (c: Buffer) => (t += c.toString()))
        res.on("end", () => resolve(t))
      })
      req.on("error", reject)
      for (let off = 0; off < big.length; off += 1024 * 1024) req.write(big.subarray(off, off + 1024 * 1024))
      req.end()
    })
    expect(JSON.parse(r)).toEqual({ bytes: big.length, sha256: bigHash })
  })
  it("50 MiB down, byte-exact (HTTP/1.1)", async () => {
    const r = await h1(proxy.httpPort!, { host: "s.test", path: `/__download?bytes=${50 * MiB}&seed=7` })
    expect(r.status).toBe(200)
    expect(r.body.length).toBe(big.length)
    expect(sha(r.body)).toBe(bigHash)
  })
  it("50 MiB up and down over HTTP/2 to an h2c upstream, byte-exact", async () => {
    const s = http2.connect(`http://127.0.0.1:${proxy.httpPort}`)
    try {
      const up = await h2req(s, { authority: "h2.test", method: "POST", path: "/__upload", body: big })
      expect(JSON.parse(up.text)).toEqual({ bytes: big.length, sha256: bigHash })
      const down = await h2req(s, { authority: "h2.test", path: `/__download?bytes=${50 * MiB}&seed=7` })
      expect(sha(down.body)).toBe(bigHash)
    } finally {
      s.close()
    }
  })
})

describe("framing", () => {
  it("HEAD has headers and no body", async () => {
    const r = await h1(proxy.httpPort!, { host: "s.test", method: "HEAD", path: "/__status?code=200" })
    expect(r.status).toBe(200)
    expect(r.body.length).toBe(0)
  })
  it("204 and 304 without a body, and the connection stays usable", async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
    try {
      for (const code of [204, 304, 200]) {
        const r = await h1(proxy.httpPort!, { host: "s.test", path: `/__status?code=${code}`, agent })
        expect(r.status).toBe(code)
        if (code !== 200) expect(r.body.length).toBe(0)
      }
    } finally {
      agent.destroy()
    }
  })
  it("Expect: 100-continue gets 100 from the proxy, then the body goes through", async () => {
    const payload = Buffer.from("x".repeat(1000))
    const result = await new Promise<{ continued: boolean; text: string }>((resolve, reject) => {
      let continued = false
      const req = http.request({
        host: "127.0.0.1",
        port: proxy.httpPort,
        method: "POST",
        path: "/__upload",
        headers: { host: "s.test", expect: "100-continue", "content-length": payload.length }
      })
      req.on("continue", () => {
        continued = true
        req.end(payload)
      })
      req.on("response", (res) => {
        let t = ""
        res.on("data", (c: Buffer) => (t += c.toString()))
        res.on("end", () => resolve({ continued, text: t }))
      })
      req.on("error", reject)
    })
    expect(result.continued).toBe(true)
    expect(JSON.parse(result.text)).toEqual({ bytes: 1000, sha256: sha(payload) })
  })
  it("gzip bodies pass untouched", async () => {
    const r = await h1(proxy.httpPort!, { host: "s.test", path: "/__gzip", headers: [["accept-encoding", "gzip"]] })
    expect(r.headers["content-encoding"]).toBe("gzip")
    expect(sha(r.body)).toBe(r.headers["x-raw-sha256"])
  })
  it("a close-delimited upstream response reaches the client complete", async () => {
    const r = await h1(proxy.httpPort!, { host: "s.test", path: "/__close_delimited" })
    expect(r.status).toBe(200)
    expect(r.body.length).toBeGreaterThan(0)
    const direct = await h1(mock.port, { host: "s.test", path: "/__close_delimited" })
    expect(r.text).toBe(direct.text)
  })
  it("trailers pass HTTP/2 to HTTP/2", async () => {
    const s = http2.connect(`http://127.0.0.1:${proxy.httpPort}`)
    try {
      const r = await h2req(s, { authority: "h2.test", path: "/__trailers" })
      expect(r.status).toBe(200)
      expect(r.trailers["x-checksum"]).toBeDefined()
    } finally {
      s.close()
    }
  })
})
