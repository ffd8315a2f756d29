// WebSocket clients for tests: `ws` over HTTP/1.1 with any Host header, and `ws` over an HTTP/2 extended CONNECT
// stream (RFC 8441) — `ws` does not open one itself, so the stream is handed to a `ws` WebSocket in the client
// role (masking its frames) once the proxy answered 200. Plus the echo checks every transport runs.
import { createHash } from "node:crypto"
import type * as http from "node:http"
import type * as http2 from "node:http2"
import { expect } from "vitest"
import WebSocket from "ws"

export interface Refusal {
  readonly status: number
  readonly headers: http.IncomingHttpHeaders
  readonly body: string
}

/** Opens `url` with the given Host and headers; resolves with the open socket or the refusal. */
export const wsConnect = (
  url: string,
  o: {
    host: string
    headers?: Record<string, string>
    protocols?: Array<string>
    deflate?: boolean
    ca?: string
  }
): Promise<WebSocket | Refusal> =>
  new Promise((resolve, reject) => {
    const ws = new WebSocket(url, o.protocols ?? [], {
      headers: { Host: o.host, ...o.headers },
      perMessageDeflate: o.deflate ?? false,
      maxPayload: 128 * 1024 * 1024,
      ...(o.ca !== undefined ? { ca: o.ca } : {})
    })
    queueMessages(ws)
    ws.once("open", () => resolve(ws))
    ws.once("unexpected-response", (_req, res) => {
      const chunks: Array<Buffer> = []
      res.on("data", (c: Buffer) => chunks.push(c))
      res.on("end", () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() })
      )
    })
    ws.once("error", reject)
  })

export const isOpen = (r: WebSocket | Refusal): r is WebSocket => r instanceof WebSocket

export const expectOpen = (r: WebSocket | Refusal): WebSocket => {
  if (!isOpen(r)) throw new Error(`expected an open WebSocket, got ${r.status} ${r.body}`)
  return r
}

interface Message {
  readonly data: Buffer
  readonly isBinary: boolean
}

/** Messages received and not yet taken, per socket: a message may arrive in the same packet as the 101. */
const queues = new WeakMap<WebSocket, { messages: Array<Message>; waiters: Array<(m: Message | undefined) => void> }>()

const queueMessages = (ws: WebSocket): void => {
  const q = { messages: [] as Array<Message>, waiters: [] as Array<(m: Message | undefined) => void> }
  queues.set(ws, q)
  ws.on("message", (data: Buffer, isBinary: boolean) => {
    const waiter = q.waiters.shift()
    if (waiter) waiter({ data, isBinary })
    else q.messages.push({ data, isBinary })
  })
  ws.on("close", () => {
    for (const w of q.waiters.splice(0)) w(undefined)
  })
}

/** The next message received on `ws` (rejects when it closes first). */
export const nextMessage = (ws: WebSocket): Promise<Message> => {
  const q = queues.get(ws)
  if (q === undefined) throw new Error("not a socket from wsConnect/h2WebSocket")
  const m = q.messages.shift()
  if (m !== undefined) return Promise.resolve(m)
  if (ws.readyState === WebSocket.CLOSED) return Promise.reject(new Error("closed before a message"))
  return new Promise((resolve, reject) =>
    q.waiters.push((msg) => (msg === undefined ? reject(new Error("closed before a message")) : resolve(msg)))
  )
}

export const closed = (ws: WebSocket): Promise<{ code: number; reason: string }> =>
  new Promise((resolve) => {
    if (ws.readyState === WebSocket.CLOSED) return resolve({ code: -1, reason: "" })
    ws.once("close", (code: number, reason: Buffer) => resolve({ code, reason: reason.toString() }))
  })

const sha = (b: Buffer): string => createHash("sha256").update(b).digest("hex")

