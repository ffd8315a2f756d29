// e2e: WebSocket through a real openproxy process to the mock's Realtime endpoint: the `ws` client over
// ws:// and wss:// (HTTP/1.1 Upgrade) with the key as a Bearer header and as the browser subprotocol
// form, to both upstreams, exchanging Realtime-style JSON events; refused handshakes; and RFC 8441
// (HTTP/2 extended CONNECT) over TLS h2 and h2c with a `node:http2` client speaking raw frames.
import http2 from "node:http2"
import { afterAll, describe, expect, it } from "vitest"
import WebSocket from "ws"
import { testLookup } from "./support/clients.js"
import { useStack } from "./support/setup.js"
import { CLIENT_KEY, providerHost, type Upstream } from "./support/stack.js"
import { clientFrame, type Frame, FrameReader, OP_CLOSE, OP_TEXT } from "./support/wsframes.js"

const { stack } = useStack()
const open = new Set<WebSocket>()

afterAll(() => {
  for (const ws of open) ws.terminate()
})

type Json = { [key: string]: unknown }

/** A connected client: events arrive in `next()` order. */
interface Conn {
  readonly ws: WebSocket
  readonly next: () => Promise<Json>
  readonly send: (event: Json) => void
  readonly close: () => Promise<{ code: number; reason: string }>
}

const EVENT_TIMEOUT_MS = 5_000

const connect = (url: string, protocols: string[], headers: Record<string, string>): Promise<Conn> =>
  new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocols, {
      headers,
      lookup: testLookup,
      ca: stack().certs.caCert,
      handshakeTimeout: EVENT_TIMEOUT_MS
    })
    open.add(ws)
    const queue: Json[] = []
    const waiters: Array<(e: Json) => void> = []
    ws.on("message", (data, isBinary) => {
      expect(isBinary).toBe(false)
      const event = JSON.parse(data.toString()) as Json
      const w = waiters.shift()
      if (w) w(event)
      else queue.push(event)
    })
    const closed = new Promise<{ code: number; reason: string }>((r) =>
      ws.once("close", (code, reason) => {
        open.delete(ws)
        r({ code, reason: reason.toString() })
      })
    )
    ws.once("unexpected-response", (_req, res) => {
      let body = ""
      res.on("data", (b: Buffer) => {
        body += b.toString()
      })
      res.on("end", () => {
        reject(
          Object.assign(new Error(`handshake refused: ${res.statusCode} ${body}`), { status: res.statusCode, body })
        )
        ws.terminate()
      })
    })
    ws.once("error", reject)
    ws.once("open", () =>
      resolve({
        ws,
        next: () => {
          const e = queue.shift()
          if (e !== undefined) return Promise.resolve(e)
          return new Promise<Json>((res, rej) => {
            const t = setTimeout(() => rej(new Error("no event in time")), EVENT_TIMEOUT_MS)
            waiters.push((ev) => {
              clearTimeout(t)
              res(ev)
            })
          })
        },
        send: (event) => ws.send(JSON.stringify(event)),
        close: () => {
          ws.close(1000, "done")
          return closed
        }
      })
    )
  })

const UPSTREAMS: Upstream[] = ["h1", "h2"]

describe.each(["ws", "wss"] as const)("ws client over %s://", (scheme) => {
  const url = (host: string, model = "gpt-realtime-mini"): string =>
    `${scheme}://${host}:${scheme === "ws" ? stack().proxy.httpPort : stack().proxy.httpsPort}/v1/realtime?model=${model}`

  describe.each(UPSTREAMS)("to a %s upstream", (upstream) => {
    const host = providerHost("openai", upstream)

    it("exchanges Realtime events (key as Authorization: Bearer)", async () => {
      const c = await connect(url(host), [], { Authorization: `Bearer ${CLIENT_KEY}`, "OpenAI-Beta": "realtime=v1" })
      const created = await c.next()
      expect(created.type).toBe("session.created")
      expect(created.session).toMatchObject({ id: "sess_mock", model: "gpt-realtime-mini" })
      const events: Json[] = [
        { type: "session.update", session: { instructions: "Be brief.", modalities: ["text"] } },
        {
          type: "conversation.item.create",
          item: { type: "message", role: "user", content: [{ type: "input_text", text: "hi" }] }
        },
        { type: "response.create", response: { modalities: ["text"] } }
      ]
      for (const e of events) c.send(e)
      for (const e of events) expect(await c.next()).toEqual({ type: "echo", event: e })
      // A large event (≈ 512 KiB of audio) crosses the proxy intact.
      const audio = Buffer.alloc(384 * 1024, 7).toString("base64")
      c.send({ type: "input_audio_buffer.append", audio })
      expect(await c.next()).toEqual({ type: "echo", event: { type: "input_audio_buffer.append", audio } })
      expect(await c.close()).toEqual({ code: 1000, reason: "done" })
    })

    it("accepts the browser subprotocol form (openai-insecure-api-key.K)", async () => {
      const c = await connect(url(host), ["realtime", `openai-insecure-api-key.${CLIENT_KEY}`], {})
      expect(c.ws.protocol).toBe("realtime")
      expect((await c.next()).type).toBe("session.created")
      c.send({ type: "response.create" })
      expect(await c.next()).toEqual({ type: "echo", event: { type: "response.create" } })
      await c.close()
    })

    it("refuses a wrong key with 401 before reaching the upstream", async () => {
      const err = await connect(url(host), [], { Authorization: "Bearer sk-wrong" }).then(
        () => undefined,
        (e: unknown) => e
      )
      expect(err).toMatchObject({ status: 401 })
    })
  })

  it("answers 404 for an unknown host", async () => {
    const err = await connect(url("unknown.test"), [], { Authorization: `Bearer ${CLIENT_KEY}` }).then(
      () => undefined,
      (e: unknown) => e
    )
    expect(err).toMatchObject({ status: 404 })
  })
})

