// Tests of the mock provider's failures on command (src/mock/faults.ts) over real sockets: per-key 429 with
// Retry-After and rate-limit headers (which the retry policy reads back as a cool-down), 503 once then 200, 529
// overloaded_error in Anthropic's shape, Gemini's RESOURCE_EXHAUSTED, resets before the head, stalls after the head,
// streams cut after their first event (HTTP/1.1 and HTTP/2), per-key counts, the /__faults and /__counts control
// endpoints, WebSocket handshakes, and the `--fail` option of the built CLI (dist/mock.js).
import { type ChildProcess, spawn } from "node:child_process"
import http from "node:http"
import http2 from "node:http2"
import path from "node:path"
import OpenAI from "openai"
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest"
import WebSocket from "ws"
import { cooldownOf } from "../src/domain/retry/index.js"
import { DEFAULT_KEYS, type MockProvider, startMockProvider } from "./support/mockProvider.js"

const KEY_A = "sk-mock-a"
const KEY_B = "sk-mock-b"
const CHAT = JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] })
const CHAT_STREAM = JSON.stringify({ model: "gpt-4o-mini", stream: true, messages: [{ role: "user", content: "hi" }] })

interface Reply {
  status: number
  headers: http.IncomingHttpHeaders
  rawHeaders: Array<string>
  text: string
}

/** One HTTP/1.1 request on a fresh connection. */
const request = (
  port: number,
  p: string,
  o: { method?: string; headers?: Record<string, string>; body?: string } = {}
): Promise<Reply> =>
  new Promise((resolve, reject) => {
    const req = http.request({
      host: "127.0.0.1",
      port,
      path: p,
      method: o.method ?? "POST",
      headers: o.headers,
      agent: false
    })
    req.on("response", (res) => {
      const chunks: Array<Buffer> = []
      res.on("data", (c: Buffer) => chunks.push(c))
      res.on("end", () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          rawHeaders: res.rawHeaders,
          text: Buffer.concat(chunks).toString()
        })
      )
      res.on("error", reject)
    })
    req.on("error", reject)
    req.end(o.body)
  })

const chat = (port: number, key: string, body = CHAT) =>
  request(port, "/v1/chat/completions", {
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body
  })

/** A streamed HTTP/1.1 request: when the head and each chunk arrived, and how it ended. */
const streamed = (port: number, key: string) =>
  new Promise<{ headAt: number; chunks: Array<{ at: number; text: string }>; complete: boolean; error: boolean }>(
    (resolve, reject) => {
      const req = http.request({
        host: "127.0.0.1",
        port,
        path: "/v1/chat/completions",
        method: "POST",
        headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
        agent: false
      })
      req.on("response", (res) => {
        const headAt = performance.now()
        const chunks: Array<{ at: number; text: string }> = []
        let error = false
        res.on("data", (c: Buffer) => chunks.push({ at: performance.now(), text: c.toString() }))
        res.on("error", () => {
          error = true
        })
        res.on("close", () => resolve({ headAt, chunks, complete: res.complete, error }))
      })
      req.on("error", reject)
      req.end(CHAT_STREAM)
    }
  )

let mock: MockProvider

beforeAll(async () => {
  mock = await startMockProvider({ keys: { openai: [KEY_A, KEY_B] } })
})

afterAll(async () => {
  await mock?.close()
})

afterEach(() => mock.reset())

