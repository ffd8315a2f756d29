// The relay's side path for WebSockets and CONNECT tunnels (SPEC §5, §10) over real sockets, with the request path
// run in-process on a node:http server and the log phase captured: raw clients send the handshake and their frames
// in one write; what they receive after the 101 is compared byte for byte with a direct connection to the mock;
// the ended exchange carries exactly the bytes each way and the mock's Realtime usage (permessage-deflate on and
// off, compressed fragments), the model from the query or else from `session.created`; a non-Realtime WebSocket
// and a CONNECT tunnel carry bytes only; without an end consumer nothing is attached to the sockets.
import * as net from "node:net"
import { beforeAll, describe, expect, it } from "vitest"
import type { Usage } from "../src/domain/usage/usage.js"
import type { Exchange } from "../src/proxy/exchange.js"
import { cleanupAfterAll, sleep } from "./support/cleanup.js"
import { DEFAULT_KEYS, type MockProvider } from "./support/mockProvider.js"
import { startRequestPath } from "./support/requestPath.js"

interface Ended {
  readonly protocol: string
  readonly status: number
  readonly bytesIn: number
  readonly bytesOut: number
  readonly usage: Usage | undefined
  readonly model: string | undefined
  readonly responseModel: string | undefined
}

const MOCK_USAGE = "input=1200,output=300,cache_read=1024"
/** What the mock's figures are once read back (the Realtime shape carries no cache writes or reasoning). */
const perResponse = (n: number): Usage => ({
  input: 1200 * n,
  output: 300 * n,
  cacheRead: 1024 * n,
  cacheWrite: 0,
  reasoning: 0
})

/** A client-to-server (masked) frame. */
const clientFrame = (opcode: number, payload: Buffer): Buffer => {
  const mask = Buffer.from([0x37, 0xfa, 0x21, 0x3d])
  const len = payload.length
  const ext = len < 126 ? 0 : 2
  const head = Buffer.alloc(2 + ext + 4)
  head[0] = 0x80 | opcode
  head[1] = 0x80 | (ext === 0 ? len : 126)
  if (ext === 2) head.writeUInt16BE(len, 2)
  mask.copy(head, 2 + ext)
  return Buffer.concat([head, Buffer.from(payload.map((b, i) => b ^ mask[i & 3]))])
}

const CREATE = Buffer.from(JSON.stringify({ type: "response.create" }))
const CLOSE = Buffer.from([0x03, 0xe8])

/**
 * One raw WebSocket session: the handshake, `responses` response.create frames and a close frame in one write;
 * everything the server sends until it closes. Returns the head (up to the blank line) and the bytes after it.
 */
const rawSession = (
  port: number,
  o: { path: string; host: string; auth: string; deflate: boolean; responses: number; extra?: Array<string> }
) =>
  new Promise<{ head: string; frames: Buffer; sent: number }>((resolve, reject) => {
    const lines = [
      `GET ${o.path} HTTP/1.1`,
      `Host: ${o.host}`,
      `Authorization: Bearer ${o.auth}`,
      "Upgrade: websocket",
      "Connection: Upgrade",
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
      "Sec-WebSocket-Version: 13",
      ...(o.deflate ? ["Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits"] : []),
      ...(o.extra ?? [])
    ]
    const frames = Buffer.concat([
      ...Array.from({ length: o.responses }, () => clientFrame(1, CREATE)),
      clientFrame(8, CLOSE)
    ])
    const s = net.connect(port, "127.0.0.1")
    const chunks: Array<Buffer> = []
    s.on("data", (c: Buffer) => chunks.push(c))
    s.on("error", reject)
    s.on("close", () => {
      const all = Buffer.concat(chunks)
      const end = all.indexOf("\r\n\r\n")
      if (end < 0) return reject(new Error(`no head: ${all.toString("latin1")}`))
      resolve({ head: all.toString("latin1", 0, end), frames: all.subarray(end + 4), sent: frames.length })
    })
    s.write(Buffer.concat([Buffer.from(`${lines.join("\r\n")}\r\n\r\n`, "latin1"), frames]))
  })