/** RFC 8441: a WebSocket on an HTTP/2 stream. */
const h2WebSocket = async (
  session: http2.ClientHttp2Session,
  scheme: "https" | "http",
  authority: string,
  path: string
): Promise<{ status: number; next: () => Promise<Frame>; stream: http2.ClientHttp2Stream }> => {
  if (!session.remoteSettings.enableConnectProtocol) {
    await new Promise<void>((r) => session.once("remoteSettings", () => r()))
  }
  expect(session.remoteSettings.enableConnectProtocol).toBe(true)
  const stream = session.request({
    ":method": "CONNECT",
    ":protocol": "websocket",
    ":scheme": scheme,
    ":authority": authority,
    ":path": path,
    "sec-websocket-version": "13",
    authorization: `Bearer ${CLIENT_KEY}`
  })
  const reader = new FrameReader()
  const frames: Frame[] = []
  const waiters: Array<(f: Frame) => void> = []
  stream.on("data", (b: Buffer) => {
    for (const f of reader.push(b)) {
      const w = waiters.shift()
      if (w) w(f)
      else frames.push(f)
    }
  })
  const head = await new Promise<http2.IncomingHttpHeaders>((resolve, reject) => {
    stream.once("response", resolve)
    stream.once("error", reject)
    stream.once("close", () => reject(new Error(`stream closed before a response (code ${stream.rstCode})`)))
  })
  const next = (): Promise<Frame> => {
    const f = frames.shift()
    if (f !== undefined) return Promise.resolve(f)
    return new Promise((res, rej) => {
      const t = setTimeout(() => rej(new Error("no frame in time")), EVENT_TIMEOUT_MS)
      waiters.push((fr) => {
        clearTimeout(t)
        res(fr)
      })
    })
  }
  return { status: Number(head[":status"]), next, stream }
}

describe.each(["h2 over TLS", "h2c"] as const)("RFC 8441 extended CONNECT over %s", (kind) => {
  it("exchanges Realtime events with the HTTP/1.1 upstream", async () => {
    const port = kind === "h2c" ? stack().proxy.httpPort : stack().proxy.httpsPort
    const session =
      kind === "h2c"
        ? http2.connect(`http://127.0.0.1:${port}`)
        : http2.connect(`https://127.0.0.1:${port}`, { ca: stack().certs.caCert, servername: "openai.test" })
    session.on("error", () => {})
    try {
      const ws = await h2WebSocket(
        session,
        kind === "h2c" ? "http" : "https",
        `openai.test:${port}`,
        "/v1/realtime?model=gpt-realtime"
      )
      expect(ws.status).toBe(200)
      const first = await ws.next()
      expect(first.opcode).toBe(OP_TEXT)
      expect(JSON.parse(first.payload.toString())).toMatchObject({
        type: "session.created",
        session: { model: "gpt-realtime" }
      })
      const event = { type: "response.create", response: { modalities: ["text"] } }
      ws.stream.write(clientFrame(OP_TEXT, Buffer.from(JSON.stringify(event))))
      const echo = await ws.next()
      expect(JSON.parse(echo.payload.toString())).toEqual({ type: "echo", event })
      // Close handshake: 1000, answered by the upstream.
      const code = Buffer.alloc(2)
      code.writeUInt16BE(1000)
      ws.stream.write(clientFrame(OP_CLOSE, code))
      const closing = await ws.next()
      expect(closing.opcode).toBe(OP_CLOSE)
      expect(closing.payload.readUInt16BE(0)).toBe(1000)
      ws.stream.close()
    } finally {
      session.destroy()
    }
  })
})
