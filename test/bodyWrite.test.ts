// The relayed body's direct chunked writes (src/proxy/bodyWrite.ts): the bytes on the wire are exactly Node's own
// chunked framing (small chunks framed in one buffer, large ones under a cork), the response still ends with its
// terminating chunk, pipelined responses and keep-alive stay intact, responses Node does not frame as chunked
// (Content-Length, HTTP/1.0, HEAD) are untouched, and backpressure holds through the proxy for a chunked answer.
import * as http from "node:http"
import * as net from "node:net"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { frameChunk, writeBody } from "../src/proxy/bodyWrite.js"
import { type RunningProxy, startProxy } from "./support/proxy.js"

const nodeFrame = (b: Buffer): Buffer =>
  Buffer.concat([Buffer.from(`${b.length.toString(16)}\r\n`), b, Buffer.from("\r\n")])
const bytes = (n: number, seed: number): Buffer => {
  const b = Buffer.allocUnsafe(n)
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff
  return b
}
const tick = () => new Promise((r) => setImmediate(r))
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Raw bytes from one connection until `done(all)` says the answer is complete (or the socket ends). */
const rawExchange = (port: number, request: string, done: (all: Buffer) => boolean): Promise<Buffer> =>
  new Promise((resolve, reject) => {
    const chunks: Array<Buffer> = []
    const s = net.connect(port, "127.0.0.1", () => s.write(request))
    const finish = () => {
      s.destroy()
      resolve(Buffer.concat(chunks))
    }
    s.on("data", (c: Buffer) => {
      chunks.push(c)
      if (done(Buffer.concat(chunks))) finish()
    })
    s.on("end", finish)
    s.on("error", reject)
  })

/** Splits a raw HTTP/1.1 answer into its head and the bytes after it. */
const split = (raw: Buffer): { head: string; rest: Buffer } => {
  const i = raw.indexOf("\r\n\r\n")
  return { head: raw.subarray(0, i).toString("latin1"), rest: raw.subarray(i + 4) }
}

describe("frameChunk", () => {
  it("frames like Node (lower-case hex size line, CRLF after the data)", () => {
    for (const n of [1, 9, 15, 16, 17, 255, 256, 4000, 4095, 4096, 65535, 65536, 1_000_000]) {
      const b = bytes(n, n)
      expect(frameChunk(b).equals(nodeFrame(b))).toBe(true)
    }
  })
})

describe("writeBody on a node:http response", () => {
  const small = [bytes(5, 1), bytes(130, 2), bytes(1, 3), bytes(200, 4)]
  const large = bytes(70_000, 5)
  let server: http.Server
  let port = 0
  /** socket.write calls made while each response ran (counts the direct path's writes) */
  const socketWrites: Array<number> = []

  beforeAll(async () => {
    server = http.createServer(async (req, res) => {
      const onDrain = () => undefined
      if (req.url === "/length") {
        res.writeHead(200, { "content-length": 135 })
        writeBody(res, false, small[0], onDrain)
        await tick()
        writeBody(res, false, small[1], onDrain)
        return void res.end()
      }
      res.writeHead(200, { "content-type": "text/event-stream" })
      const socket = req.socket
      const write = socket.write
      let calls = 0
      socket.write = function (this: net.Socket, ...args: Parameters<typeof write>) {
        calls++
        return write.apply(this, args)
      } as typeof write
      for (const c of req.url === "/large" ? [small[0], large, small[1]] : small) {
        writeBody(res, false, c, onDrain)
        await tick()
      }
      socket.write = write
      socketWrites.push(calls)
      res.end()
    })
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r))
    port = (server.address() as net.AddressInfo).port
  })
  afterAll(() => server?.close())

  const ended = (all: Buffer) => all.includes("\r\n0\r\n\r\n")

  it("small chunks: Node's framing byte for byte, one socket write per chunk after the head, then the last chunk", async () => {
    socketWrites.length = 0
    const raw = await rawExchange(port, "GET /small HTTP/1.1\r\nHost: t\r\n\r\n", ended)
    const { head, rest } = split(raw)
    expect(head).toMatch(/^HTTP\/1\.1 200 OK\r\n/)
    expect(head.toLowerCase()).toContain("transfer-encoding: chunked")
    expect(rest.equals(Buffer.concat([...small.map(nodeFrame), Buffer.from("0\r\n\r\n")]))).toBe(true)
    // Node's own write of the first chunk is 4 socket writes (size, CRLF, data, CRLF); each later one is 1.
    expect(socketWrites).toEqual([4 + (small.length - 1)])
  })

  it("a large chunk is written uncopied under a cork, framed the same", async () => {
    const raw = await rawExchange(port, "GET /large HTTP/1.1\r\nHost: t\r\n\r\n", ended)
    const { rest } = split(raw)
    expect(
      rest.equals(Buffer.concat([nodeFrame(small[0]), nodeFrame(large), nodeFrame(small[1]), Buffer.from("0\r\n\r\n")]))
    ).toBe(true)
  })

  it("pipelined requests on one connection get their answers whole and in order", async () => {
    const req = "GET /a HTTP/1.1\r\nHost: t\r\n\r\nGET /b HTTP/1.1\r\nHost: t\r\n\r\n"
    const one = Buffer.concat([...small.map(nodeFrame), Buffer.from("0\r\n\r\n")])
    const raw = await rawExchange(port, req, (all) => all.toString("latin1").split("\r\n0\r\n\r\n").length === 3)
    const first = split(raw)
    expect(first.rest.subarray(0, one.length).equals(one)).toBe(true)
    const second = split(first.rest.subarray(one.length))
    expect(second.head).toMatch(/^HTTP\/1\.1 200 OK\r\n/)
    expect(second.rest.equals(one)).toBe(true)
  })

  it("HTTP/1.0: no chunked framing, the body as it is, then the close", async () => {
    const raw = await rawExchange(port, "GET /old HTTP/1.0\r\nHost: t\r\n\r\n", () => false)
    const { head, rest } = split(raw)
    expect(head.toLowerCase()).not.toContain("transfer-encoding")
    expect(rest.equals(Buffer.concat(small))).toBe(true)
  })

  it("a Content-Length body is written as it is", async () => {
    const raw = await rawExchange(
      port,
      "GET /length HTTP/1.1\r\nHost: t\r\n\r\n",
      (all) => split(all).rest.length >= 135
    )
    const { head, rest } = split(raw)
    expect(head.toLowerCase()).toContain("content-length: 135")
    expect(rest.equals(Buffer.concat([small[0], small[1]]))).toBe(true)
  })

  it("HEAD: no body bytes, and the connection serves the next request", async () => {
    const req = "HEAD /h HTTP/1.1\r\nHost: t\r\n\r\nGET /small HTTP/1.1\r\nHost: t\r\n\r\n"
    const raw = await rawExchange(port, req, ended)
    const first = split(raw)
    expect(first.rest.toString("latin1")).toMatch(/^HTTP\/1\.1 200 OK\r\n/)
    const second = split(first.rest)
    expect(second.rest.equals(Buffer.concat([...small.map(nodeFrame), Buffer.from("0\r\n\r\n")]))).toBe(true)
  })
})