/** Text, binary, a 16 MiB message, ping/pong, then a clean close with code and reason started by the client. */
export const exerciseEcho = async (ws: WebSocket): Promise<void> => {
  ws.send("héllo ✓ world")
  const t = await nextMessage(ws)
  expect(t.isBinary).toBe(false)
  expect(t.data.toString()).toBe("héllo ✓ world")

  const bin = Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7 + 3) & 255))
  ws.send(bin)
  const b = await nextMessage(ws)
  expect(b.isBinary).toBe(true)
  expect(b.data.equals(bin)).toBe(true)

  const big = Buffer.alloc(16 * 1024 * 1024)
  for (let i = 0; i < big.length; i += 4) big.writeUInt32LE((i * 2654435761) >>> 0, i)
  ws.send(big)
  const g = await nextMessage(ws)
  expect(g.data.length).toBe(big.length)
  expect(sha(g.data)).toBe(sha(big))

  const pong = new Promise<string>((r) => ws.once("pong", (d: Buffer) => r(d.toString())))
  ws.ping("are you there")
  expect(await pong).toBe("are you there")

  const c = closed(ws)
  ws.close(4000, "client done")
  expect(await c).toEqual({ code: 4000, reason: "client done" })
}

/** Waits until the server's SETTINGS allow extended CONNECT (RFC 8441 §3). */
export const connectProtocolReady = (session: http2.ClientHttp2Session): Promise<void> =>
  new Promise((resolve, reject) => {
    if (session.remoteSettings?.enableConnectProtocol === true) return resolve()
    session.once("error", reject)
    session.once("remoteSettings", (s: http2.Settings) => {
      if (s.enableConnectProtocol === true) resolve()
      else reject(new Error("server does not allow extended CONNECT"))
    })
  })

/** `ws`'s constructor as its server side uses it (no handshake of its own); typed here as @types/ws omits it. */
const ServerlessWebSocket = WebSocket as unknown as new (
  address: null,
  protocols: undefined,
  options: { autoPong: boolean; closeTimeout: number }
) => WebSocket

interface ClientRoleWebSocket {
  _isServer: boolean
  setSocket: (socket: unknown, head: Buffer, options: Record<string, unknown>) => void
}

export interface H2Result {
  readonly status: number
  readonly headers: http2.IncomingHttpHeaders
  /** The WebSocket over the stream when the status is 200. */
  readonly ws: WebSocket | undefined
  /** The body when the status is not 200. */
  readonly body: string
  readonly stream: http2.ClientHttp2Stream
}

/** Extended CONNECT (`:protocol websocket`) on `session`; the stream becomes a `ws` WebSocket on 200. */
export const h2WebSocket = async (
  session: http2.ClientHttp2Session,
  o: { authority: string; path: string; scheme: "http" | "https"; headers?: Record<string, string> }
): Promise<H2Result> => {
  await connectProtocolReady(session)
  const stream = session.request(
    {
      ":method": "CONNECT",
      ":protocol": "websocket",
      ":scheme": o.scheme,
      ":path": o.path,
      ":authority": o.authority,
      "sec-websocket-version": "13",
      ...o.headers
    },
    { endStream: false }
  )
  return new Promise((resolve, reject) => {
    stream.once("error", reject)
    stream.once("response", (headers) => {
      const status = Number(headers[":status"])
      if (status !== 200) {
        const chunks: Array<Buffer> = []
        stream.on("data", (c: Buffer) => chunks.push(c))
        stream.on("end", () =>
          resolve({ status, headers, ws: undefined, body: Buffer.concat(chunks).toString(), stream })
        )
        return
      }
      stream.removeListener("error", reject)
      const ws = new ServerlessWebSocket(null, undefined, { autoPong: true, closeTimeout: 30_000 })
      const client = ws as unknown as ClientRoleWebSocket
      client._isServer = false
      queueMessages(ws)
      client.setSocket(stream, Buffer.alloc(0), { maxPayload: 128 * 1024 * 1024, allowSynchronousEvents: true })
      resolve({ status, headers, ws, body: "", stream })
    })
  })
}
