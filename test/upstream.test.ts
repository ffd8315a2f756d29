// Upstream connections: stale pooled connections are retried on fresh ones, TLS is verified (Node roots plus
// ca_file), multi-key providers use every key, failover to another provider, IPv6 listeners, idle pools closed.
import * as net from "node:net"
import * as Effect from "effect/Effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { parseConfig } from "../src/config/load.js"
import { UpstreamPools } from "../src/proxy/upstreams.js"
import { makeTestCerts, type TestCerts } from "./support/certs.js"
import { h1 } from "./support/http.js"
import { type MockProvider, startMockProvider } from "./support/mockProvider.js"
import { startProxy, tempDir } from "./support/proxy.js"

let mock: MockProvider
let certs: TestCerts
let dir: string
beforeAll(async () => {
  dir = await tempDir()
  certs = await makeTestCerts(dir)
  mock = await startMockProvider()
})
afterAll(async () => {
  await mock?.close()
})

/**
 * An upstream that answers the first request on each connection and then, when a second request arrives on
 * the same (kept-alive) connection, resets it without answering: the textbook stale pooled connection.
 */
const startFlakyUpstream = async () => {
  let connections = 0
  const server = net.createServer((socket) => {
    connections++
    let served = false
    socket.on("data", () => {
      if (served) {
        socket.resetAndDestroy()
        return
      }
      served = true
      socket.write(
        "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\nkeep-alive: timeout=60\r\n\r\nok"
      )
    })
    socket.on("error", () => undefined)
  })
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r))
  return {
    port: (server.address() as net.AddressInfo).port,
    connections: () => connections,
    close: () => server.close()
  }
}

describe("upstream connections", () => {
  it("a stale pooled connection never becomes a client-visible error", async () => {
    const flaky = await startFlakyUpstream()
    const proxy = await startProxy(
      `
http_port: 0
http_bind_address: 127.0.0.1
providers:
  - { type: forward, host: "f.test", endpoint: "127.0.0.1:${flaky.port}", tls: false }
`,
      dir
    )
    try {
      for (let i = 0; i < 20; i++) {
        const r = await h1(proxy.httpPort!, {
          host: "f.test",
          method: i % 2 ? "POST" : "GET",
          path: "/",
          body: i % 2 ? "small body" : undefined
        })
        expect(r.status, `request ${i}: ${r.text}`).toBe(200)
        expect(r.text).toBe("ok")
      }
      expect(flaky.connections()).toBeGreaterThanOrEqual(20)
    } finally {
      await proxy.close()
      flaky.close()
    }
  })

  it("TLS upstreams are verified: without ca_file a private CA is refused (502), with it accepted", async () => {
    const tlsMock = await startMockProvider({ tls: { cert: certs.cert, key: certs.key } })
    const proxy = await startProxy(
      `
http_port: 0
http_bind_address: 127.0.0.1
providers:
  - { type: forward, host: "noca.test", endpoint: "localhost:${tlsMock.port}", tls: true }
  - { type: forward, host: "ca.test", endpoint: "localhost:${tlsMock.port}", tls: true, ca_file: "${certs.caFile}" }
  - { type: forward, host: "wrongname.test", endpoint: "127.0.0.2:${tlsMock.port}", tls: true, ca_file: "${certs.caFile}" }
`,
      dir
    )
    try {
      expect((await h1(proxy.httpPort!, { host: "noca.test", path: "/__headers" })).status).toBe(502)
      expect((await h1(proxy.httpPort!, { host: "ca.test", path: "/__headers" })).status).toBe(200)
      expect((await h1(proxy.httpPort!, { host: "wrongname.test", path: "/__headers" })).status).toBe(502)
    } finally {
      await proxy.close()
      await tlsMock.close()
    }
  })

  it("api_keys: requests spread over every key, each sent alone", async () => {
    const proxy = await startProxy(
      `
http_port: 0
http_bind_address: 127.0.0.1
providers:
  - type: openai
    host: "k.test"
    endpoint: "127.0.0.1:${mock.port}"
    tls: false
    api_keys: [{ key: "key-one", weight: 1 }, { key: "key-two", weight: 1 }]
`,
      dir
    )
    try {
      const seen = new Map<string, number>()
      for (let i = 0; i < 60; i++) {
        await h1(proxy.httpPort!, { host: "k.test", path: "/__headers" })
        const rawHeaders = mock.received.at(-1)!.rawHeaders
        const auth = rawHeaders.filter((_, j) => j % 2 === 1 && rawHeaders[j - 1].toLowerCase() === "authorization")
        expect(auth).toHaveLength(1)
        seen.set(auth[0], (seen.get(auth[0]) ?? 0) + 1)
      }
      expect([...seen.keys()].sort()).toEqual(["Bearer key-one", "Bearer key-two"])
    } finally {
      await proxy.close()
    }
  })

  it("fails over to another provider of the route when the chosen one cannot be reached", async () => {
    const proxy = await startProxy(
      `
http_port: 0
http_bind_address: 127.0.0.1
providers:
  - { type: forward, host: "fo.test", endpoint: "127.0.0.1:1", tls: false, weight: 100 }
  - { type: forward, host: "fo.test", endpoint: "127.0.0.1:${mock.port}", tls: false, weight: 1 }
`,
      dir
    )
    try {
      for (let i = 0; i < 10; i++)
        expect((await h1(proxy.httpPort!, { host: "fo.test", path: "/__headers" })).status).toBe(200)
    } finally {
      await proxy.close()
    }
  })

  it("listens on IPv6 (::1)", async () => {
    const proxy = await startProxy(
      `
http_port: 0
http_bind_address: "::1"
providers:
  - { type: forward, host: "[::1]", endpoint: "127.0.0.1:${mock.port}", tls: false }
`,
      dir
    )
    try {
      const r = await new Promise<number>((resolve, reject) => {
        const s = net.connect(proxy.httpPort!, "::1", () =>
          s.write(`GET /__headers HTTP/1.1\r\nHost: [::1]:${proxy.httpPort}\r\nConnection: close\r\n\r\n`)
        )
        let t = ""
        s.on("data", (c: Buffer) => (t += c.toString()))
        s.on("end", () => resolve(Number(t.slice(9, 12))))
        s.on("error", reject)
      })
      expect(r).toBe(200)
    } finally {
      await proxy.close()
    }
  })

  it("pools unused for longer than the idle TTL are closed", async () => {
    const snapshot = await Effect.runPromise(
      parseConfig(
        `http_port: 1\nproviders:\n  - { type: forward, host: "p.test", endpoint: "127.0.0.1:${mock.port}", tls: false }\n`,
        `${dir}/p.yml`,
        {}
      )
    )
    const pools = new UpstreamPools()
    const u = pools.get(snapshot.providers[0], snapshot.timeouts)
    expect(pools.size).toBe(1)
    expect(pools.get(snapshot.providers[0], snapshot.timeouts)).toBe(u)
    u.lastUsed = Date.now() - 10_000
    u.inflight = 1
    pools.sweep(5_000)
    expect(pools.size).toBe(1)
    u.inflight = 0
    pools.sweep(5_000)
    expect(pools.size).toBe(0)
    // a closed pool is never handed out again, even to the provider object that cached it
    const fresh = pools.get(snapshot.providers[0], snapshot.timeouts)
    expect(fresh).not.toBe(u)
    expect(fresh.closed).toBe(false)
    await pools.closeAll()
  })
})