describe("a chunked answer through the proxy", () => {
  const MiB = 1024 * 1024
  const TOTAL = 128 * MiB
  let upstream: http.Server
  let proxy: RunningProxy
  let written = 0

  beforeAll(async () => {
    // 4 KiB writes (the copy path) and 64 KiB ones (the cork path), no Content-Length: chunked both ways
    const a = bytes(4000, 7)
    const b = bytes(64 * 1024, 8)
    upstream = http.createServer((_req, res) => {
      written = 0
      res.writeHead(200, { "content-type": "application/octet-stream" })
      const pump = () => {
        while (written < TOTAL) {
          const c = (written / 4000) % 2 < 1 ? a : b
          written += c.length
          if (!res.write(c)) return void res.once("drain", pump)
        }
        res.end()
      }
      pump()
    })
    await new Promise<void>((r) => upstream.listen(0, "127.0.0.1", r))
    const port = (upstream.address() as net.AddressInfo).port
    proxy = await startProxy(`
http_port: 0
http_bind_address: 127.0.0.1
providers:
  - { type: forward, host: "bw.test", endpoint: "127.0.0.1:${port}", tls: false }
`)
  })
  afterAll(async () => {
    await proxy?.close()
    upstream?.close()
  })

  it("a client that stops reading stalls the upstream; then every byte arrives, framed, and the stream ends", async () => {
    const socket = net.connect(proxy.httpPort!, "127.0.0.1")
    await new Promise((r) => socket.once("connect", r))
    socket.write("GET /down HTTP/1.1\r\nHost: bw.test\r\n\r\n")
    socket.pause()
    await sleep(1500)
    const stalledAt = written
    expect(stalledAt).toBeGreaterThan(0)
    expect(stalledAt).toBeLessThan(64 * MiB)
    // Decode the chunked body as it comes: sizes must add up and the last chunk must close it.
    let buf: Buffer = Buffer.alloc(0)
    let headDone = false
    let body = 0
    let ended = false
    const done = new Promise<void>((resolve, reject) => {
      socket.on("data", (c: Buffer) => {
        buf = buf.length === 0 ? c : Buffer.concat([buf, c])
        if (!headDone) {
          const i = buf.indexOf("\r\n\r\n")
          if (i < 0) return
          if (!/transfer-encoding: chunked/i.test(buf.subarray(0, i).toString("latin1")))
            reject(new Error("not chunked"))
          headDone = true
          buf = buf.subarray(i + 4)
        }
        for (;;) {
          const eol = buf.indexOf("\r\n")
          if (eol < 0) return
          const size = Number.parseInt(buf.subarray(0, eol).toString("latin1"), 16)
          if (!Number.isFinite(size)) return reject(new Error(`bad size line ${buf.subarray(0, eol)}`))
          if (buf.length < eol + 2 + size + 2) return
          if (buf[eol + 2 + size] !== 0x0d || buf[eol + 3 + size] !== 0x0a) return reject(new Error("bad chunk end"))
          body += size
          buf = buf.subarray(eol + 4 + size)
          if (size === 0) {
            ended = true
            return resolve()
          }
        }
      })
      socket.on("error", reject)
    })
    socket.resume()
    await done
    expect(ended).toBe(true)
    expect(written).toBeGreaterThanOrEqual(TOTAL)
    expect(body).toBe(written)
    socket.destroy()
  }, 30_000)
})
