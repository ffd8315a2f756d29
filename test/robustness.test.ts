// Regression tests for review findings on the request path: no crash on a key Node refuses as a header, HTTP/2
// truncation and client aborts, no replay of a request the upstream may have worked on, every spelling of the
// `key` query parameter removed, latin1 header bytes relayed unchanged, strict Host ports.
import * as http from "node:http"
import * as http2 from "node:http2"
import * as net from "node:net"
import * as Effect from "effect/Effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import WebSocket from "ws"
import { parseConfig } from "../src/config/load.js"
import { h1 } from "./support/http.js"
import { logLines, type RunningProxy, startProxy } from "./support/proxy.js"

/** Requests the test upstream saw: method, url, headers, body length. */
const seen: Array<{ method: string; url: string; headers: http.IncomingHttpHeaders; bytes: number }> = []
let upstream: http.Server
let proxy: RunningProxy
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

beforeAll(async () => {
  upstream = http.createServer((req, res) => {
    let bytes = 0
    req.on("data", (c: Buffer) => (bytes += c.length))
    req.on("end", () => {
      seen.push({ method: req.method!, url: req.url!, headers: req.headers, bytes })
      if (req.url === "/truncated") {
        // promise 1000 bytes, send 10, then drop the connection
        res.writeHead(200, { "content-length": "1000" })
        res.write("x".repeat(10))
        setTimeout(() => req.socket.destroy(), 50)
        return
      }
      if (req.url === "/reason-custom") {
        res.writeHead(200, "Fine Thanks", { "content-length": "2" })
        res.end("ok")
        return
      }
      if (req.url === "/reason-nonascii") {
        // a reason phrase with a byte outside ASCII: not relayed, Node's own phrase is sent instead
        req.socket.end(
          Buffer.from("HTTP/1.1 200 D\xe9j\xe0 vu\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok", "latin1")
        )
        return
      }
      if (req.url === "/open-stream") {
        // one event, then the stream stays open (a long generation)
        res.writeHead(200, { "content-type": "text/event-stream" })
        res.write("data: first\n\n")
        return
      }
      if (req.url === "/crash-after-read") {
        setTimeout(() => req.socket.destroy(), 300)
        return
      }
      if (req.url === "/utf8") {
        res.writeHead(200, { "x-name": "caf\u00e9", "content-length": "2" }) // Node's HTTP/1.1 writer: UTF-8 bytes
        res.end("ok")
        return
      }
      if (req.url === "/latin1") {
        // a lone byte 0xE9 (obsolete but legal obs-text), written raw; the connection closes after it
        req.socket.end(
          Buffer.from(
            "HTTP/1.1 200 OK\r\nx-name: caf\xe9\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
            "latin1"
          )
        )
        return
      }
      res.end("ok")
    })
  })
  upstream.on("upgrade", (_req, socket: net.Socket) => socket.destroy())
  await new Promise<void>((r) => upstream.listen(0, "127.0.0.1", r))
  const port = (upstream.address() as net.AddressInfo).port
  proxy = await startProxy(`
http_port: 0
http_bind_address: 127.0.0.1
providers:
  - { type: openai, host: "r.test", endpoint: "127.0.0.1:${port}", tls: false, api_key: "sk-up" }
  - { type: gemini, host: "g.test", endpoint: "127.0.0.1:${port}", tls: false, api_key: "g-up" }
  - { type: openai, host: "slowkey.test", endpoint: "127.0.0.1:${port}", tls: false, api_key: "$(sleep 1; echo slow-key)" }
  - { type: openai, host: "badkey.test", endpoint: "127.0.0.1:${port}", tls: false, api_key: "$(printf 'sk-a\\\\001b')" }
  - { type: openai, host: "m.test:8080", endpoint: "127.0.0.1:${port}", tls: false, api_key: "sk-up" }
`)
})
afterAll(async () => {
  await proxy?.close()
  upstream?.close()
})

const h2session = () => http2.connect(`http://127.0.0.1:${proxy.httpPort}`)

