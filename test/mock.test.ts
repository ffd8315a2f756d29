// Tests for the mock LLM provider itself: official SDKs against it, the test endpoints,
// WebSocket echo/realtime/refusal, HTTP/2 over TLS (with HTTP/1.1 by ALPN) and h2c, and its command line.

import { spawn } from "node:child_process"
import { createHash } from "node:crypto"
import { mkdtemp, rm } from "node:fs/promises"
import http from "node:http"
import http2 from "node:http2"
import https from "node:https"
import net from "node:net"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import Anthropic from "@anthropic-ai/sdk"
import { GoogleGenAI } from "@google/genai"
import OpenAI from "openai"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import WebSocket from "ws"
import { REPLY } from "../src/mock/fixtures.js"
import { makeTestCerts, type TestCerts } from "./support/certs.js"
import { DEFAULT_KEYS, deterministicBytes, type MockProvider, startMockProvider } from "./support/mockProvider.js"

const sha256 = (b: Buffer | string): string => createHash("sha256").update(b).digest("hex")

let mock: MockProvider
let h2tls: MockProvider
let h2c: MockProvider
let certs: TestCerts
let certDir: string

beforeAll(async () => {
  certDir = await mkdtemp(join(tmpdir(), "openproxy-mock-"))
  ;[mock, certs] = await Promise.all([startMockProvider(), makeTestCerts(certDir)])
  ;[h2tls, h2c] = await Promise.all([
    startMockProvider({ tls: { cert: certs.cert, key: certs.key }, http2: true, host: "localhost" }),
    startMockProvider({ http2: true })
  ])
})

afterAll(async () => {
  await Promise.all([mock?.close(), h2tls?.close(), h2c?.close()])
  if (certDir) await rm(certDir, { recursive: true, force: true })
})

const last = () => mock.received[mock.received.length - 1]

/** Sends raw bytes on a fresh connection and returns everything until the server closes it. */
const rawHttp = (request: string): Promise<string> =>
  new Promise<string>((resolve, reject) => {
    const s = net.connect(mock.port, "127.0.0.1", () => s.write(request))
    const chunks: Buffer[] = []
    s.on("data", (c) => chunks.push(c))
    s.on("end", () => resolve(Buffer.concat(chunks).toString()))
    s.on("error", reject)
  })

const readAll = async (stream: AsyncIterable<Buffer | string>): Promise<Buffer> => {
  const chunks: Buffer[] = []
  for await (const c of stream) chunks.push(typeof c === "string" ? Buffer.from(c) : c)
  return Buffer.concat(chunks)
}

