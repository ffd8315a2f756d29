// The Realtime WebSocket usage tap: hand-built frames (fragments, a ping between fragments, masked frames, a close)
// and the real thing: the mock's `ws` server answering two `response.create`s through a recording TCP relay
// (where the proxy sits), with permessage-deflate with and without context takeover, fed to the tap at arbitrary
// split points.
import { once } from "node:events"
import net from "node:net"
import fc from "fast-check"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import WebSocket from "ws"
import { addUsage, parseDeflateExtension, type Usage, WsUsageTap } from "../src/domain/usage/index.js"
import { DEFAULT_KEYS, type MockProvider, startMockProvider } from "./support/mockProvider.js"
import * as X from "./usage-fixtures.js"
import { split } from "./usage-fixtures.js"

/** One WebSocket frame as a server (or, with `mask`, a client) writes it. */
const frame = (opcode: number, payload: Buffer, o: { fin?: boolean; rsv1?: boolean; mask?: Buffer } = {}): Buffer => {
  const len = payload.length
  const ext = len < 126 ? 0 : len < 65536 ? 2 : 8
  const head = Buffer.alloc(2 + ext + (o.mask ? 4 : 0))
  head[0] = (o.fin === false ? 0 : 0x80) | (o.rsv1 ? 0x40 : 0) | opcode
  head[1] = (o.mask ? 0x80 : 0) | (ext === 0 ? len : ext === 2 ? 126 : 127)
  if (ext === 2) head.writeUInt16BE(len, 2)
  if (ext === 8) head.writeBigUInt64BE(BigInt(len), 2)
  let body = payload
  if (o.mask) {
    o.mask.copy(head, 2 + ext)
    body = Buffer.from(payload.map((b, i) => b ^ (o.mask as Buffer)[i & 3]))
  }
  return Buffer.concat([head, body])
}

const text = (v: unknown): Buffer => Buffer.from(JSON.stringify(v))

const runTap = async (extensions: string | undefined, parts: Buffer[]) => {
  const tap = new WsUsageTap(extensions)
  for (const p of parts) tap.push(p)
  return tap.finish()
}

const twice = addUsage(X.realtimeResponseUsage, X.realtimeResponseUsage)

describe("WebSocket frames (no compression)", () => {
  const done1 = text(X.realtimeResponseDone("1"))
  const done2 = text(X.realtimeResponseDone("2"))
  const delta = text({ type: "response.output_audio.delta", event_id: "e", delta: "A".repeat(70000) })
  const stream = Buffer.concat([
    frame(
      1,
      text({
        type: "session.created",
        event_id: "event_0",
        session: { id: "sess_1", model: "gpt-realtime-2025-08-28" }
      })
    ),
    frame(1, delta),
    frame(2, Buffer.from([1, 2, 3])),
    // response.done in three fragments with a ping between the first two
    frame(1, done1.subarray(0, 100), { fin: false }),
    frame(9, Buffer.from("ping")),
    frame(0, done1.subarray(100, 2000), { fin: false }),
    frame(0, done1.subarray(2000), { fin: true }),
    // masked (not what a server sends, but a passive reader can read it)
    frame(1, done2, { mask: Buffer.from([0x11, 0x22, 0x33, 0x44]) }),
    frame(8, Buffer.from([0x03, 0xe8]))
  ])

  it("sums every response.done and names the session's model", async () => {
    expect(await runTap(undefined, [stream])).toEqual({
      usage: twice,
      responseModel: "gpt-realtime-2025-08-28",
      responses: 2,
      complete: true
    })
  })

  it("property: any split gives the same sums", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.integer({ min: 0, max: stream.length }), { maxLength: 40 }), async (cuts) => {
        const r = await runTap(undefined, split(stream, cuts))
        expect(r.usage).toEqual(twice)
        expect(r.responses).toBe(2)
      }),
      { numRuns: 200 }
    )
  })

  it("a connection cut in the middle of a message: the responses completed before it", async () => {
    const cut = stream.length - 600 // inside the last response.done (about 2 KiB, before a 4-byte close frame)
    const r = await runTap(undefined, [stream.subarray(0, cut)])
    expect(r).toEqual({
      usage: X.realtimeResponseUsage,
      responseModel: "gpt-realtime-2025-08-28",
      responses: 1,
      complete: true
    })
  })

  it("a response.created without its response.done (the session ended mid-response): complete false", async () => {
    const created = (id: string) => frame(1, text({ type: "response.created", event_id: id, response: { id } }))
    const head = stream.subarray(0, stream.length - 4) // without the close frame
    const cut = await runTap(undefined, [created("r1"), created("r2"), head, created("r3")])
    expect(cut).toEqual({ usage: twice, responseModel: "gpt-realtime-2025-08-28", responses: 2, complete: false })
    // every response created ended: complete
    const whole = await runTap(undefined, [created("r1"), created("r2"), stream])
    expect(whole.complete).toBe(true)
    expect(whole.responses).toBe(2)
  })

  it("bytes after a close frame are ignored; no response.done means no usage", async () => {
    const r = await runTap(undefined, [frame(8, Buffer.alloc(0)), frame(1, done1)])
    expect(r).toEqual({ usage: undefined, responseModel: "unknown", responses: 0, complete: true })
  })

  it("gives up (complete: false) on a compressed frame that was not negotiated, and on a reserved opcode", async () => {
    expect((await runTap(undefined, [frame(1, done1, { rsv1: true })])).complete).toBe(false)
    expect((await runTap(undefined, [frame(3, done1)])).complete).toBe(false)
    expect((await runTap(undefined, [frame(0, done1)])).complete).toBe(false)
  })

  it("reads the negotiated permessage-deflate parameters", () => {
    expect(parseDeflateExtension(undefined)).toEqual({ enabled: false, serverNoContextTakeover: false })
    expect(parseDeflateExtension("permessage-deflate; client_max_window_bits=15")).toEqual({
      enabled: true,
      serverNoContextTakeover: false
    })
    expect(parseDeflateExtension("x-webkit-deflate-frame, permessage-deflate;Server_No_Context_Takeover")).toEqual({
      enabled: true,
      serverNoContextTakeover: true
    })
  })
})

