// The connection layer (SPEC §8, issue 10) over real sockets: every state of a connection or stream has a
// deadline from `timeouts:`, a reload applies limits and deadlines to kept listeners, retired listeners release
// their protocol servers, header limits are what they say on HTTP/1.1 and HTTP/2, and `max_connections` holds.
import { writeFile } from "node:fs/promises"
import * as http from "node:http"
import * as http2 from "node:http2"
import * as net from "node:net"
import * as path from "node:path"
import * as tls from "node:tls"
import * as v8 from "node:v8"
import { runInNewContext } from "node:vm"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Scope from "effect/Scope"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import * as Main from "../src/layers/Main.js"
import { Listener } from "../src/services/Listener.js"
import * as Reloader from "../src/services/Reloader.js"
import { makeTestCerts } from "./support/certs.js"
import { type CountingUpstream, startCountingUpstream } from "./support/countingUpstream.js"
import { h1, h2req } from "./support/http.js"
import { captureLog, logLines, tempDir } from "./support/proxy.js"

let up: CountingUpstream
let dir: string
beforeAll(async () => {
  up = await startCountingUpstream()
  dir = await tempDir("openproxy-conn-")
})
afterAll(async () => {
  await up?.close()
})

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

interface Running {
  readonly file: string
  readonly http: () => number | undefined
  readonly https: () => number | undefined
  readonly reload: (yaml: string) => Promise<boolean>
  readonly close: () => Promise<void>
}

/** The proxy in this process with the reloader (a reload is what SIGHUP runs). */
const start = async (yaml: string): Promise<Running> => {
  const file = path.join(dir, `c-${Date.now()}-${Math.random().toString(36).slice(2)}.yml`)
  await writeFile(file, yaml)
  const scope = Effect.runSync(Scope.make())
  const layer = Reloader.layer.pipe(Layer.provideMerge(Main.fromFile(file)), Layer.provide(captureLog))
  const ctx = await Effect.runPromise(Layer.buildWithScope(layer, scope))
  const listener = Context.get(ctx, Listener)
  const reloader = Context.get(ctx, Reloader.Reloader)
  return {
    file,
    http: () => listener.bound.find((b) => b.kind === "http")?.port,
    https: () => listener.bound.find((b) => b.kind === "https")?.port,
    reload: async (y) => {
      await writeFile(file, y)
      return Effect.runPromise(reloader.reload)
    },
    close: () => Effect.runPromise(Scope.close(scope, Exit.void))
  }
}

const provider = () => `providers:
  - { type: forward, host: "m.test", endpoint: "127.0.0.1:${up.port}", tls: false }`

/** Opens a connection, optionally writes, and resolves with how long the server took to close it (or -1). */
const heldFor = (connect: () => net.Socket, write: string | undefined, waitMs: number) =>
  new Promise<number>((resolve) => {
    const t0 = Date.now()
    const s = connect()
    s.on("error", () => undefined)
    const timer = setTimeout(() => {
      s.destroy()
      resolve(-1)
    }, waitMs)
    s.on("close", () => {
      clearTimeout(timer)
      resolve(Date.now() - t0)
    })
    if (write !== undefined) s.once("connect", () => s.write(write))
    s.resume()
  })