describe("OpenAI", () => {
  const client = () => new OpenAI({ apiKey: DEFAULT_KEYS.openai, baseURL: `${mock.url}/v1`, maxRetries: 0 })

  it("chat completion, plain and streamed with usage", async () => {
    const c = await client().chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "hi" }]
    })
    expect(c.choices[0].message.content).toBe(REPLY)
    expect(c.model).toBe("gpt-4o-mini")
    expect(last().auth).toBe("authorization")
    expect(last().bodyBytes).toBeGreaterThan(10)

    const stream = await client().chat.completions.create({
      model: "gpt-x",
      messages: [{ role: "user", content: "hi" }],
      stream: true,
      stream_options: { include_usage: true }
    })
    let text = ""
    let usage: number | undefined
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta?.content ?? ""
      if (chunk.usage) usage = chunk.usage.total_tokens
      expect(chunk.model).toBe("gpt-x")
    }
    expect(text).toBe(REPLY)
    expect(usage).toBe(16)
  })

  it("responses, plain and streamed", async () => {
    const r = await client().responses.create({ model: "gpt-4.1", input: "hi" })
    expect(r.output_text).toBe(REPLY)

    const stream = await client().responses.create({ model: "gpt-4.1", input: "hi", stream: true })
    const types: string[] = []
    let seq = -1
    for await (const ev of stream) {
      types.push(ev.type)
      expect(ev.sequence_number).toBe(seq + 1)
      seq = ev.sequence_number
    }
    expect(types[0]).toBe("response.created")
    expect(types).toContain("response.output_text.delta")
    expect(types.at(-1)).toBe("response.completed")

    const final = await client().responses.stream({ model: "gpt-4.1", input: "hi" }).finalResponse()
    expect(final.output_text).toBe(REPLY)
    expect(final.status).toBe("completed")
  })

  it("embeddings (base64 default and float) and models", async () => {
    const e = await client().embeddings.create({ model: "text-embedding-3-small", input: ["a", "b", "c"] })
    expect(e.data).toHaveLength(3)
    expect(e.data[0].embedding).toHaveLength(16)
    const f = await client().embeddings.create({
      model: "text-embedding-3-small",
      input: "a",
      dimensions: 8,
      encoding_format: "float"
    })
    expect(f.data[0].embedding).toHaveLength(8)
    expect(f.data[0].embedding[0]).toBeCloseTo(e.data[0].embedding[0], 5)

    const ids: string[] = []
    for await (const m of client().models.list()) ids.push(m.id)
    expect(ids).toContain("gpt-4o-mini")
    expect((await client().models.retrieve("gpt-foo")).id).toBe("gpt-foo")
  })

  it("wrong key is a 401 invalid_api_key", async () => {
    const bad = new OpenAI({ apiKey: "nope", baseURL: `${mock.url}/v1`, maxRetries: 0 })
    const err = await bad.chat.completions.create({ model: "m", messages: [] }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(OpenAI.AuthenticationError)
    expect((err as InstanceType<typeof OpenAI.AuthenticationError>).code).toBe("invalid_api_key")
  })

  it("a duplicated credential header is refused", async () => {
    const auth = `authorization: Bearer ${DEFAULT_KEYS.openai}\r\n`
    const head = await rawHttp(`GET /v1/models HTTP/1.1\r\nhost: x\r\n${auth}${auth}connection: close\r\n\r\n`)
    expect(head.startsWith("HTTP/1.1 401")).toBe(true)
  })
})

describe("Anthropic", () => {
  it("messages.create and messages.stream (this SDK sends Authorization: Bearer); x-api-key", async () => {
    const client = new Anthropic({ apiKey: DEFAULT_KEYS.anthropic, baseURL: mock.url, maxRetries: 0 })
    const m = await client.messages.create({
      model: "claude-haiku-4-5",
      max_tokens: 50,
      messages: [{ role: "user", content: "hi" }]
    })
    expect(m.content[0].type === "text" && m.content[0].text).toBe(REPLY)
    expect(last().auth).toBe("authorization")

    let text = ""
    const s = client.messages.stream({
      model: "claude-haiku-4-5",
      max_tokens: 50,
      messages: [{ role: "user", content: "hi" }]
    })
    s.on("text", (t) => {
      text += t
    })
    const final = await s.finalMessage()
    expect(text).toBe(REPLY)
    expect(final.usage.output_tokens).toBe(6)
    expect(final.stop_reason).toBe("end_turn")

    const viaHeader = new Anthropic({
      apiKey: null,
      baseURL: mock.url,
      maxRetries: 0,
      defaultHeaders: { "x-api-key": DEFAULT_KEYS.anthropic }
    })
    await viaHeader.messages.create({ model: "c", max_tokens: 5, messages: [{ role: "user", content: "hi" }] })
    expect(last().auth).toBe("x-api-key")

    const models = await client.models.list()
    expect(models.data[0].type).toBe("model")
  })

  it("wrong key is a 401 authentication_error", async () => {
    const bad = new Anthropic({ apiKey: "nope", baseURL: mock.url, maxRetries: 0 })
    const err = await bad.messages
      .create({ model: "c", max_tokens: 5, messages: [{ role: "user", content: "hi" }] })
      .catch((e: unknown) => e)
    expect(err).toBeInstanceOf(Anthropic.AuthenticationError)
  })
})