const cleanup = cleanupAfterAll()
let mock: MockProvider
let port = 0
let bare = 0
const ended: Array<Ended> = []
/** 'data' listeners on each client socket once its relay is set up, per server. */
const listeners = { sink: [] as Array<number>, bare: [] as Array<number> }

/** Records the socket's 'data' listeners on the first turn they appear (bridge's pipe and, with a consumer, ours). */
const watchListeners = (socket: net.Socket, out: Array<number>): void => {
  const look = () => {
    const n = socket.listenerCount("data")
    if (n > 0) out.push(n)
    else if (!socket.destroyed) setImmediate(look)
  }
  setImmediate(look)
}

beforeAll(async () => {
  mock = await cleanup.mock()
  const yaml = `
http_port: 0
connect_tunnel_enabled: true
auth_keys: [{ name: team-a, key: "client-a" }]
providers:
  - { type: openai, host: "rt.test", endpoint: "127.0.0.1:${mock.port}", tls: false, api_key: "${DEFAULT_KEYS.openai}" }
  - { type: anthropic, host: "other.test", endpoint: "127.0.0.1:${mock.port}", tls: false, api_key: "${DEFAULT_KEYS.anthropic}" }
`
  const withSink = await startRequestPath(cleanup, yaml, {
    services: {
      onEnd: (ex: Exchange) =>
        ended.push({
          protocol: ex.protocol,
          status: ex.status,
          bytesIn: ex.bytesIn,
          bytesOut: ex.bytesOut,
          usage: ex.usage,
          model: ex.model,
          responseModel: ex.responseModel
        })
    },
    afterUpgrade: (socket) => watchListeners(socket, listeners.sink)
  })
  port = withSink.port
  // the same config without an end consumer
  const withoutSink = await startRequestPath(cleanup, yaml, {
    afterUpgrade: (socket) => watchListeners(socket, listeners.bare)
  })
  bare = withoutSink.port
})

/** The next ended exchange (the log phase runs after the Realtime tap has settled). */
const nextEnded = async (count: number): Promise<Ended> => {
  for (let i = 0; i < 200 && ended.length < count; i++) await sleep(10)
  expect(ended.length).toBe(count)
  return ended[count - 1]
}

/** A raw session through the proxy as the client `client-a` (host rt.test unless given), and how it ended. */
const proxiedSession = async (
  o: Omit<Parameters<typeof rawSession>[1], "host" | "auth"> & { host?: string }
): Promise<{ r: Awaited<ReturnType<typeof rawSession>>; e: Ended }> => {
  const before = ended.length
  const r = await rawSession(port, { host: "rt.test", auth: "client-a", ...o })
  return { r, e: await nextEnded(before + 1) }
}

const realtimePath = (q: string) => `/v1/realtime?${q}`
const usageQuery = `mock_usage=${encodeURIComponent(MOCK_USAGE)}`