describe("deadlines for every state (defects 1 and 3)", () => {
  let p: Running
  let certs: Awaited<ReturnType<typeof makeTestCerts>>
  beforeAll(async () => {
    certs = await makeTestCerts(path.join(dir, "certs"))
    p = await start(`
http_port: 0
http_bind_address: 127.0.0.1
https_port: 0
https_bind_address: 127.0.0.1
cert_file: ${certs.certFile}
private_key_file: ${certs.keyFile}
timeouts: { client_header: 1, idle: 2, response_header: 10, tls_handshake: 2 }
${provider()}
`)
  })
  afterAll(async () => {
    await p?.close()
  })

  it("a plain connection that never sends a byte is closed after client_header", async () => {
    const ms = await heldFor(() => net.connect(p.http()!, "127.0.0.1"), undefined, 8_000)
    expect(ms).toBeGreaterThan(0)
  })
  it("a TLS connection that completes the handshake and then sends nothing is closed after client_header", async () => {
    let secure = false
    const ms = await heldFor(
      () => {
        const s = tls.connect({ port: p.https()!, host: "127.0.0.1", ca: certs.caCert, servername: "proxy.test" })
        s.once("secureConnect", () => (secure = true))
        return s
      },
      undefined,
      8_000
    )
    expect(secure).toBe(true)
    expect(ms).toBeGreaterThan(500)
  })
  it("a TCP connection to the TLS port that never starts a handshake is closed after tls_handshake", async () => {
    const ms = await heldFor(() => net.connect(p.https()!, "127.0.0.1"), undefined, 15_000)
    expect(ms).toBeGreaterThan(0)
  }, 20_000)
  it("a keep-alive connection with no next request is closed after client_header", async () => {
    const ms = await heldFor(() => net.connect(p.http()!, "127.0.0.1"), "GET / HTTP/1.1\r\nHost: m.test\r\n\r\n", 8_000)
    expect(ms).toBeGreaterThan(0)
  })
  it("an HTTP/1.1 upload stalled halfway is closed after idle, and never reaches the upstream complete", async () => {
    const before = up.requests()
    const ms = await heldFor(
      () => net.connect(p.http()!, "127.0.0.1"),
      `POST /upload HTTP/1.1\r\nHost: m.test\r\nContent-Length: 1000\r\n\r\n${"x".repeat(500)}`,
      10_000
    )
    expect(ms).toBeGreaterThan(0)
    expect(up.requests() - before).toBeLessThanOrEqual(1)
  })
  it("an h2c session that never opens a stream is closed after client_header", async () => {
    const s = http2.connect(`http://127.0.0.1:${p.http()}`)
    s.on("error", () => undefined)
    const closed = await Promise.race([
      new Promise<boolean>((r) => s.once("close", () => r(true))),
      sleep(10_000).then(() => false)
    ])
    s.destroy()
    expect(closed).toBe(true)
  })
  it("an h2c session with no stream left is closed after idle", async () => {
    const s = http2.connect(`http://127.0.0.1:${p.http()}`)
    s.on("error", () => undefined)
    expect((await h2req(s, { authority: "m.test", path: "/ok" })).status).toBe(200)
    const t0 = Date.now()
    const closed = await Promise.race([
      new Promise<boolean>((r) => s.once("close", () => r(true))),
      sleep(10_000).then(() => false)
    ])
    s.destroy()
    expect(closed).toBe(true)
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1_500) // idle (2 s), not client_header (1 s)
  })
  it("an HTTP/2 stream with half its body is reset after idle", async () => {
    const s = http2.connect(`http://127.0.0.1:${p.http()}`)
    s.on("error", () => undefined)
    const req = s.request({ ":method": "POST", ":path": "/upload", ":authority": "m.test", "content-length": "1000" })
    req.on("error", () => undefined)
    req.write("x".repeat(500))
    const code = await Promise.race([
      new Promise<number>((r) => req.once("close", () => r(req.rstCode ?? -1))),
      sleep(10_000).then(() => -2)
    ])
    s.destroy()
    expect(code).toBe(http2.constants.NGHTTP2_CANCEL)
  })
  it("a request waiting longer than idle for the upstream's head still gets its answer (HTTP/1.1 and HTTP/2)", async () => {
    const r1 = await h1(p.http()!, { host: "m.test", path: "/slow?ms=3500" })
    expect(r1.status).toBe(200)
    expect(r1.text).toBe("slow ok")
    const s = http2.connect(`http://127.0.0.1:${p.http()}`)
    try {
      const r2 = await h2req(s, { authority: "m.test", path: "/slow?ms=3500" })
      expect(r2.status).toBe(200)
      expect(r2.text).toBe("slow ok")
    } finally {
      s.destroy()
    }
  })
})

describe("a connection closed before sending anything (defect 2)", () => {
  it("is not handed to the HTTP/1.1 server later", async () => {
    const p = await start(`
http_port: 0
http_bind_address: 127.0.0.1
timeouts: { client_header: 1 }
${provider()}
`)
    try {
      // Count the sockets the HTTP/1.1 server is given from now on.
      let handed = 0
      const emit = http.Server.prototype.emit
      http.Server.prototype.emit = function (this: http.Server, event: string | symbol, ...args: Array<unknown>) {
        if (event === "connection") handed++
        return Reflect.apply(emit, this, [event, ...args]) as boolean
      } as typeof emit
      try {
        for (let i = 0; i < 20; i++) {
          await new Promise<void>((r) => {
            const s = net.connect(p.http()!, "127.0.0.1", () => s.end())
            s.on("close", () => r())
            s.on("error", () => r())
          })
        }
        // past both client_header (1 s) and the old fixed preface timer (10 s)
        await sleep(10_500)
      } finally {
        http.Server.prototype.emit = emit
      }
      expect(handed).toBe(0)
    } finally {
      await p.close()
    }
  }, 20_000)
})

