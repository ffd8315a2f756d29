// Replays to the upstream (issue 10, defect 4): a request goes out again on another connection only when that is
// provably safe — the failed connection had served earlier requests and failed before any response byte (a stale
// keep-alive connection), or the method is idempotent — never because the failure came soon after dispatch.
import * as net from "node:net"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { h1 } from "./support/http.js"
import { type RunningProxy, startProxy, tempDir } from "./support/proxy.js"

type Behaviour = (request: { method: string; path: string; index: number }, socket: net.Socket) => void

/**
 * A raw HTTP/1.1 upstream: parses each request (Content-Length bodies), counts it by `METHOD path`, and lets
 * `behave` answer it. `index` is the request's position on its connection (0 on a fresh one).
 */
const startUpstream = async (behave: Behaviour) => {
  const seen = new Map<string, number>()
  const server = net.createServer((socket) => {
    socket.on("error", () => undefined)
    let buf = Buffer.alloc(0)
    let index = 0
    socket.on("data", (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk])
      for (;;) {
        const end = buf.indexOf("\r\n\r\n")
        if (end === -1) return
        const head = buf.subarray(0, end).toString("latin1")
        const length = Number(/\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1] ?? 0)
        if (buf.length < end + 4 + length) return // the whole body first
        buf = buf.subarray(end + 4 + length)
        const [method, path] = head.split(" ")
        const key = `${method} ${path}`
        seen.set(key, (seen.get(key) ?? 0) + 1)
        behave({ method: method!, path: path!, index: index++ }, socket)
        if (socket.destroyed) return
      }
    })
  })
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r))
  return {
    port: (server.address() as net.AddressInfo).port,
    count: (key: string) => seen.get(key) ?? 0,
    close: () => new Promise<void>((r) => server.close(() => r()))
  }
}

const OK = "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\nkeep-alive: timeout=60\r\n\r\nok"

let dir: string
const closers: Array<() => Promise<void>> = []
beforeAll(async () => {
  dir = await tempDir("openproxy-retry-")
})
afterAll(async () => {
  for (const c of closers.splice(0).reverse()) await c()
})

const proxyFor = async (port: number): Promise<RunningProxy> => {
  const proxy = await startProxy(
    `
http_port: 0
http_bind_address: 127.0.0.1
providers:
  - { type: forward, host: "f.test", endpoint: "127.0.0.1:${port}", tls: false }
`,
    dir
  )
  closers.push(proxy.close)
  return proxy
}

describe("replays to the upstream", () => {
  it("a POST whose fresh connection reads the whole body and then resets reaches the upstream exactly once", async () => {
    // The upstream has the whole request (it may have charged for it) and resets at once, well within the
    // "stale" window the old code trusted: a replay would charge twice.
    const up = await startUpstream((r, socket) => {
      if (r.path === "/charge") socket.resetAndDestroy()
      else socket.write(OK)
    })
    closers.push(up.close)
    const proxy = await proxyFor(up.port)
    for (let i = 0; i < 5; i++) {
      const before = up.count("POST /charge")
      const r = await h1(proxy.httpPort!, { host: "f.test", method: "POST", path: "/charge", body: `{"n":${i}}` })
      expect(r.status).toBe(502)
      expect(up.count("POST /charge") - before).toBe(1)
    }
  })

  it("a POST on a kept-alive connection that served before and fails before any response byte is replayed once", async () => {
    // Every connection answers its first request and resets on the second: the stale keep-alive case.
    const up = await startUpstream((r, socket) => {
      if (r.index === 0) socket.write(OK)
      else socket.resetAndDestroy()
    })
    closers.push(up.close)
    const proxy = await proxyFor(up.port)
    for (let i = 0; i < 10; i++) {
      const r = await h1(proxy.httpPort!, { host: "f.test", method: "POST", path: `/p${i}`, body: "small body" })
      expect(r.status, r.text).toBe(200)
    }
    // each POST after the first went out twice: once on the stale connection, once on a fresh one
    for (let i = 1; i < 10; i++) expect(up.count(`POST /p${i}`)).toBe(2)
  })

  it("a POST on a reused connection that fails after part of the response head is not replayed", async () => {
    const up = await startUpstream((r, socket) => {
      if (r.index === 0) return socket.write(OK)
      socket.write("HTTP/1.1 20")
      setTimeout(() => socket.resetAndDestroy(), 20)
    })
    closers.push(up.close)
    const proxy = await proxyFor(up.port)
    expect((await h1(proxy.httpPort!, { host: "f.test", path: "/warm" })).status).toBe(200)
    const r = await h1(proxy.httpPort!, { host: "f.test", method: "POST", path: "/partial", body: "x" })
    expect(r.status).toBe(502)
    expect(up.count("POST /partial")).toBe(1)
  })

  it("an idempotent GET whose fresh connection resets is retried once", async () => {
    let resets = 0
    const up = await startUpstream((_r, socket) => {
      if (resets++ === 0) socket.resetAndDestroy()
      else socket.write(OK)
    })
    closers.push(up.close)
    const proxy = await proxyFor(up.port)
    const r = await h1(proxy.httpPort!, { host: "f.test", path: "/get" })
    expect(r.status).toBe(200)
    expect(up.count("GET /get")).toBe(2)
  })
})