describe("Gemini", () => {
  it("generateContent and generateContentStream", async () => {
    const ai = new GoogleGenAI({ apiKey: DEFAULT_KEYS.gemini, httpOptions: { baseUrl: mock.url } })
    const r = await ai.models.generateContent({ model: "gemini-2.5-flash", contents: "hi" })
    expect(r.text).toBe(REPLY)
    expect(r.usageMetadata?.totalTokenCount).toBe(16)
    expect(last().auth).toBe("x-goog-api-key")
    // @google/genai 3 calls the v1 API by default (2.x called v1beta); the mock serves both
    expect(last().path).toBe("/v1/models/gemini-2.5-flash:generateContent")

    let text = ""
    for await (const chunk of await ai.models.generateContentStream({ model: "gemini-2.5-flash", contents: "hi" })) {
      text += chunk.text ?? ""
    }
    expect(text).toBe(REPLY)
    expect(last().path).toContain(":streamGenerateContent?alt=sse")
  })

  it("?key= auth, /v1/ paths and wrong keys", async () => {
    const ok = await fetch(`${mock.url}/v1/models/gemini-2.5-pro:generateContent?key=${DEFAULT_KEYS.gemini}`, {
      method: "POST",
      body: JSON.stringify({ contents: [{ parts: [{ text: "hi" }] }] })
    })
    expect(ok.status).toBe(200)
    expect(last().auth).toBe("query")
    const body = (await ok.json()) as { candidates: { content: { parts: { text: string }[] } }[] }
    expect(body.candidates[0].content.parts[0].text).toBe(REPLY)

    const bad = await fetch(`${mock.url}/v1beta/models/g:generateContent?key=nope`, { method: "POST", body: "{}" })
    expect(bad.status).toBe(401)
    expect(await bad.json()).toEqual({ error: { code: 401, message: "API key not valid", status: "UNAUTHENTICATED" } })

    const ai = new GoogleGenAI({ apiKey: "nope", httpOptions: { baseUrl: mock.url } })
    const err = await ai.models.generateContent({ model: "g", contents: "hi" }).catch((e: unknown) => e)
    expect((err as { status?: number }).status).toBe(401)
  })
})