describe("status faults in the provider's shape", () => {
  it("429 with Retry-After: 2 for one key, 200 for the other; counted per key; read back as a 2 s cool-down", async () => {
    mock.fail({ key: KEY_A, status: 429, retryAfter: 2 })
    const a = await chat(mock.port, KEY_A)
    const b = await chat(mock.port, KEY_B)
    expect(a.status).toBe(429)
    expect(a.headers["retry-after"]).toBe("2")
    expect(a.headers["x-ratelimit-reset-requests"]).toBe("2s")
    expect(a.headers["x-ratelimit-remaining-requests"]).toBe("0")
    expect(JSON.parse(a.text).error).toMatchObject({ code: "rate_limit_exceeded", type: "requests" })
    expect(cooldownOf(a.status, a.rawHeaders, Date.now(), 60_000)).toEqual({ ms: 2000, source: "retry-after" })
    expect(b.status).toBe(200)
    expect(JSON.parse(b.text).object).toBe("chat.completion")
    expect(mock.counts()).toEqual({ requests: 2, keys: { [KEY_A]: 1, [KEY_B]: 1 } })
    // The rule stays until cleared.
    expect((await chat(mock.port, KEY_A)).status).toBe(429)
    mock.clearFaults()
    expect((await chat(mock.port, KEY_A)).status).toBe(200)
  })

  it("the official SDK sees its own RateLimitError", async () => {
    mock.fail({ status: 429, retryAfterMs: 1500 })
    const client = new OpenAI({ apiKey: KEY_B, baseURL: `${mock.url}/v1`, maxRetries: 0 })
    const err = await client.chat.completions
      .create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] })
      .catch((e: unknown) => e)
    expect(err).toBeInstanceOf(OpenAI.RateLimitError)
    expect((err as InstanceType<typeof OpenAI.RateLimitError>).headers.get("retry-after-ms")).toBe("1500")
  })

  it("503 once then 200, set through POST /__faults", async () => {
    const set = await request(mock.port, "/__faults", { body: JSON.stringify({ status: 503, times: 1 }) })
    expect(set.status).toBe(200)
    expect(JSON.parse(set.text).faults).toEqual([{ status: 503, times: 1, timesLeft: 1 }])
    const first = await chat(mock.port, KEY_A)
    expect(first.status).toBe(503)
    expect(JSON.parse(first.text).error.type).toBe("server_error")
    expect((await chat(mock.port, KEY_A)).status).toBe(200)
    expect(JSON.parse((await request(mock.port, "/__faults", { method: "GET" })).text)).toEqual({ faults: [] })
  })

  it("529 overloaded_error in Anthropic's shape, with Retry-After", async () => {
    mock.fail({ path: "/v1/messages", status: 529, retryAfter: 3 })
    const r = await request(mock.port, "/v1/messages", {
      headers: { "x-api-key": DEFAULT_KEYS.anthropic, "anthropic-version": "2023-06-01" },
      body: JSON.stringify({ model: "claude-sonnet-4-5", max_tokens: 10, messages: [{ role: "user", content: "hi" }] })
    })
    expect(r.status).toBe(529)
    expect(JSON.parse(r.text)).toEqual({ type: "error", error: { type: "overloaded_error", message: "Overloaded" } })
    expect(r.headers["request-id"]).toBeDefined()
    expect(cooldownOf(r.status, r.rawHeaders, Date.now(), 60_000)?.ms).toBe(3000)
    // Another path is not affected.
    expect((await chat(mock.port, KEY_A)).status).toBe(200)
  })

  it("Anthropic's 429 names its reset time (RFC 3339); Gemini's is RESOURCE_EXHAUSTED", async () => {
    mock.fail([
      { path: "/v1/messages", status: 429, retryAfter: 5 },
      { path: "/v1beta", status: 429 }
    ])
    const a = await request(mock.port, "/v1/messages", {
      headers: { "x-api-key": DEFAULT_KEYS.anthropic, "anthropic-version": "2023-06-01" },
      body: "{}"
    })
    expect(JSON.parse(a.text).error.type).toBe("rate_limit_error")
    const reset = Date.parse(String(a.headers["anthropic-ratelimit-requests-reset"]))
    expect(reset - Date.now()).toBeGreaterThan(3000)
    expect(reset - Date.now()).toBeLessThanOrEqual(5000)
    const g = await request(mock.port, "/v1beta/models/gemini-2.5-flash:generateContent", {
      headers: { "x-goog-api-key": DEFAULT_KEYS.gemini },
      body: "{}"
    })
    expect(g.status).toBe(429)
    expect(JSON.parse(g.text).error).toMatchObject({ code: 429, status: "RESOURCE_EXHAUSTED" })
    expect(mock.counts().keys[DEFAULT_KEYS.gemini]).toBe(1)
  })

  it("forMs: the rule is gone after its time; custom headers and body", async () => {
    mock.fail({ status: 500, forMs: 150, headers: { "x-custom": "1" }, body: "boom" })
    const r = await chat(mock.port, KEY_A)
    expect([r.status, r.headers["x-custom"], r.text]).toEqual([500, "1", "boom"])
    await new Promise((done) => setTimeout(done, 200))
    expect((await chat(mock.port, KEY_A)).status).toBe(200)
  })

  it("refuses a bad rule with 400 and a reason", async () => {
    const r = await request(mock.port, "/__faults", { body: JSON.stringify({ status: 429, sometimes: true }) })
    expect(r.status).toBe(400)
    expect(r.text).toContain("unknown fault field sometimes")
    expect((await request(mock.port, "/__faults", { body: "{" })).status).toBe(400)
    expect((await request(mock.port, "/__faults", { body: JSON.stringify({ status: 99 }) })).status).toBe(400)
  })
})