describe("the mock's Realtime sessions through a recording relay", () => {
  let mock: MockProvider

  beforeAll(async () => {
    mock = await startMockProvider()
  })
  afterAll(async () => {
    await mock?.close()
  })

  /** A TCP relay to the mock that records what the server sends; resolves with those bytes when both sides closed. */
  const relay = async (): Promise<{ port: number; recorded: Promise<Buffer>; close: () => void }> => {
    const chunks: Buffer[] = []
    let done: (b: Buffer) => void = () => {}
    const recorded = new Promise<Buffer>((r) => {
      done = r
    })
    const server = net.createServer((client) => {
      const up = net.connect(mock.port, "127.0.0.1")
      up.on("data", (c: Buffer) => chunks.push(c))
      client.pipe(up)
      up.pipe(client)
      up.on("close", () => {
        client.destroy()
        done(Buffer.concat(chunks))
      })
      client.on("close", () => up.destroy())
      client.on("error", () => {})
      up.on("error", () => {})
    })
    server.listen(0, "127.0.0.1")
    await once(server, "listening")
    return { port: (server.address() as net.AddressInfo).port, recorded, close: () => server.close() }
  }

  const session = async (deflate: boolean | { serverNoContextTakeover: boolean }, fragment: number) => {
    const r = await relay()
    const ws = new WebSocket(
      `ws://127.0.0.1:${r.port}/v1/realtime?model=gpt-realtime-mini&mock_usage=input=100,output=40,cache_read=60&mock_fragment=${fragment}&mock_repeat=20`,
      { headers: { Authorization: `Bearer ${DEFAULT_KEYS.openai}` }, perMessageDeflate: deflate }
    )
    let dones = 0
    const finished = new Promise<void>((resolve) => {
      ws.on("message", (data) => {
        if (JSON.parse(String(data)).type === "response.done" && ++dones === 2) resolve()
      })
    })
    await once(ws, "open")
    ws.send(JSON.stringify({ type: "response.create" }))
    ws.send(JSON.stringify({ type: "response.create" }))
    await finished
    ws.close()
    const bytes = await r.recorded
    r.close()
    const headEnd = bytes.indexOf("\r\n\r\n") + 4
    const head = bytes.toString("latin1", 0, headEnd)
    const extensions = /^sec-websocket-extensions: (.*)$/im.exec(head)?.[1]?.trim()
    return { frames: bytes.subarray(headEnd), extensions }
  }

  const expected: Usage = { input: 200, output: 80, cacheRead: 120, cacheWrite: 0, reasoning: 0 }

  for (const [name, deflate, takeover] of [
    ["permessage-deflate with context takeover", true, true],
    ["permessage-deflate, server_no_context_takeover", { serverNoContextTakeover: true }, false],
    ["no compression", false, false]
  ] as const) {
    it(`${name}: sums both response.done at any split`, async () => {
      const s = await session(deflate, 300)
      if (deflate === false) expect(s.extensions).toBeUndefined()
      else {
        expect(parseDeflateExtension(s.extensions)).toEqual({ enabled: true, serverNoContextTakeover: !takeover })
        expect(s.frames[0] & 0x40).toBe(0x40) // the first message really is compressed
      }
      expect(await runTap(s.extensions, [s.frames])).toEqual({
        usage: expected,
        responseModel: "gpt-realtime-mini",
        responses: 2,
        complete: true
      })
      await fc.assert(
        fc.asyncProperty(fc.array(fc.integer({ min: 0, max: s.frames.length }), { maxLength: 30 }), async (cuts) => {
          const r = await runTap(s.extensions, split(s.frames, cuts))
          expect(r.usage).toEqual(expected)
          expect(r.complete).toBe(true)
        }),
        { numRuns: 50 }
      )
    })
  }

  it("with context takeover, a tap that missed the start cannot inflate: it says so instead of guessing", async () => {
    const s = await session(true, 0)
    // drop the first frame (session.created): later messages refer to its compression context
    const b1 = s.frames[1] & 0x7f
    const first = 2 + (b1 === 126 ? 2 : b1 === 127 ? 8 : 0) + (b1 === 126 ? s.frames.readUInt16BE(2) : b1)
    const r = await runTap(s.extensions, [s.frames.subarray(first)])
    expect(r.complete).toBe(false)
    expect(r.responses).toBeLessThan(2)
  })
})
