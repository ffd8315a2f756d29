// HTTP CONNECT tunnels (SPEC §4, issue 3) over real sockets: the refusal order 404 → 401 → 403 → 400, 502 for
// an unreachable upstream, bytes both ways (including bytes in the same packet as the CONNECT head), TLS to the
// upstream when the provider has `tls: true`, and closes propagating both ways.
import { createHash } from "node:crypto"
import * as http2 from "node:http2"
import * as net from "node:net"
import * as tls from "node:tls"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { makeTestCerts } from "./support/certs.js"
import { logLines, type RunningProxy, startProxy, tempDir } from "./support/proxy.js"

const GREETING = "HELLO FROM UPSTREAM\n"

let echo: net.Server
let echoTls: tls.Server
let closedPort: number
let proxy: RunningProxy
let disabled: RunningProxy
const upstreamSockets = new Set<net.Socket>()

/** An upstream that greets first, then echoes every byte. */
const onUpstream = (s: net.Socket): void => {
  upstreamSockets.add(s)
  s.on("close", () => upstreamSockets.delete(s))
  s.on("error", () => undefined)
  s.write(GREETING)
  s.pipe(s)
}

const listen = (server: net.Server): Promise<number> =>
  new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve((server.address() as net.AddressInfo).port)))

/** Sends `data` in one write on a fresh connection and collects what comes back until `done` says so. */
const exchange = (
  port: number,
  data: string | Buffer,
  done: (received: Buffer) => boolean
): Promise<{ received: Buffer; socket: net.Socket }> =>
  new Promise((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1")
    let received = Buffer.alloc(0)
    const timer = setTimeout(() => reject(new Error(`timed out; got ${JSON.stringify(received.toString())}`)), 10_000)
    socket.on("error", reject)
    socket.on("data", (c: Buffer) => {
      received = Buffer.concat([received, c])
      if (done(received)) {
        clearTimeout(timer)
        socket.removeAllListeners("data")
        resolve({ received, socket })
      }
    })
    socket.on("end", () => {
      clearTimeout(timer)
      resolve({ received, socket })
    })
    socket.write(data)
  })

const connectHead = (target: string, headers: ReadonlyArray<string> = []): string =>
  `CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n${headers.map((h) => `${h}\r\n`).join("")}\r\n`

/** Status and body of a refused CONNECT (the proxy closes the connection after it). */
const refusal = async (port: number, target: string, headers: ReadonlyArray<string> = []) => {
  const { received, socket } = await exchange(port, connectHead(target, headers), () => false)
  socket.destroy()
  const text = received.toString()
  const [head, body] = text.split("\r\n\r\n")
  return { status: Number(head.split(" ")[1]), head: head.toLowerCase(), body }
}

const ESTABLISHED = "HTTP/1.1 200 Connection Established\r\n\r\n"
const AUTH = "Proxy-Authorization: Bearer client-key"

let echoPort: number
let echoTlsPort: number

beforeAll(async () => {
  const dir = await tempDir()
  const certs = await makeTestCerts(dir)
  echo = net.createServer(onUpstream)
  echoPort = await listen(echo)
  echoTls = tls.createServer({ cert: certs.cert, key: certs.key }, onUpstream)
  echoTlsPort = await listen(echoTls)
  const spare = net.createServer()
  closedPort = await listen(spare)
  await new Promise<void>((r) => spare.close(() => r()))

  const providers = `
auth_keys: ["client-key"]
providers:
  - { type: openai, host: "tunnel.test", endpoint: "127.0.0.1:${echoPort}", tls: false, api_key: sk-provider }
  - { type: anthropic, host: "secure.test", endpoint: "127.0.0.1:${echoTlsPort}", tls: true, ca_file: "${certs.caFile}", api_key: sk-provider }
  - { type: openai, host: "down.test", endpoint: "127.0.0.1:${closedPort}", tls: false, api_key: sk-provider }
  - { type: forward, host: "open.test", endpoint: "127.0.0.1:${echoPort}", tls: false }
  - { type: openai, host: "port443.test", endpoint: "127.0.0.1", tls: true, api_key: sk-provider }
`
  proxy = await startProxy(
    `http_port: 0\nhttp_bind_address: 127.0.0.1\nconnect_tunnel_enabled: true\n${providers}`,
    dir
  )
  disabled = await startProxy(
    `http_port: 0\nhttp_bind_address: 127.0.0.1\nconnect_tunnel_enabled: false\n${providers}`,
    dir
  )
})
afterAll(async () => {
  await proxy?.close()
  await disabled?.close()
  for (const s of upstreamSockets) s.destroy()
  echo?.close()
  echoTls?.close()
})

