// Drop-in for OpenProxy 2.13 (issue 12, SPEC §3.3 and §4) over real sockets: the upstream is a raw TCP server
// that records the request head byte for byte, so header spelling, the merged `anthropic-beta` value and which
// header carries the provider key are asserted as they reach the socket. Selection with and without a path
// prefix on one host is checked on HTTP/1.1, HTTP/2 (h2c) and WebSocket (HTTP/1.1 upgrade and RFC 8441).
import { createHash } from "node:crypto"
import * as http2 from "node:http2"
import * as net from "node:net"
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest"
import { h1, h2req } from "./support/http.js"
import { type RunningProxy, startProxy } from "./support/proxy.js"
import { expectOpen, h2WebSocket, isOpen, wsConnect } from "./support/wsClient.js"

interface Seen {
  /** The request head exactly as it arrived (latin1: one character per byte). */
  readonly head: string
  readonly path: string
}

const seen: Array<Seen> = []
const sockets = new Set<net.Socket>()
let upstream: net.Server
let closedPort: number
let proxy: RunningProxy

/** Answers `200 ok` to each request (bodies by Content-Length) and `101` to a WebSocket handshake. */
const onUpstream = (s: net.Socket): void => {
  sockets.add(s)
  s.on("close", () => sockets.delete(s))
  s.on("error", () => undefined)
  let buf = Buffer.alloc(0)
  const onData = (c: Buffer): void => {
    buf = Buffer.concat([buf, c])
    for (;;) {
      const end = buf.indexOf("\r\n\r\n")
      if (end === -1) return
      const head = buf.subarray(0, end + 4).toString("latin1")
      const length = /\r\ncontent-length:\s*(\d+)/i.exec(head)
      const total = end + 4 + (length === null ? 0 : Number(length[1]))
      if (buf.length < total) return
      buf = buf.subarray(total)
      const target = head.slice(head.indexOf(" ") + 1, head.indexOf(" HTTP/1.1\r\n"))
      seen.push({ head, path: target })
      const key = /\r\nsec-websocket-key:\s*(\S+)/i.exec(head)
      if (key !== null) {
        const accept = createHash("sha1").update(`${key[1]}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest("base64")
        s.removeListener("data", onData)
        s.write(
          `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`
        )
        return
      }
      s.write("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok")
    }
  }
  s.on("data", onData)
}

const listen = (server: net.Server): Promise<number> =>
  new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve((server.address() as net.AddressInfo).port)))

beforeAll(async () => {
  upstream = net.createServer(onUpstream)
  const port = await listen(upstream)
  const spare = net.createServer()
  closedPort = await listen(spare)
  await new Promise<void>((r) => spare.close(() => r()))
  const ep = `endpoint: "127.0.0.1:${port}", tls: false`
  proxy = await startProxy(`
http_port: 0
http_bind_address: 127.0.0.1
providers:
  # OpenProxy's rewrite-auth scenario: a prefixed and an un-prefixed provider on one host, one key each
  - { type: openai, host: "rewrite-auth.local/v1", ${ep}, api_key: sk-up-prefixed, auth_keys: ["key-1"] }
  - { type: openai, host: "rewrite-auth.local", ${ep}, api_key: sk-up-plain, auth_keys: ["key-2"] }
  # both accept key-3; the prefixed one cannot be reached: fail-over reaches the other with the path unchanged
  - { type: openai, host: "failover.local/v1", endpoint: "127.0.0.1:${closedPort}", tls: false, api_key: sk-up-down, auth_keys: ["key-3"] }
  - { type: openai, host: "failover.local", ${ep}, api_key: sk-up-alive, auth_keys: ["key-3"] }
  - { type: openai, host: "openai.test", ${ep}, api_key: sk-up-openai, auth_keys: ["ck"] }
  - { type: anthropic, host: "anthropic.test", ${ep}, api_key: sk-up-anthropic, auth_keys: ["ck"] }
  - { type: anthropic, host: "anthropic-cmd.test", ${ep}, api_key: "$(printf sk-up-command)", auth_keys: ["ck"] }
  - { type: gemini, host: "gemini.test", ${ep}, api_key: sk-up-gemini, auth_keys: ["ck"] }
`)
})
afterAll(async () => {
  await proxy?.close()
  for (const s of sockets) s.destroy()
  upstream?.close()
})
beforeEach(() => {
  seen.length = 0
})

/** The last request's header lines, as sent (request line removed). */
const lines = (): Array<string> => {
  const last = seen.at(-1)
  if (last === undefined) throw new Error("nothing reached the upstream")
  return last.head.split("\r\n").slice(1, -2)
}

/** The credential header lines of the last request, byte for byte. */
const credentials = (): Array<string> =>
  lines().filter((l) => /^(authorization|proxy-authorization|x-api-key|x-goog-api-key):/i.test(l))

const beta = (): Array<string> => lines().filter((l) => /^anthropic-beta:/i.test(l))

const ws = (path: string, host: string, headers: Record<string, string>) =>
  wsConnect(`ws://127.0.0.1:${proxy.httpPort}${path}`, { host, headers })

describe("selection: the key before the longest prefix (SPEC §3.3)", () => {
  const cases = [
    // [key, request path, upstream path, provider key]
    ["key-2", "/v1/test", "/v1/test", "sk-up-plain"],
    ["key-1", "/v1/test", "/test", "sk-up-prefixed"],
    ["key-2", "/other?x=1", "/other?x=1", "sk-up-plain"]
  ] as const

  it("HTTP/1.1: each key reaches the provider that accepts it; the un-prefixed one gets the path unchanged", async () => {
    for (const [key, path, upPath, upKey] of cases) {
      const r = await h1(proxy.httpPort!, {
        host: "rewrite-auth.local",
        path,
        headers: [["Authorization", `Bearer ${key}`]]
      })
      expect([key, path, r.status]).toEqual([key, path, 200])
      expect(seen.at(-1)!.path).toBe(upPath)
      expect(credentials()).toEqual([`Authorization: Bearer ${upKey}`])
    }
    const wrong = await h1(proxy.httpPort!, {
      host: "rewrite-auth.local",
      path: "/v1/test",
      headers: [["Authorization", "Bearer key-9"]]
    })
    expect([wrong.status, wrong.text]).toEqual([401, "authentication failed"])
    // key-1's provider does not cover /other: no provider that matches accepts it
    const outside = await h1(proxy.httpPort!, {
      host: "rewrite-auth.local",
      path: "/other",
      headers: [["Authorization", "Bearer key-1"]]
    })
    expect(outside.status).toBe(401)
  })

  it("HTTP/2 (h2c): the same outcome", async () => {
    const session = http2.connect(`http://127.0.0.1:${proxy.httpPort}`)
    try {
      for (const [key, path, upPath, upKey] of cases) {
        const r = await h2req(session, {
          authority: "rewrite-auth.local",
          path,
          headers: { authorization: `Bearer ${key}` }
        })
        expect([key, path, r.status]).toEqual([key, path, 200])
        expect(seen.at(-1)!.path).toBe(upPath)
        expect(credentials()).toEqual([`Authorization: Bearer ${upKey}`])
      }
      const wrong = await h2req(session, {
        authority: "rewrite-auth.local",
        path: "/v1/test",
        headers: { authorization: "Bearer key-9" }
      })
      expect(wrong.status).toBe(401)
    } finally {
      session.close()
    }
  })

  it("WebSocket over HTTP/1.1 and HTTP/2 extended CONNECT: the same outcome", async () => {
    for (const [key, path, upPath, upKey] of cases) {
      const sock = expectOpen(await ws(path, "rewrite-auth.local", { Authorization: `Bearer ${key}` }))
      sock.terminate()
      expect(seen.at(-1)!.path).toBe(upPath)
      expect(credentials()).toEqual([`Authorization: Bearer ${upKey}`])
    }
    const refused = await ws("/v1/test", "rewrite-auth.local", { Authorization: "Bearer key-9" })
    expect(isOpen(refused) ? 101 : refused.status).toBe(401)

    const session = http2.connect(`http://127.0.0.1:${proxy.httpPort}`)
    try {
      for (const [key, path, upPath, upKey] of cases) {
        const r = await h2WebSocket(session, {
          authority: "rewrite-auth.local",
          path,
          scheme: "http",
          headers: { authorization: `Bearer ${key}` }
        })
        expect([key, path, r.status]).toEqual([key, path, 200])
        r.stream.close()
        expect(seen.at(-1)!.path).toBe(upPath)
        expect(credentials()).toEqual([`Authorization: Bearer ${upKey}`])
      }
    } finally {
      session.destroy()
    }
  })

  it("fail-over from an unreachable prefixed provider sends the un-prefixed one the path unchanged", async () => {
    const r = await h1(proxy.httpPort!, {
      host: "failover.local",
      path: "/v1/chat?x=1",
      headers: [["Authorization", "Bearer key-3"]]
    })
    expect(r.status).toBe(200)
    expect(seen.map((s) => s.path)).toEqual(["/v1/chat?x=1"])
    expect(credentials()).toEqual(["Authorization: Bearer sk-up-alive"])
  })
})

describe("credential headers as OpenProxy writes them (SPEC §4)", () => {
  it("openai `Authorization`, anthropic `X-API-Key`, gemini `x-goog-api-key`, on HTTP/1.1 and HTTP/2 clients", async () => {
    const expected = [
      ["openai.test", ["Authorization", "Bearer ck"], "Authorization: Bearer sk-up-openai"],
      ["anthropic.test", ["x-api-key", "ck"], "X-API-Key: sk-up-anthropic"],
      ["gemini.test", ["x-goog-api-key", "ck"], "x-goog-api-key: sk-up-gemini"]
    ] as const
    for (const [host, [name, value], line] of expected) {
      const r = await h1(proxy.httpPort!, { host, path: "/v1/x", headers: [[name, value]] })
      expect([host, r.status]).toEqual([host, 200])
      expect(credentials()).toEqual([line])
    }
    const session = http2.connect(`http://127.0.0.1:${proxy.httpPort}`)
    try {
      for (const [host, [name, value], line] of expected) {
        const r = await h2req(session, { authority: host, path: "/v1/x", headers: { [name.toLowerCase()]: value } })
        expect([host, r.status]).toEqual([host, 200])
        expect(credentials()).toEqual([line])
      }
    } finally {
      session.close()
    }
  })

  it("the same spelling on WebSocket handshakes", async () => {
    const expected = [
      ["openai.test", { Authorization: "Bearer ck" }, "Authorization: Bearer sk-up-openai"],
      ["anthropic.test", { "x-api-key": "ck" }, "X-API-Key: sk-up-anthropic"],
      ["gemini.test", { "x-goog-api-key": "ck" }, "x-goog-api-key: sk-up-gemini"]
    ] as const
    for (const [host, headers, line] of expected) {
      const sock = expectOpen(await ws("/v1/realtime", host, { ...headers }))
      sock.terminate()
      expect(credentials()).toEqual([line])
    }
  })
})

describe("anthropic: the provider key in the client's form (SPEC §4)", () => {
  it("x-api-key → X-API-Key; Bearer in Authorization or Proxy-Authorization → Authorization: Bearer", async () => {
    const forms = [
      [[["x-api-key", "ck"]], "X-API-Key: sk-up-anthropic"],
      [[["Authorization", "Bearer ck"]], "Authorization: Bearer sk-up-anthropic"],
      [[["Proxy-Authorization", "Bearer ck"]], "Authorization: Bearer sk-up-anthropic"],
      // x-api-key is read first: its form wins when both are sent
      [
        [
          ["Authorization", "Bearer other"],
          ["X-Api-Key", "ck"]
        ],
        "X-API-Key: sk-up-anthropic"
      ]
    ] as const
    for (const [headers, line] of forms) {
      const r = await h1(proxy.httpPort!, { host: "anthropic.test", path: "/v1/messages", headers })
      expect([headers, r.status]).toEqual([headers, 200])
      expect(credentials()).toEqual([line])
      expect(beta()).toEqual([])
    }
    const sock = expectOpen(await ws("/v1/x", "anthropic.test", { Authorization: "Bearer ck" }))
    sock.terminate()
    expect(credentials()).toEqual(["Authorization: Bearer sk-up-anthropic"])
  })

  it("a $(command) key is always Bearer with the OAuth beta, merged values joined with ', '", async () => {
    const r = await h1(proxy.httpPort!, {
      host: "anthropic-cmd.test",
      path: "/v1/messages",
      headers: [
        ["x-api-key", "ck"],
        ["anthropic-beta", "streaming-2024-01-01,tools-2024-04-04"]
      ]
    })
    expect(r.status).toBe(200)
    expect(credentials()).toEqual(["Authorization: Bearer sk-up-command"])
    expect(beta()).toEqual(["anthropic-beta: streaming-2024-01-01, tools-2024-04-04, oauth-2025-04-20"])
    // two client headers (one already carrying the flag) become one, the flag once and last
    const two = await h1(proxy.httpPort!, {
      host: "anthropic-cmd.test",
      path: "/v1/messages",
      headers: [
        ["Authorization", "Bearer ck"],
        ["anthropic-beta", "oauth-2025-04-20, streaming-2024-01-01"],
        ["Anthropic-Beta", "tools-2024-04-04"]
      ]
    })
    expect(two.status).toBe(200)
    expect(credentials()).toEqual(["Authorization: Bearer sk-up-command"])
    expect(beta()).toEqual(["anthropic-beta: streaming-2024-01-01, tools-2024-04-04, oauth-2025-04-20"])
    // without a client value: the flag alone
    await h1(proxy.httpPort!, { host: "anthropic-cmd.test", path: "/v1/messages", headers: [["x-api-key", "ck"]] })
    expect(beta()).toEqual(["anthropic-beta: oauth-2025-04-20"])
  })
})

describe("deliberate differences (README)", () => {
  it("a small chunked request body goes upstream whole, with Content-Length and no Transfer-Encoding", async () => {
    const body = '{"model":"m","input":"hello"}'
    const reply = await new Promise<string>((resolve, reject) => {
      const s = net.connect(proxy.httpPort!, "127.0.0.1")
      let got = ""
      s.on("data", (c: Buffer) => {
        got += c.toString("latin1")
        if (got.endsWith("\r\n\r\nok")) {
          s.destroy()
          resolve(got)
        }
      })
      s.on("error", reject)
      const half = body.length >> 1
      const chunk = (t: string) => `${t.length.toString(16)}\r\n${t}\r\n`
      s.write(
        "POST /v1/responses HTTP/1.1\r\nHost: openai.test\r\nAuthorization: Bearer ck\r\n" +
          `Transfer-Encoding: chunked\r\n\r\n${chunk(body.slice(0, half))}${chunk(body.slice(half))}0\r\n\r\n`
      )
    })
    expect(reply.startsWith("HTTP/1.1 200 ")).toBe(true)
    const head = lines()
    expect(head.filter((l) => /^content-length:/i.test(l)).map((l) => l.toLowerCase())).toEqual([
      `content-length: ${body.length}`
    ])
    expect(head.filter((l) => /^transfer-encoding:/i.test(l))).toEqual([])
  })
})
