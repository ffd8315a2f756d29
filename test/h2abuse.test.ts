// Hostile HTTP/2 over raw frames (issue 10, docs/hardening.md): rapid reset (CVE-2023-44487), CONTINUATION
// flood, PING and SETTINGS floods, more concurrent streams than allowed. Each must cost the proxy little, never
// reach the upstream, and leave other clients served.
import * as http2 from "node:http2"
import * as v8 from "node:v8"
import { runInNewContext } from "node:vm"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type CountingUpstream, startCountingUpstream } from "./support/countingUpstream.js"
import { connectRaw, Flag, FrameType, frame, getBlock, literal, rstStream } from "./support/h2raw.js"
import { h2req } from "./support/http.js"
import { logLines, type RunningProxy, startProxy } from "./support/proxy.js"

let up: CountingUpstream
let proxy: RunningProxy
beforeAll(async () => {
  up = await startCountingUpstream()
  proxy = await startProxy(`
http_port: 0
http_bind_address: 127.0.0.1
http2_max_concurrent_streams: 10
providers:
  - { type: forward, host: "m.test", endpoint: "127.0.0.1:${up.port}", tls: false }
`)
})
afterAll(async () => {
  await proxy?.close()
  await up?.close()
})

v8.setFlagsFromString("--expose-gc")
const gc = runInNewContext("gc") as () => void
const heapAfterGc = async () => {
  for (let i = 0; i < 3; i++) {
    gc()
    await new Promise((r) => setTimeout(r, 20))
  }
  return process.memoryUsage().heapUsed
}