describe("test endpoints", () => {
  it("__upload, __download and __echo keep bytes intact", async () => {
    const data = deterministicBytes(3 * 1024 * 1024 + 3, 7)
    const up = await fetch(`${mock.url}/__upload`, { method: "POST", body: data })
    expect(await up.json()).toEqual({ bytes: data.length, sha256: sha256(data) })
    expect(last().bodySha256).toBe(sha256(data))
    expect(last().bodyBytes).toBe(data.length)

    const down = await fetch(`${mock.url}/__download?bytes=${1024 * 1024 + 5}&seed=9`)
    expect(down.headers.get("content-length")).toBe(String(1024 * 1024 + 5))
    const got = Buffer.from(await down.arrayBuffer())
    expect(sha256(got)).toBe(sha256(deterministicBytes(1024 * 1024 + 5, 9)))
    expect(deterministicBytes(100, 9).equals(got.subarray(0, 100))).toBe(true)

    const echo = await fetch(`${mock.url}/__echo`, {
      method: "POST",
      body: data,
      headers: { "content-type": "application/x-test" }
    })
    expect(echo.headers.get("content-type")).toBe("application/x-test")
    expect(sha256(Buffer.from(await echo.arrayBuffer()))).toBe(sha256(data))
  })

  it("__sse waits at the gate after the first event", async () => {
    const res = await fetch(`${mock.url}/__sse?events=4&interval_ms=5&gate=g1`)
    const reader = res.body!.getReader()
    const decoder = new TextDecoder()
    let text = ""
    while (!text.includes("\n\n")) text += decoder.decode((await reader.read()).value)
    expect(text).toBe('data: {"i":0}\n\n')
    const pending = reader.read()
    const early = await Promise.race([pending.then(() => "data"), new Promise((r) => setTimeout(r, 150, "wait"))])
    expect(early).toBe("wait")
    mock.release("g1")
    for (let next = pending; ; next = reader.read()) {
      const { value, done } = await next
      if (done) break
      text += decoder.decode(value)
    }
    expect(text).toBe([0, 1, 2, 3].map((i) => `data: {"i":${i}}\n\n`).join(""))

    // A release before the wait (here over HTTP) is kept for the next waiter.
    await fetch(`${mock.url}/__release?gate=g2`, { method: "POST" })
    const res2 = await fetch(`${mock.url}/__sse?events=2&gate=g2`)
    expect(await res2.text()).toBe('data: {"i":0}\n\ndata: {"i":1}\n\n')
  })

  it("__status framing, __gzip raw bytes, __headers, health, 404", async () => {
    const r204 = await fetch(`${mock.url}/__status?code=204`)
    expect(r204.status).toBe(204)
    expect(await r204.text()).toBe("")
    const r304 = await fetch(`${mock.url}/__status?code=304`)
    expect(r304.status).toBe(304)
    const head = await fetch(`${mock.url}/__status?code=404`, { method: "HEAD" })
    expect(head.status).toBe(404)
    expect(await head.text()).toBe("")
    const r500 = await fetch(`${mock.url}/__status?code=500`)
    expect(await r500.text()).toBe("status 500\n")

    const raw = await new Promise<{ headers: http.IncomingHttpHeaders; body: Buffer }>((resolve, reject) => {
      http
        .get(`${mock.url}/__gzip`, (res) => {
          readAll(res).then((body) => resolve({ headers: res.headers, body }), reject)
        })
        .on("error", reject)
    })
    expect(raw.headers["content-encoding"]).toBe("gzip")
    expect(sha256(raw.body)).toBe(raw.headers["x-raw-sha256"])

    const h = await fetch(`${mock.url}/__headers?x=1`, { headers: { "x-custom": "v" } })
    const hj = (await h.json()) as { path: string; rawHeaders: string[] }
    expect(hj.path).toBe("/__headers?x=1")
    expect(hj.rawHeaders).toContain("x-custom")

    expect(await (await fetch(`${mock.url}/health`)).text()).toBe("ok")
    expect((await fetch(`${mock.url}/__health_fail`)).status).toBe(503)
    expect((await fetch(`${mock.url}/nope`)).status).toBe(404)
  })

  it("__close_delimited ends with the connection; __trailers on HTTP/1.1; __hang is recorded", async () => {
    const raw = await rawHttp("GET /__close_delimited HTTP/1.1\r\nHost: x\r\n\r\n")
    const [head, body] = raw.split("\r\n\r\n")
    expect(head.toLowerCase()).not.toContain("content-length")
    expect(head.toLowerCase()).not.toContain("transfer-encoding")
    expect(body.startsWith("close-delimited line 0\n")).toBe(true)
    expect(body.endsWith("close-delimited line 199\n")).toBe(true)

    const tr = await new Promise<{ body: Buffer; trailers: NodeJS.Dict<string> }>((resolve, reject) => {
      http
        .get(`${mock.url}/__trailers`, (res) => {
          readAll(res).then((body) => resolve({ body, trailers: res.trailers }), reject)
        })
        .on("error", reject)
    })
    expect(tr.trailers["x-checksum"]).toBe(sha256(tr.body))

    mock.reset()
    const hang = await fetch(`${mock.url}/__hang`, { signal: AbortSignal.timeout(100) }).catch((e: unknown) => e)
    expect(hang).toBeInstanceOf(Error)
    expect(mock.received.map((r) => r.path)).toEqual(["/__hang"])
  })
})

const wsOpen = (ws: WebSocket): Promise<void> =>
  new Promise((resolve, reject) => {
    ws.once("open", () => resolve())
    ws.once("error", reject)
  })
const wsNext = (ws: WebSocket): Promise<{ data: Buffer; isBinary: boolean }> =>
  new Promise((resolve) => ws.once("message", (data: Buffer, isBinary: boolean) => resolve({ data, isBinary })))