describe("transport faults", () => {
  it("reset: the connection closes before any head (HTTP/1.1)", async () => {
    mock.fail({ reset: true, times: 1 })
    await expect(chat(mock.port, KEY_A)).rejects.toThrow(/socket hang up|ECONNRESET/)
    expect((await chat(mock.port, KEY_A)).status).toBe(200)
    expect(mock.counts().requests).toBe(2)
  })

  it("delayMs holds the head back", async () => {
    mock.fail({ delayMs: 150 })
    const t0 = performance.now()
    const r = await chat(mock.port, KEY_A)
    expect(r.status).toBe(200)
    expect(performance.now() - t0).toBeGreaterThanOrEqual(140)
  })

  it("stallMs: the head arrives, the first SSE event only after the stall", async () => {
    mock.fail({ key: KEY_A, stallMs: 300 })
    const s = await streamed(mock.port, KEY_A)
    expect(s.complete).toBe(true)
    expect(s.chunks.length).toBeGreaterThan(0)
    expect(s.chunks[0].at - s.headAt).toBeGreaterThanOrEqual(250)
    expect(s.chunks.map((c) => c.text).join("")).toContain("data: [DONE]")
  })

  it("stallAfter: Anthropic's message_start goes out, the next events only after the stall (with delayMs too)", async () => {
    mock.fail({ path: "/v1/messages", delayMs: 50, stallMs: 300, stallAfter: 1 })
    const s = await new Promise<{ headAt: number; chunks: Array<{ at: number; text: string }> }>((resolve, reject) => {
      const req = http.request({
        host: "127.0.0.1",
        port: mock.port,
        path: "/v1/messages",
        method: "POST",
        headers: { "x-api-key": DEFAULT_KEYS.anthropic, "anthropic-version": "2023-06-01" },
        agent: false
      })
      req.on("response", (res) => {
        const headAt = performance.now()
        const chunks: Array<{ at: number; text: string }> = []
        res.on("data", (c: Buffer) => chunks.push({ at: performance.now(), text: c.toString() }))
        res.on("end", () => resolve({ headAt, chunks }))
      })
      req.on("error", reject)
      req.end(JSON.stringify({ model: "claude-sonnet-4-5", max_tokens: 10, stream: true, messages: [] }))
    })
    expect(s.chunks[0].text).toContain("event: message_start")
    expect(s.chunks[0].text).not.toContain("content_block")
    const next = s.chunks.findIndex((c) => !c.text.includes("message_start"))
    expect(next).toBeGreaterThan(0)
    expect(s.chunks[next].at - s.chunks[0].at).toBeGreaterThanOrEqual(250)
    expect(s.chunks.map((c) => c.text).join("")).toContain("event: message_stop")
  })

  it("cutAfter: 1 ends an HTTP/1.1 stream after its first event, without the final chunk", async () => {
    mock.fail({ cutAfter: 1 })
    const s = await streamed(mock.port, KEY_A)
    expect(s.complete).toBe(false)
    const text = s.chunks.map((c) => c.text).join("")
    expect(text.startsWith("data: ")).toBe(true)
    expect(text.match(/\n\n/g)?.length).toBe(1)
    expect(text).not.toContain("[DONE]")
  })
})