describe("HTTP/2 abuse", () => {
  it("rapid reset: 20,000 HEADERS+RST_STREAM on one connection while another client makes 50 requests", async () => {
    const connsBefore = up.connections()
    const reqsBefore = up.requests()
    const raw = await connectRaw(proxy.httpPort!)
    const block = getBlock("m.test")
    // the legitimate client: its own h2c connection, 5 lanes of 10 requests, during the flood
    const good = http2.connect(`http://127.0.0.1:${proxy.httpPort}`)
    good.on("error", () => undefined)
    const lanes = Array.from({ length: 5 }, async () => {
      const statuses: Array<number> = []
      for (let i = 0; i < 10; i++) {
        const r = await h2req(good, { authority: "m.test", path: "/ok" })
        statuses.push(r.status)
      }
      return statuses
    })
    let sent = 0
    const flood = (async () => {
      for (let batch = 0; batch < 100 && sent < 20_000; batch++) {
        const frames: Array<Buffer> = []
        for (let i = 0; i < 200; i++) {
          const id = 2 * sent + 1
          frames.push(frame(FrameType.HEADERS, Flag.END_STREAM | Flag.END_HEADERS, id, block), rstStream(id))
          sent++
        }
        if (!(await raw.write(Buffer.concat(frames)))) break
        await new Promise((r) => setImmediate(r))
      }
    })()
    const results = (await Promise.all(lanes)).flat()
    await flood
    const closedAfter = await Promise.race([raw.closed, new Promise<number>((r) => setTimeout(() => r(-1), 10_000))])
    good.close()
    raw.socket.destroy()
    expect(results).toHaveLength(50)
    expect(results.every((s) => s === 200)).toBe(true)
    // the abusive connection was closed, well before it could send its 20,000 streams
    expect(closedAfter).toBeGreaterThanOrEqual(0)
    expect(sent).toBeLessThan(20_000)
    const goaway = raw.frames.find((f) => f.type === FrameType.GOAWAY)
    expect(goaway?.payload.readUInt32BE(4)).toBe(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM)
    expect(logLines.some((l) => l.includes("HTTP/2 session closed: too many streams reset before a response"))).toBe(
      true
    )
    // cancelled streams cost the upstream nothing: the 50 good requests and a handful of connections
    expect(up.requests() - reqsBefore).toBeLessThan(200)
    expect(up.connections() - connsBefore).toBeLessThan(30)
  }, 30_000)

  it("a CONTINUATION flood of over 1 MiB is cut off within seconds, without heap growth", async () => {
    const heapBefore = await heapAfterGc()
    const raw = await connectRaw(proxy.httpPort!)
    // 1010-byte literals, 16 per frame (the default SETTINGS_MAX_FRAME_SIZE is 16384)
    const pad = Buffer.concat(Array.from({ length: 16 }, (_, i) => literal(`x-pad-${i % 10}`, "a".repeat(1000))))
    await raw.write(frame(FrameType.HEADERS, 0, 1, getBlock("m.test")))
    let written = 0
    const t0 = Date.now()
    while (written < 2 * 1024 * 1024) {
      if (!(await raw.write(frame(FrameType.CONTINUATION, 0, 1, pad)))) break
      written += pad.length
    }
    const closedAfter = await Promise.race([raw.closed, new Promise<number>((r) => setTimeout(() => r(-1), 10_000))])
    raw.socket.destroy()
    expect(closedAfter).toBeGreaterThanOrEqual(0)
    expect(Date.now() - t0).toBeLessThan(10_000)
    const heapAfter = await heapAfterGc()
    expect(heapAfter - heapBefore).toBeLessThan(4 * 1024 * 1024)
    // still serving
    const s = http2.connect(`http://127.0.0.1:${proxy.httpPort}`)
    try {
      expect((await h2req(s, { authority: "m.test", path: "/ok" })).status).toBe(200)
    } finally {
      s.destroy()
    }
  }, 20_000)

  for (const kind of ["PING", "SETTINGS"] as const) {
    it(`a ${kind} flood from a client that does not read the answers is cut off`, async () => {
      const raw = await connectRaw(proxy.httpPort!)
      raw.socket.pause() // never reads the ACKs
      const one =
        kind === "PING"
          ? frame(FrameType.PING, 0, 0, Buffer.alloc(8))
          : frame(FrameType.SETTINGS, 0, 0, Buffer.alloc(0))
      const batch = Buffer.concat(Array.from({ length: 1000 }, () => one))
      let sent = 0
      const writing = (async () => {
        while (sent < 500_000) {
          if (!(await raw.write(batch))) return
          sent += 1000
        }
      })()
      const closedAfter = await Promise.race([raw.closed, new Promise<number>((r) => setTimeout(() => r(-1), 10_000))])
      raw.socket.destroy()
      await writing
      expect(closedAfter).toBeGreaterThanOrEqual(0)
      expect(sent).toBeLessThan(500_000)
    }, 20_000)
  }

  it("more concurrent streams than allowed: the extra ones are refused, and a session that insists is closed", async () => {
    const block = getBlock("m.test", "/slow?ms=1500")
    const headers = (from: number, n: number) =>
      Buffer.concat(
        Array.from({ length: n }, (_, i) =>
          frame(FrameType.HEADERS, Flag.END_STREAM | Flag.END_HEADERS, 2 * (from + i) + 1, block)
        )
      )
    const refusedIn = (frames: ReadonlyArray<{ type: number; payload: Buffer }>) =>
      frames.filter(
        (f) => f.type === FrameType.RST_STREAM && f.payload.readUInt32BE(0) === http2.constants.NGHTTP2_REFUSED_STREAM
      ).length
    const wait = (p: Promise<number>, ms: number) =>
      Promise.race([p, new Promise<number>((r) => setTimeout(() => r(-1), ms))])

    // Before the client acknowledged the limit: 15 at once with 10 allowed, 5 refused (REFUSED_STREAM), the
    // session lives on and the 10 are answered.
    const reqsBefore = up.requests()
    const a = await connectRaw(proxy.httpPort!, false)
    await new Promise((r) => setTimeout(r, 100))
    await a.write(headers(0, 15))
    await new Promise((r) => setTimeout(r, 2_500))
    expect(refusedIn(a.frames)).toBe(5)
    expect(a.frames.filter((f) => f.type === FrameType.HEADERS)).toHaveLength(10)
    expect(a.socket.destroyed).toBe(false)
    expect(up.requests() - reqsBefore).toBe(10)
    a.socket.destroy()

    // After acknowledging it, a client that opens more is in breach of the protocol (nghttp2: a connection error):
    // GOAWAY and the connection is closed; nothing past the limit reaches the upstream.
    const b = await connectRaw(proxy.httpPort!)
    await new Promise((r) => setTimeout(r, 100)) // SETTINGS exchanged and acknowledged
    await b.write(headers(0, 300))
    const closedAfter = await wait(b.closed, 10_000)
    b.socket.destroy()
    expect(closedAfter).toBeGreaterThanOrEqual(0)
    expect(b.frames.some((f) => f.type === FrameType.GOAWAY)).toBe(true)
    expect(up.requests() - reqsBefore).toBeLessThanOrEqual(20)
  }, 20_000)
})