describe("OpenAI Realtime through the relay", () => {
  const cases: Array<{ name: string; deflate: boolean; responses: number; query: string }> = [
    { name: "no compression", deflate: false, responses: 2, query: `model=gpt-realtime-mini&${usageQuery}` },
    { name: "permessage-deflate", deflate: true, responses: 3, query: `model=gpt-realtime-mini&${usageQuery}` },
    {
      name: "permessage-deflate, response.done in 64-byte fragments, long answers",
      deflate: true,
      responses: 2,
      query: `model=gpt-realtime-mini&${usageQuery}&mock_fragment=64&mock_repeat=40`
    }
  ]
  for (const c of cases) {
    it(`${c.name}: the client gets the direct bytes; the exchange has the bytes and the usage`, async () => {
      const o = { path: realtimePath(c.query), deflate: c.deflate, responses: c.responses }
      const direct = await rawSession(mock.port, { ...o, host: `127.0.0.1:${mock.port}`, auth: DEFAULT_KEYS.openai })
      const { r: proxied, e } = await proxiedSession(o)
      expect(proxied.head.split("\r\n")[0]).toBe("HTTP/1.1 101 Switching Protocols")
      expect(/sec-websocket-extensions: permessage-deflate/i.test(proxied.head)).toBe(c.deflate)
      expect(proxied.frames.length).toBeGreaterThan(1000)
      expect(proxied.frames.equals(direct.frames)).toBe(true)
      expect(e).toEqual({
        protocol: "ws",
        status: 101,
        bytesIn: proxied.sent,
        bytesOut: proxied.frames.length,
        usage: perResponse(c.responses),
        model: "gpt-realtime-mini",
        responseModel: "gpt-realtime-mini"
      })
    })
  }

  it("takes the model from session.created when the query names none (usage from the x-mock-usage header)", async () => {
    const { r, e } = await proxiedSession({
      path: "/v1/realtime",
      deflate: true,
      responses: 1,
      extra: [`x-mock-usage: ${MOCK_USAGE}`]
    })
    expect([e.usage, e.model, e.responseModel, e.bytesOut]).toEqual([
      perResponse(1),
      "gpt-realtime",
      "gpt-realtime",
      r.frames.length
    ])
  })

  it("counts only bytes for other WebSockets (no usage, no model)", async () => {
    // The mock's echo endpoint behind an anthropic provider: not a Realtime session.
    const { r, e } = await proxiedSession({ path: "/ws", host: "other.test", deflate: false, responses: 2 })
    expect(e).toEqual({
      protocol: "ws",
      status: 101,
      bytesIn: r.sent,
      bytesOut: r.frames.length,
      usage: undefined,
      model: undefined,
      responseModel: undefined
    })
    // echoes of the two frames (unmasked: 2 + 26 bytes each) and the close
    expect(r.frames.length).toBe(2 * (2 + CREATE.length) + 4)
  })

  it("attaches nothing without an end consumer", async () => {
    const r = await rawSession(bare, {
      path: realtimePath(`model=gpt-realtime-mini&${usageQuery}`),
      host: "rt.test",
      auth: "client-a",
      deflate: true,
      responses: 1
    })
    expect(r.frames.length).toBeGreaterThan(500)
    // the bridge's pipe alone; with a consumer (every earlier session) the byte counter too
    expect(listeners.bare).toEqual([1])
    expect(listeners.sink.length).toBeGreaterThan(0)
    expect(new Set(listeners.sink)).toEqual(new Set([2]))
  })
})

describe("CONNECT tunnel bytes", () => {
  it("counts every byte each way after the 200, including bytes in the CONNECT packet", async () => {
    const request = Buffer.from(
      `GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${DEFAULT_KEYS.openai}\r\nConnection: close\r\n\r\n`
    )
    const before = ended.length
    const got = await new Promise<Buffer>((resolve, reject) => {
      const s = net.connect(port, "127.0.0.1")
      const chunks: Array<Buffer> = []
      s.on("data", (c: Buffer) => chunks.push(c))
      s.on("error", reject)
      s.on("close", () => resolve(Buffer.concat(chunks)))
      // the first 10 bytes of the tunneled request come in the CONNECT's own packet (the `head`)
      s.write(
        Buffer.concat([
          Buffer.from(`CONNECT rt.test:${mock.port} HTTP/1.1\r\nProxy-Authorization: Bearer client-a\r\n\r\n`),
          request.subarray(0, 10)
        ])
      )
      s.once("data", () => s.write(request.subarray(10)))
    })
    const established = "HTTP/1.1 200 Connection Established\r\n\r\n"
    expect(got.toString("latin1", 0, established.length)).toBe(established)
    const answer = got.subarray(established.length)
    expect(answer.toString("latin1")).toMatch(/^HTTP\/1\.1 200 OK\r\n/)
    const e = await nextEnded(before + 1)
    expect(e).toEqual({
      protocol: "tunnel",
      status: 200,
      bytesIn: request.length,
      bytesOut: answer.length,
      usage: undefined,
      model: undefined,
      responseModel: undefined
    })
  })
})
