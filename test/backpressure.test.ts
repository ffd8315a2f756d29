// Backpressure both ways (SPEC §5): a client that stops reading stalls the upstream's writes, and an upstream
// that stops reading stalls the client's upload — the proxy never buffers a whole body.
import * as http from "node:http"
import * as net from "node:net"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type RunningProxy, startProxy } from "./support/proxy.js"

const MiB = 1024 * 1024
const TOTAL = 256 * MiB
let upstream: http.Server
let proxy: RunningProxy
/** Bytes the upstream managed to write to the proxy / read from it so far. */
let written = 0
let read = 0
let pauseUpload: (() => void) | undefined

beforeAll(async () => {
  const chunk = Buffer.alloc(MiB, 120)
  upstream = http.createServer((req, res) => {
    if (req.url === "/down") {
      written = 0
      res.writeHead(200, { "content-length": TOTAL })
      const pump = () => {
        while (written < TOTAL) {
          written += chunk.length
          if (!res.write(chunk)) return void res.once("drain", pump)
        }
        res.end()
      }
      pump()
      return
    }
    // /up: read a little, then stop reading until the test lets go
    read = 0
    req.on("data", (c: Buffer) => {
      read += c.length
      if (read > 4 * MiB && pauseUpload === undefined) {
        req.pause()
        pauseUpload = () => req.resume()
      }
    })
    req.on("end", () => res.end(String(read)))
  })
  await new Promise<void>((r) => upstream.listen(0, "127.0.0.1", r))
  const port = (upstream.address() as net.AddressInfo).port
  proxy = await startProxy(`
http_port: 0
http_bind_address: 127.0.0.1
max_request_body_size: ${TOTAL * 2}
providers:
  - { type: forward, host: "bp.test", endpoint: "127.0.0.1:${port}", tls: false }
`)
})
afterAll(async () => {
  await proxy?.close()
  upstream?.close()
})

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

describe("backpressure", () => {
  it("a client that stops reading stalls the upstream (the proxy does not buffer the response)", async () => {
    const socket = net.connect(proxy.httpPort!, "127.0.0.1")
    await new Promise((r) => socket.once("connect", r))
    socket.write("GET /down HTTP/1.1\r\nHost: bp.test\r\n\r\n")
    // read nothing for a while: only socket buffers may fill, never the whole 256 MiB
    socket.pause()
    await sleep(1500)
    const stalledAt = written
    expect(stalledAt).toBeGreaterThan(0)
    expect(stalledAt).toBeLessThan(64 * MiB)
    // then read everything: the rest flows
    let got = 0
    socket.on("data", (c: Buffer) => (got += c.length))
    socket.resume()
    for (let i = 0; i < 200 && written < TOTAL; i++) await sleep(50)
    expect(written).toBe(TOTAL)
    expect(got).toBeGreaterThan(stalledAt)
    socket.destroy()
  })

  it("an upstream that stops reading stalls the client's upload", async () => {
    pauseUpload = undefined
    let sent = 0
    let blockedAt = -1
    const req = http.request({
      host: "127.0.0.1",
      port: proxy.httpPort,
      method: "POST",
      path: "/up",
      headers: { host: "bp.test", "content-length": TOTAL },
      agent: false
    })
    req.on("error", () => undefined)
    const chunk = Buffer.alloc(MiB, 121)
    const done = new Promise<string>((resolve) =>
      req.on("response", (res) => {
        let t = ""
        res.on("data", (c: Buffer) => (t += c.toString()))
        res.on("end", () => resolve(t))
      })
    )
    const pump = () => {
      while (sent < TOTAL) {
        sent += chunk.length
        if (!req.write(chunk)) {
          if (blockedAt < 0 && pauseUpload !== undefined) blockedAt = sent
          return void req.once("drain", pump)
        }
      }
      req.end()
    }
    pump()
    await sleep(1500)
    // the upstream read ~4 MiB and stopped; the client could not push the whole body into the proxy
    expect(pauseUpload).toBeDefined()
    expect(sent).toBeLessThan(64 * MiB)
    pauseUpload!()
    expect(Number(await done)).toBe(TOTAL)
  })
})