describe("HTTP/2", () => {
  let h2: MockProvider
  beforeAll(async () => {
    h2 = await startMockProvider({ http2: true })
  })
  afterAll(async () => {
    await h2?.close()
  })

  /** One h2c stream: status, body and the stream's RST code (0 when it ended cleanly). */
  const h2Request = (rules: Parameters<MockProvider["fail"]>[0], body: string) =>
    new Promise<{ status: number | undefined; text: string; rstCode: number; error: boolean }>((resolve) => {
      h2.reset()
      h2.fail(rules)
      const session = http2.connect(h2.url)
      session.on("error", () => {})
      const stream = session.request({
        ":method": "POST",
        ":path": "/v1/chat/completions",
        authorization: `Bearer ${DEFAULT_KEYS.openai}`
      })
      let status: number | undefined
      let text = ""
      let error = false
      stream.on("response", (h) => {
        status = Number(h[":status"])
      })
      stream.on("data", (c: Buffer) => {
        text += c.toString()
      })
      stream.on("error", () => {
        error = true
      })
      stream.on("close", () => {
        resolve({ status, text, rstCode: stream.rstCode ?? 0, error })
        session.close()
      })
      stream.end(body)
    })

  it("cutAfter resets the stream after its first event", async () => {
    const r = await h2Request({ cutAfter: 1 }, CHAT_STREAM)
    expect(r.status).toBe(200)
    expect(r.rstCode).toBe(http2.constants.NGHTTP2_INTERNAL_ERROR)
    expect(r.text.match(/\n\n/g)?.length).toBe(1)
  })

  it("stallMs sends the head at once and the first event after the stall", async () => {
    h2.reset()
    h2.fail({ stallMs: 300 })
    const session = http2.connect(h2.url)
    const stream = session.request({
      ":method": "POST",
      ":path": "/v1/chat/completions",
      authorization: `Bearer ${DEFAULT_KEYS.openai}`
    })
    const at = await new Promise<{ head: number; data: number }>((resolve) => {
      let head = 0
      stream.on("response", () => {
        head = performance.now()
      })
      stream.once("data", () => resolve({ head, data: performance.now() }))
      stream.end(CHAT_STREAM)
    })
    stream.resume()
    await new Promise((done) => stream.on("close", done))
    session.close()
    expect(at.head).toBeGreaterThan(0)
    expect(at.data - at.head).toBeGreaterThanOrEqual(250)
  })

  it("reset resets the stream before any head; a 429 is answered like on HTTP/1.1", async () => {
    const reset = await h2Request({ reset: true }, CHAT)
    expect(reset.status).toBeUndefined()
    expect(reset.rstCode).toBe(http2.constants.NGHTTP2_INTERNAL_ERROR)
    const limited = await h2Request({ status: 429, retryAfter: 1 }, CHAT)
    expect(limited.status).toBe(429)
    expect(JSON.parse(limited.text).error.code).toBe("rate_limit_exceeded")
    const clean = await h2Request([], CHAT_STREAM)
    expect([clean.status, clean.rstCode]).toEqual([200, 0])
    expect(clean.text).toContain("[DONE]")
  })
})

describe("counts", () => {
  it("GET /__counts per presented key (wrong keys included), DELETE resets", async () => {
    await chat(mock.port, KEY_A)
    await chat(mock.port, KEY_A)
    await chat(mock.port, "sk-wrong")
    const r = await request(mock.port, "/__counts", { method: "GET" })
    expect(JSON.parse(r.text)).toEqual({ requests: 3, keys: { [KEY_A]: 2, "sk-wrong": 1 } })
    await request(mock.port, "/__counts", { method: "DELETE" })
    expect(mock.counts()).toEqual({ requests: 0, keys: {} })
    // Control requests are neither counted nor recorded.
    expect(mock.received).toHaveLength(3)
  })
})