describe("reload applies settings to kept listeners (defect 5)", () => {
  it("http_max_header_size, header count and tls_handshake change on a kept listener", async () => {
    const certs = await makeTestCerts(path.join(dir, "certs"))
    const yaml = (size: number, hs: number) => `
http_port: 0
http_bind_address: 127.0.0.1
https_port: 0
https_bind_address: 127.0.0.1
cert_file: ${certs.certFile}
private_key_file: ${certs.keyFile}
http_max_header_size: ${size}
timeouts: { tls_handshake: ${hs} }
${provider()}
`
    const p = await start(yaml(16384, 30))
    try {
      const big = [["x-big", "a".repeat(4096)]] as const
      expect((await h1(p.http()!, { host: "m.test", headers: big })).status).toBe(200)
      const port = p.http()!
      const tlsPort = p.https()!
      await writeFile(p.file, yaml(1024, 1))
      expect(await p.reload(yaml(1024, 1))).toBe(true)
      expect(p.http()).toBe(port)
      expect((await h1(port, { host: "m.test", headers: big })).status).toBe(431)
      const s = http2.connect(`http://127.0.0.1:${port}`)
      s.on("error", () => undefined)
      try {
        expect((await h2req(s, { authority: "m.test", headers: { "x-big": "a".repeat(4096) } })).status).toBe(431)
      } finally {
        s.destroy()
      }
      // a raw TCP connection to the TLS port that never starts a handshake: cut at the new tls_handshake (1 s)
      const ms = await heldFor(() => net.connect(tlsPort, "127.0.0.1"), undefined, 8_000)
      expect(ms).toBeGreaterThan(0)
      expect(ms).toBeLessThan(8_000)
    } finally {
      await p.close()
    }
  }, 20_000)
})

describe("retired listeners release their protocol servers (defect 6)", () => {
  it("50 reloads that move the plain port leave no protocol server behind", async () => {
    v8.setFlagsFromString("--expose-gc")
    const gc = runInNewContext("gc") as () => void
    const refs: Array<WeakRef<http.Server>> = []
    const emit = http.Server.prototype.emit
    http.Server.prototype.emit = function (this: http.Server, event: string | symbol, ...args: Array<unknown>) {
      if (event === "listening") refs.push(new WeakRef(this))
      return Reflect.apply(emit, this, [event, ...args]) as boolean
    } as typeof emit
    const yaml = (port: number) => `
http_port: ${port}
http_bind_address: 127.0.0.1
graceful_shutdown_timeout: 0
${provider()}
`
    const p = await start(yaml(0))
    try {
      for (let i = 0; i < 50; i++) {
        const free = await new Promise<number>((r) => {
          const s = net.createServer().listen(0, "127.0.0.1", () => {
            const port = (s.address() as net.AddressInfo).port
            s.close(() => r(port))
          })
        })
        expect(await p.reload(yaml(free))).toBe(true)
      }
      expect((await h1(p.http()!, { host: "m.test" })).status).toBe(200)
      await sleep(500) // retired ports finish their (zero) grace period
      const collect = async () => {
        for (let i = 0; i < 3; i++) {
          gc()
          await sleep(50)
        }
      }
      await collect()
      const alive = () => refs.filter((r) => r.deref() !== undefined).length
      // the current listener's server (and none of the 50 retired ones)
      expect(refs.length).toBeGreaterThanOrEqual(51)
      expect(alive()).toBeLessThanOrEqual(2)
      // A reload that fails to bind (the port is taken) releases the servers it made for it.
      const taken = net.createServer()
      await new Promise<void>((r) => taken.listen(0, "127.0.0.1", r))
      try {
        for (let i = 0; i < 10; i++) {
          expect(await p.reload(yaml((taken.address() as net.AddressInfo).port))).toBe(false)
        }
      } finally {
        taken.close()
      }
      expect(refs.length).toBeGreaterThanOrEqual(61)
      await collect()
      expect(alive()).toBeLessThanOrEqual(2)
      // Tearing the layer down (an embedding app) releases the last ones: closed, no handler left (the test itself
      // still holds the Listener service, so the current one may stay reachable).
      await p.close()
      await collect()
      const left = refs.map((r) => r.deref()).filter((s) => s !== undefined)
      expect(left.length).toBeLessThanOrEqual(1)
      for (const s of left) expect(s.listenerCount("request")).toBe(0)
    } finally {
      http.Server.prototype.emit = emit
      await p.close()
    }
  }, 30_000)
})