describe("CONNECT refusals", () => {
  it("unknown host → 404", async () => {
    const r = await refusal(proxy.httpPort!, "nowhere.test:443", [AUTH])
    expect([r.status, r.body]).toEqual([404, "No provider found"])
    expect(r.head).toContain("content-type: text/plain; charset=utf-8")
    expect(r.head).toContain("connection: close")
  })
  it("missing or wrong key → 401 (before the disabled check)", async () => {
    for (const port of [proxy.httpPort!, disabled.httpPort!]) {
      const none = await refusal(port, `tunnel.test:${echoPort}`)
      expect([none.status, none.body]).toEqual([401, "authentication failed"])
      const wrong = await refusal(port, `tunnel.test:${echoPort}`, ["Proxy-Authorization: Bearer nope"])
      expect([wrong.status, wrong.body]).toEqual([401, "authentication failed"])
    }
  })
  it("disabled → 403 after routing and authentication", async () => {
    const r = await refusal(disabled.httpPort!, `tunnel.test:${echoPort}`, [AUTH])
    expect([r.status, r.body]).toEqual([403, "CONNECT tunnel not enabled"])
    const nf = await refusal(disabled.httpPort!, "nowhere.test:1", [AUTH])
    expect(nf.status).toBe(404)
  })
  it("port mismatch → 400 naming both ports, in OpenProxy's words", async () => {
    const r = await refusal(proxy.httpPort!, "tunnel.test:1234", [AUTH])
    expect([r.status, r.body]).toEqual([400, `CONNECT port 1234 does not match provider port ${echoPort}`])
    // the provider's port is its upstream port (443 by default with tls: true), whatever its host says
    const d = await refusal(proxy.httpPort!, "port443.test:8080", [AUTH])
    expect([d.status, d.body]).toEqual([400, "CONNECT port 8080 does not match provider port 443"])
    expect(d.head).toContain("connection: close")
  })
  it("unreachable upstream → 502", async () => {
    const r = await refusal(proxy.httpPort!, `down.test:${closedPort}`, [AUTH])
    expect([r.status, r.body]).toEqual([502, "upstream connection failed"])
  })
  it("a target without a port → 400", async () => {
    const r = await refusal(proxy.httpPort!, "tunnel.test", [AUTH])
    expect([r.status, r.body]).toEqual([400, "CONNECT target has no port"])
  })
  it("plain HTTP/2 CONNECT is refused with 405", async () => {
    const session = http2.connect(`http://127.0.0.1:${proxy.httpPort}`)
    try {
      const stream = session.request({ ":method": "CONNECT", ":authority": `tunnel.test:${echoPort}` })
      stream.on("error", () => undefined)
      const status = await new Promise<number>((r) => stream.once("response", (h) => r(Number(h[":status"]))))
      expect(status).toBe(405)
    } finally {
      session.destroy()
    }
  })
})

describe("CONNECT tunnels", () => {
  it("200 Connection Established, then bytes both ways, including bytes in the CONNECT packet", async () => {
    const early = "early bytes in the same packet\n"
    const expected = ESTABLISHED + GREETING + early
    const { received, socket } = await exchange(
      proxy.httpPort!,
      connectHead(`tunnel.test:${echoPort}`, [AUTH]) + early,
      (r) => r.length >= expected.length
    )
    expect(received.toString()).toBe(expected)

    // 4 MiB more, echoed byte for byte with backpressure
    const big = Buffer.alloc(4 * 1024 * 1024)
    for (let i = 0; i < big.length; i++) big[i] = (i * 31 + 7) & 255
    const back = await new Promise<Buffer>((resolve) => {
      const chunks: Array<Buffer> = []
      let n = 0
      socket.on("data", (c: Buffer) => {
        chunks.push(c)
        n += c.length
        if (n >= big.length) resolve(Buffer.concat(chunks))
      })
      socket.write(big)
    })
    expect(createHash("sha256").update(back).digest("hex")).toBe(createHash("sha256").update(big).digest("hex"))

    // the client closing closes the upstream connection
    const before = upstreamSockets.size
    await new Promise<void>((r) => socket.end(() => r()))
    for (let i = 0; i < 50 && upstreamSockets.size >= before; i++) await new Promise((r) => setTimeout(r, 20))
    expect(upstreamSockets.size).toBeLessThan(before)
  })

  it("accepts Authorization: Bearer and Proxy-Authorization: Basic (password = key)", async () => {
    for (const h of [
      "Authorization: Bearer client-key",
      `Proxy-Authorization: Basic ${Buffer.from("user:client-key").toString("base64")}`
    ]) {
      const expected = ESTABLISHED + GREETING
      const { received, socket } = await exchange(
        proxy.httpPort!,
        connectHead(`tunnel.test:${echoPort}`, [h]),
        (r) => r.length >= expected.length
      )
      socket.destroy()
      expect(received.toString()).toBe(expected)
    }
  })

  it("uses TLS to the upstream when the provider has tls: true; the client speaks plain bytes", async () => {
    const payload = "through TLS\n"
    const expected = ESTABLISHED + GREETING + payload
    const { received, socket } = await exchange(
      proxy.httpPort!,
      connectHead(`secure.test:${echoTlsPort}`, [AUTH]) + payload,
      (r) => r.length >= expected.length
    )
    socket.destroy()
    expect(received.toString()).toBe(expected)
  })

  it("a forward provider needs no client key", async () => {
    const expected = ESTABLISHED + GREETING
    const { received, socket } = await exchange(
      proxy.httpPort!,
      connectHead(`open.test:${echoPort}`),
      (r) => r.length >= expected.length
    )
    socket.destroy()
    expect(received.toString()).toBe(expected)
  })

  it("the upstream closing closes the client connection", async () => {
    const expected = ESTABLISHED + GREETING
    const { received, socket } = await exchange(
      proxy.httpPort!,
      connectHead(`tunnel.test:${echoPort}`, [AUTH]),
      (r) => r.length >= expected.length
    )
    expect(received.toString()).toBe(expected)
    const ended = new Promise<void>((r) => socket.once("close", () => r()))
    socket.resume()
    for (const s of upstreamSockets) s.destroy()
    await ended
  })

  it("never logs a key", () => {
    const all = logLines.join("")
    expect(all).not.toContain("client-key")
    expect(all).not.toContain("sk-provider")
  })
})