const wsRefusal = (ws: WebSocket): Promise<{ status: number; body: string }> =>
  new Promise((resolve, reject) => {
    ws.on("error", noopErr)
    ws.once("unexpected-response", (_req, res) => {
      readAll(res).then((b) => resolve({ status: res.statusCode ?? 0, body: b.toString() }), reject)
    })
  })
const noopErr = (): void => {}

describe("WebSocket", () => {
  it("/ws echoes text and binary byte for byte, negotiates the subprotocol and echoes the close", async () => {
    const ws = new WebSocket(`${mock.url.replace("http", "ws")}/ws`, ["openai-insecure-api-key.x", "chat", "other"])
    await wsOpen(ws)
    expect(ws.protocol).toBe("chat")
    ws.send("héllo")
    const t = await wsNext(ws)
    expect(t.isBinary).toBe(false)
    expect(t.data.toString()).toBe("héllo")
    const big = deterministicBytes(16 * 1024 * 1024, 1)
    ws.send(big)
    const b = await wsNext(ws)
    expect(b.isBinary).toBe(true)
    expect(sha256(b.data)).toBe(sha256(big))
    const closed = new Promise<[number, string]>((r) =>
      ws.once("close", (code, reason) => r([code, reason.toString()]))
    )
    ws.close(4001, "bye")
    expect(await closed).toEqual([4001, "bye"])
  })

  it("/v1/realtime: bearer or subprotocol key, session.created then echo; refusals", async () => {
    const base = mock.url.replace("http", "ws")
    const ws = new WebSocket(`${base}/v1/realtime?model=gpt-realtime-mini`, {
      headers: { Authorization: `Bearer ${DEFAULT_KEYS.openai}` }
    })
    const first = wsNext(ws)
    await wsOpen(ws)
    const created = JSON.parse((await first).data.toString())
    expect(created.type).toBe("session.created")
    expect(created.session.model).toBe("gpt-realtime-mini")
    ws.send(JSON.stringify({ type: "response.create" }))
    expect(JSON.parse((await wsNext(ws)).data.toString())).toEqual({
      type: "echo",
      event: { type: "response.create" }
    })
    ws.close()
    expect(last().auth).toBe("authorization")
    expect(last().path).toBe("/v1/realtime?model=gpt-realtime-mini")

    const ws2 = new WebSocket(`${base}/v1/realtime`, ["realtime", `openai-insecure-api-key.${DEFAULT_KEYS.openai}`])
    const first2 = wsNext(ws2)
    await wsOpen(ws2)
    expect(ws2.protocol).toBe("realtime")
    expect(JSON.parse((await first2).data.toString()).type).toBe("session.created")
    ws2.close()

    const bad = await wsRefusal(new WebSocket(`${base}/v1/realtime`, { headers: { Authorization: "Bearer nope" } }))
    expect(bad.status).toBe(401)
    expect(bad.body).toContain("invalid_api_key")
    const refused = await wsRefusal(new WebSocket(`${base}/ws?refuse=403`))
    expect(refused).toEqual({ status: 403, body: "upgrade refused with 403\n" })
  })
})

type H2Result = { headers: http2.IncomingHttpHeaders; body: Buffer; trailers: http2.IncomingHttpHeaders }

const h2req = (session: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders, body?: Buffer) =>
  new Promise<H2Result>((resolve, reject) => {
    const req = session.request(headers, { endStream: body === undefined })
    let resHeaders: http2.IncomingHttpHeaders = {}
    let trailers: http2.IncomingHttpHeaders = {}
    req.on("response", (h) => {
      resHeaders = h
    })
    req.on("trailers", (t) => {
      trailers = t
    })
    req.on("error", reject)
    readAll(req).then((b) => resolve({ headers: resHeaders, body: b, trailers }), reject)
    if (body !== undefined) req.end(body)
  })