describe("header limits are what they say (defect 9)", () => {
  let p: Running
  beforeAll(async () => {
    p = await start(`
http_port: 0
http_bind_address: 127.0.0.1
http_max_header_size: 1048576
${provider()}
`)
  })
  afterAll(async () => {
    await p?.close()
  })
  const many = (n: number) => Array.from({ length: n }, (_, i) => [`x-h${i}`, "v"] as const)

  it("HTTP/1.1: 5,000 headers get 431 and nothing reaches the upstream", async () => {
    const before = up.requests()
    const r = await h1(p.http()!, { host: "m.test", path: "/headers", headers: many(5000) })
    expect(r.status).toBe(431)
    expect(up.requests()).toBe(before)
  })
  it("HTTP/1.1: 250 headers pass whole", async () => {
    const r = await h1(p.http()!, { host: "m.test", path: "/headers", headers: many(250) })
    expect(r.status).toBe(200)
    expect(JSON.parse(r.text).count).toBeGreaterThanOrEqual(250)
  })
  it("HTTP/2: 300 headers get 431 (or a refused stream) and nothing reaches the upstream; 250 pass whole", async () => {
    const s = http2.connect(`http://127.0.0.1:${p.http()}`)
    s.on("error", () => undefined)
    try {
      const before = up.requests()
      const headers = Object.fromEntries(many(300))
      const status = await h2req(s, { authority: "m.test", path: "/headers", headers }).then(
        (r) => r.status,
        () => -1
      )
      expect([431, -1]).toContain(status)
      expect(up.requests()).toBe(before)
      const ok = await h2req(s, { authority: "m.test", path: "/headers", headers: Object.fromEntries(many(250)) })
      expect(ok.status).toBe(200)
      expect(JSON.parse(ok.text).count).toBeGreaterThanOrEqual(250)
    } finally {
      s.destroy()
    }
  })
  it("HTTP/2: a 32 KiB header with http_max_header_size 16384 gets 431 and never reaches the upstream", async () => {
    const q = await start(`
http_port: 0
http_bind_address: 127.0.0.1
http_max_header_size: 16384
${provider()}
`)
    const s = http2.connect(`http://127.0.0.1:${q.http()}`)
    s.on("error", () => undefined)
    try {
      const before = up.requests()
      const r = await h2req(s, { authority: "m.test", path: "/headers", headers: { "x-big": "a".repeat(32768) } })
      expect(r.status).toBe(431)
      expect(up.requests()).toBe(before)
    } finally {
      s.destroy()
      await q.close()
    }
  })
})

describe("max_connections", () => {
  it("over the limit a new connection is closed at once and counted in the log; a freed slot is reused", async () => {
    const p = await start(`
http_port: 0
http_bind_address: 127.0.0.1
max_connections: 5
timeouts: { client_header: 20 }
${provider()}
`)
    const held: Array<net.Socket> = []
    try {
      for (let i = 0; i < 5; i++) {
        const s = net.connect(p.http()!, "127.0.0.1")
        s.on("error", () => undefined)
        await new Promise((r) => s.once("connect", r))
        held.push(s)
      }
      await sleep(100)
      const ms = await heldFor(() => net.connect(p.http()!, "127.0.0.1"), undefined, 5_000)
      expect(ms).toBeGreaterThanOrEqual(0)
      expect(ms).toBeLessThan(2_000)
      expect(logLines.some((l) => l.includes("connections refused: max_connections reached"))).toBe(true)
      held.pop()!.destroy()
      await sleep(100)
      expect((await h1(p.http()!, { host: "m.test" })).status).toBe(200)
    } finally {
      for (const s of held) s.destroy()
      await p.close()
    }
  })
})