describe("robustness", () => {
  it("the upstream's reason phrase reaches an HTTP/1.1 client when it is plain ASCII", async () => {
    const phrase = (path: string) =>
      new Promise<string>((resolve, reject) => {
        const r = http.get({ port: proxy.httpPort!, host: "127.0.0.1", path, headers: { host: "r.test" } }, (res) => {
          res.resume()
          resolve(res.statusMessage ?? "")
        })
        r.on("error", reject)
      })
    expect(await phrase("/reason-custom")).toBe("Fine Thanks")
    expect(await phrase("/plain")).toBe("OK")
    expect(await phrase("/reason-nonascii")).toBe("OK")
  })

  it("a client leaving mid-stream aborts the upstream and is logged as that, not as an upstream failure", async () => {
    const from = logLines.length
    const upstreamClosed = new Promise<void>((resolve) => {
      upstream.once("request", (req: http.IncomingMessage) => req.socket.once("close", () => resolve()))
    })
    const sock = net.connect(proxy.httpPort!, "127.0.0.1")
    sock.write("GET /open-stream HTTP/1.1\r\nhost: r.test\r\n\r\n")
    await new Promise<void>((resolve) => {
      let got = ""
      sock.on("data", (d: Buffer) => {
        got += d.toString("latin1")
        if (got.includes("data: first")) resolve()
      })
    })
    sock.destroy()
    await upstreamClosed // the proxy gave up the upstream request at once
    await sleep(50)
    const lines = logLines.slice(from)
    expect(lines.some((l) => l.includes("DEBUG client closed mid-response"))).toBe(true)
    expect(lines.some((l) => l.includes("upstream failed mid-response"))).toBe(false)
    // a real upstream failure mid-response is still a warning
    const r = await h1(proxy.httpPort!, { host: "r.test", path: "/truncated" }).catch(() => undefined)
    expect(r?.status === 200 && r.text.length === 1000).toBe(false)
    await sleep(100)
    expect(logLines.slice(from).some((l) => l.includes("WARN upstream failed mid-response"))).toBe(true)
  })

  it("a config key with a character no HTTP header may carry is refused at load", async () => {
    const r = await Effect.runPromise(
      Effect.either(
        parseConfig(
          `http_port: 1\nproviders:\n  - { type: openai, host: a, endpoint: b, api_key: "sk-\u2019quote" }\n`,
          "/tmp/x.yml",
          {}
        )
      )
    )
    expect(r._tag).toBe("Left")
  })

  it("a $(command) key Node refuses as a header gives 502 on HTTP and WebSocket, and the proxy lives on", async () => {
    const r = await h1(proxy.httpPort!, { host: "badkey.test", path: "/x" })
    expect(r.status).toBe(502)
    expect(r.text).toBe("upstream authentication failed")
    const status = await new Promise<number>((resolve) => {
      const ws = new WebSocket(`ws://127.0.0.1:${proxy.httpPort}/v1/realtime`, { headers: { host: "badkey.test" } })
      ws.on("unexpected-response", (_req, res) => resolve(res.statusCode ?? 0))
      ws.on("error", () => resolve(-1))
    })
    expect(status).toBe(502)
    expect((await h1(proxy.httpPort!, { host: "r.test", path: "/alive" })).status).toBe(200)
  })

  it("HTTP/2: a response the upstream cuts off is reset with an error, never ended cleanly", async () => {
    const s = h2session()
    try {
      const result = await new Promise<{ ended: boolean; rstCode: number }>((resolve) => {
        const st = s.request({ ":path": "/truncated", ":authority": "r.test" })
        let ended = false
        st.on("data", () => undefined)
        st.on("end", () => (ended = true))
        st.on("error", () => undefined)
        st.on("close", () => resolve({ ended, rstCode: st.rstCode ?? -1 }))
      })
      expect(result.rstCode).not.toBe(http2.constants.NGHTTP2_NO_ERROR)
    } finally {
      s.close()
    }
  })

  it("HTTP/2: a stream reset while the key command runs never reaches the upstream", async () => {
    const before = seen.length
    const s = h2session()
    const st = s.request({ ":path": "/never", ":authority": "slowkey.test" })
    st.on("error", () => undefined)
    await sleep(200)
    st.close(http2.constants.NGHTTP2_CANCEL)
    await sleep(1500)
    s.close()
    expect(seen.slice(before).filter((x) => x.url === "/never")).toHaveLength(0)
  })

  it("HTTP/2: an upload the client abandons is not sent upstream as a complete request", async () => {
    const before = seen.length
    const s = h2session()
    s.on("error", () => undefined)
    const st = s.request({ ":method": "POST", ":path": "/abandoned", ":authority": "r.test" })
    st.on("error", () => undefined)
    st.write("y".repeat(100))
    await sleep(100)
    s.destroy()
    await sleep(300)
    expect(seen.slice(before).filter((x) => x.url === "/abandoned")).toHaveLength(0)
  })

  it("a POST the upstream read before its connection died is not replayed", async () => {
    const before = seen.length
    const r = await h1(proxy.httpPort!, { host: "r.test", method: "POST", path: "/crash-after-read", body: "{}" })
    expect(r.status).toBe(502)
    expect(seen.slice(before).filter((x) => x.url === "/crash-after-read")).toHaveLength(1)
  })

  it("every spelling of the key query parameter is removed", async () => {
    for (const q of ["%6Bey=S1", "k%65y=S2", "%6B%65%79=S3", "KEY=S4", "Key=S5&a=1"]) {
      await h1(proxy.httpPort!, { host: "g.test", path: `/v1beta/models?${q}`, headers: [["x-goog-api-key", "x"]] })
      const url = seen.at(-1)!.url
      expect(url, q).not.toMatch(/S\d/)
    }
    expect(seen.at(-1)!.url).toBe("/v1beta/models?a=1")
  })

  const rawGet = (path: string) =>
    new Promise<Buffer>((resolve, reject) => {
      const sock = net.connect(proxy.httpPort!, "127.0.0.1", () =>
        sock.write(`GET ${path} HTTP/1.1\r\nHost: r.test\r\nConnection: close\r\n\r\n`)
      )
      const chunks: Array<Buffer> = []
      sock.on("data", (c: Buffer) => chunks.push(c))
      sock.on("end", () => resolve(Buffer.concat(chunks)))
      sock.on("error", reject)
    })
  const h2Header = async (path: string) => {
    const s = h2session()
    try {
      return await new Promise<Buffer>((resolve) => {
        const st = s.request({ ":path": path, ":authority": "r.test" })
        st.on("response", (h) => resolve(Buffer.from(String(h["x-name"]), "latin1")))
        st.resume()
      })
    } finally {
      s.close()
    }
  }

  it("UTF-8 header bytes pass unchanged to HTTP/1.1 and HTTP/2 clients", async () => {
    const utf8 = Buffer.from("caf\u00e9", "utf8")
    const raw = await rawGet("/utf8")
    expect(raw.includes(Buffer.concat([Buffer.from("x-name: "), utf8, Buffer.from("\r\n")]))).toBe(true)
    expect(await h2Header("/utf8")).toEqual(utf8)
  })

  it("a lone header byte above 0x7F (obs-text) passes unchanged to HTTP/1.1 and HTTP/2 clients", async () => {
    // it used to be an empty reply on HTTP/1.1 (the value was decoded as UTF-8 and refused by Node's writer)
    const raw = (await rawGet("/latin1")).toString("latin1")
    expect(raw).toMatch(/^HTTP\/1\.1 200/)
    expect(raw).toContain("\r\nx-name: caf\xe9\r\n")
    expect(raw.endsWith("ok")).toBe(true)
    expect(await h2Header("/latin1")).toEqual(Buffer.from("caf\xe9", "latin1"))
  })

  it("a Host port that is not plain digits is a 400", async () => {
    for (const host of ["m.test:0x50", "m.test:+8080", "m.test:8e3", "m.test:99999"]) {
      expect((await h1(proxy.httpPort!, { host, path: "/" })).status, host).toBe(400)
    }
    expect((await h1(proxy.httpPort!, { host: "m.test:8080", path: "/" })).status).toBe(200)
  })
})