describe("HTTP/2", () => {
  it("h2 over TLS (and HTTP/1.1 by ALPN, and wss) on the same port", async () => {
    expect(h2tls.url.startsWith("https://localhost:")).toBe(true)
    const session = http2.connect(h2tls.url, { ca: certs.caCert })
    try {
      const chat = await h2req(
        session,
        { ":method": "POST", ":path": "/v1/chat/completions", authorization: `Bearer ${DEFAULT_KEYS.openai}` },
        Buffer.from('{"model":"m","messages":[]}')
      )
      expect(chat.headers[":status"]).toBe(200)
      expect(JSON.parse(chat.body.toString()).choices[0].message.content).toBe(REPLY)
      expect(h2tls.received.at(-1)?.httpVersion).toBe("2.0")

      const tr = await h2req(session, { ":path": "/__trailers" })
      expect(tr.trailers["x-checksum"]).toBe(sha256(tr.body))

      const up = deterministicBytes(2 * 1024 * 1024, 5)
      const echo = await h2req(session, { ":method": "POST", ":path": "/__echo" }, up)
      expect(sha256(echo.body)).toBe(sha256(up))

      const s204 = await h2req(session, { ":path": "/__status?code=204" })
      expect(s204.headers[":status"]).toBe(204)
      expect(s204.body.length).toBe(0)
    } finally {
      session.close()
    }

    const v = await new Promise<string>((resolve, reject) => {
      https
        .get(`${h2tls.url}/health`, { ca: certs.caCert }, (res) => {
          res.resume()
          resolve(res.httpVersion)
        })
        .on("error", reject)
    })
    expect(v).toBe("1.1")

    const ws = new WebSocket(`${h2tls.url.replace("https", "wss")}/ws`, { ca: certs.caCert })
    await wsOpen(ws)
    ws.send("over tls")
    expect((await wsNext(ws)).data.toString()).toBe("over tls")
    ws.close()
  })

  it("h2c prior knowledge", async () => {
    const session = http2.connect(h2c.url)
    try {
      const health = await h2req(session, { ":path": "/health" })
      expect(health.body.toString()).toBe("ok")
      const down = await h2req(session, { ":path": "/__download?bytes=300000&seed=2" })
      expect(sha256(down.body)).toBe(sha256(deterministicBytes(300000, 2)))
      const cd = await h2req(session, { ":path": "/__close_delimited" })
      expect(cd.body.toString().startsWith("close-delimited line 0\n")).toBe(true)
    } finally {
      session.close()
    }
  })

  it("close() ends open sessions, hanging requests and websockets", async () => {
    const m = await startMockProvider({ http2: true })
    const session = http2.connect(m.url)
    session.on("error", noopErr)
    const hung = h2req(session, { ":path": "/__hang" }).catch((e: unknown) => e)
    await new Promise((r) => setTimeout(r, 50))
    expect(m.received.map((r) => r.path)).toEqual(["/__hang"])
    await m.close()
    await hung
    expect(session.closed || session.destroyed).toBe(true)
  })
})

describe("the mock's command line (dist/mock.js)", () => {
  const MOCK = resolve(import.meta.dirname, "../dist/mock.js")
  const runMock = (args: ReadonlyArray<string>) =>
    new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
      const c = spawn(process.execPath, [MOCK, ...args], { stdio: ["ignore", "pipe", "pipe"] })
      let stdout = ""
      let stderr = ""
      c.stdout.on("data", (b: Buffer) => (stdout += b.toString()))
      c.stderr.on("data", (b: Buffer) => (stderr += b.toString()))
      c.once("error", reject)
      c.once("exit", (code) => resolve({ code, stdout, stderr }))
    })
  it("--help prints the usage and exits 0", async () => {
    const r = await runMock(["--help"])
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/^Usage: node dist\/mock\.js/)
    for (const o of ["--port", "--host", "--tls-cert", "--tls-key", "--http2", "--openai-key", "--record"])
      expect(r.stdout).toContain(o)
  })
  it("an unknown option is one line on stderr and exit 2, not a stack trace", async () => {
    const r = await runMock(["--bogus"])
    expect(r.code).toBe(2)
    expect(r.stderr.trim().split("\n")).toHaveLength(1)
    expect(r.stderr).toMatch(/^mock: .*--bogus.*\(see --help\)/)
    expect(r.stdout).toBe("")
  })
})