describe("WebSocket handshakes", () => {
  const open = (url: string, headers: Record<string, string>) =>
    new Promise<{ status: number; body: string; retryAfter?: string } | "open" | "error">((resolve) => {
      const ws = new WebSocket(url, { headers })
      ws.on("open", () => {
        ws.close()
        resolve("open")
      })
      ws.on("unexpected-response", (_req, res) => {
        let body = ""
        res.on("data", (c: Buffer) => {
          body += c.toString()
        })
        res.on("end", () =>
          resolve({ status: res.statusCode ?? 0, body, retryAfter: res.headers["retry-after"] as string | undefined })
        )
      })
      ws.on("error", () => resolve("error"))
    })

  it("a realtime handshake with a limited key is refused with 429 in OpenAI's shape; another key opens", async () => {
    mock.fail({ key: KEY_A, path: "/v1/realtime", status: 429, retryAfter: 2 })
    const url = `ws://127.0.0.1:${mock.port}/v1/realtime?model=gpt-realtime`
    const refused = await open(url, { authorization: `Bearer ${KEY_A}` })
    expect(refused).toMatchObject({ status: 429, retryAfter: "2" })
    expect(JSON.parse((refused as { body: string }).body).error.code).toBe("rate_limit_exceeded")
    expect(await open(url, { authorization: `Bearer ${KEY_B}` })).toBe("open")
    expect(mock.counts().keys).toEqual({ [KEY_A]: 1, [KEY_B]: 1 })
  })

  it("reset drops a /ws handshake", async () => {
    mock.fail({ path: "/ws", reset: true, times: 1 })
    expect(await open(`ws://127.0.0.1:${mock.port}/ws`, {})).toBe("error")
    expect(await open(`ws://127.0.0.1:${mock.port}/ws`, {})).toBe("open")
  })
})

describe("the CLI's --fail and repeated key options (dist/mock.js)", () => {
  let child: ChildProcess | undefined
  afterEach(() => {
    child?.kill("SIGTERM")
    child = undefined
  })

  it("starts with the rules and accepts each key given", async () => {
    child = spawn(
      process.execPath,
      [
        path.resolve(import.meta.dirname, "../dist/mock.js"),
        "--port",
        "0",
        "--openai-key",
        KEY_A,
        "--openai-key",
        KEY_B,
        "--fail",
        JSON.stringify({ key: KEY_A, status: 429, retryAfter: 2 }),
        "--fail",
        JSON.stringify([{ key: KEY_B, status: 503, times: 1 }])
      ],
      { stdio: ["ignore", "pipe", "pipe"] }
    )
    const url = await new Promise<string>((resolve, reject) => {
      let out = ""
      child?.stdout?.on("data", (c: Buffer) => {
        out += c.toString()
        const m = /listening on (\S+)/.exec(out)
        if (m) resolve(m[1])
      })
      child?.on("exit", (code) => reject(new Error(`mock exited with ${code}`)))
    })
    const port = Number(new URL(url).port)
    expect((await chat(port, KEY_A)).status).toBe(429)
    expect((await chat(port, KEY_B)).status).toBe(503)
    expect((await chat(port, KEY_B)).status).toBe(200)
    expect((await chat(port, "sk-other")).status).toBe(401)
    expect(JSON.parse((await request(port, "/__counts", { method: "GET" })).text).keys).toEqual({
      [KEY_A]: 1,
      [KEY_B]: 2,
      "sk-other": 1
    })
  })

  it("refuses a malformed --fail with exit code 2", async () => {
    child = spawn(process.execPath, [path.resolve(import.meta.dirname, "../dist/mock.js"), "--fail", "{nope"], {
      stdio: ["ignore", "pipe", "pipe"]
    })
    let err = ""
    child.stderr?.on("data", (c: Buffer) => {
      err += c.toString()
    })
    const code = await new Promise<number | null>((resolve) => child?.on("exit", resolve))
    expect(code).toBe(2)
    expect(err).toContain("--fail: faults must be JSON")
  })
})
