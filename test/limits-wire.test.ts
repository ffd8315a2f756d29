// Per-key limits on the request path (SPEC §12), in-process over real sockets with the memory store: a refusal is a
// 429 with Retry-After and x-ratelimit-* and the selected provider type's error body (the official SDKs raise their
// own rate-limit error class), a key without limits is never refused, concurrency slots come back when streams end
// and after 100 client aborts, token reservations are sized from max_tokens, /keys shows the figures (never a key),
// refusals are counted, and a reload changes the limits.
import * as http from "node:http"
import * as http2 from "node:http2"
import Anthropic from "@anthropic-ai/sdk"
import { ApiError, GoogleGenAI } from "@google/genai"
import * as Effect from "effect/Effect"
import OpenAI from "openai"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { outputCapOf } from "../src/proxy/phases/admit.js"
import { h1, h2req } from "./support/http.js"
import { seriesValue } from "./support/metrics.js"
import { DEFAULT_KEYS, type MockProvider, startMockProvider } from "./support/mockProvider.js"
import { logLines, type RunningProxy, startProxy } from "./support/proxy.js"
import { startRedis } from "./support/redis.js"
import { expectOpen, isOpen, wsConnect } from "./support/wsClient.js"

const LIMITED = "sk-limited-TOPSECRET-1"
const FREE = "sk-free-TOPSECRET-2"
const STREAMS = "sk-streams-TOPSECRET-3"
const TOKENS = "sk-tokens-TOPSECRET-4"
const SECRETS = [LIMITED, FREE, STREAMS, TOKENS]

let mock: MockProvider
beforeAll(async () => {
  mock = await startMockProvider()
})
afterAll(() => mock.close())

const config = (rpm: number) => `
http_port: 0
admin: {port: 0}
auth_keys:
  - {name: team-rpm, key: ${LIMITED}, limits: {requests_per_minute: ${rpm}}}
  - {name: team-free, key: ${FREE}}
  - {name: team-streams, key: ${STREAMS}, limits: {concurrent_requests: 3}}
  - {name: team-tokens, key: ${TOKENS}, limits: {tokens_per_minute: 1000}}
limits:
  default_output_tokens: 700
providers:
  - {type: openai, host: 127.0.0.1/o, endpoint: "127.0.0.1:MOCK", tls: false, api_key: ${DEFAULT_KEYS.openai}}
  - {type: anthropic, host: 127.0.0.1/a, endpoint: "127.0.0.1:MOCK", tls: false, api_key: ${DEFAULT_KEYS.anthropic}}
  - {type: gemini, host: 127.0.0.1/g, endpoint: "127.0.0.1:MOCK", tls: false, api_key: ${DEFAULT_KEYS.gemini}}
`

const CHAT = JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }], max_tokens: 5 })

const chat = (port: number, key: string, body = CHAT, extra: Array<[string, string]> = []) =>
  h1(port, {
    method: "POST",
    host: "127.0.0.1",
    path: "/o/v1/chat/completions",
    headers: [["Authorization", `Bearer ${key}`], ["Content-Type", "application/json"], ...extra],
    body
  })

describe("limits on the request path (memory store)", () => {
  let proxy: RunningProxy
  let port: number
  beforeAll(async () => {
    proxy = await startProxy(config(3).replaceAll("MOCK", String(mock.port)))
    port = proxy.httpPort!
  })
  afterAll(() => proxy.close())

  it("admits exactly requests_per_minute, then 429 with Retry-After, x-ratelimit-* and OpenAI's error body", async () => {
    const replies = []
    for (let i = 0; i < 5; i++) replies.push(await chat(port, LIMITED))
    expect(replies.map((r) => r.status)).toEqual([200, 200, 200, 429, 429])
    const r = replies[3]
    expect(Number(r.headers["retry-after"])).toBeGreaterThanOrEqual(59)
    expect(Number(r.headers["retry-after"])).toBeLessThanOrEqual(60)
    expect(r.headers["x-ratelimit-limit-requests"]).toBe("3")
    expect(r.headers["x-ratelimit-remaining-requests"]).toBe("0")
    expect(r.headers["x-ratelimit-reset-requests"]).toMatch(/^(59(\.\d+)?s|1m0s)$/)
    expect(r.headers["content-type"]).toBe("application/json")
    expect(r.headers["x-request-id"]).toBeTruthy()
    const body = JSON.parse(r.text)
    expect(body.error.type).toBe("rate_limit_exceeded")
    expect(body.error.message).toContain('"team-rpm"')
    expect(r.text).not.toContain(LIMITED)
  })

  it("a streamed body (over 64 KiB): admitted ones reach the upstream whole, refused ones close the connection", async () => {
    const big = JSON.stringify({ model: "m", messages: [{ role: "user", content: "x".repeat(200 * 1024) }] })
    const ok = await chat(port, STREAMS, big)
    expect(ok.status).toBe(200)
    expect(mock.received.at(-1)?.bodyBytes).toBe(Buffer.byteLength(big))
    const refused = await chat(port, LIMITED, big)
    expect([refused.status, refused.headers.connection]).toEqual([429, "close"])
    expect(JSON.parse(refused.text).error.type).toBe("rate_limit_exceeded")
  })

  it("refuses over HTTP/2 (h2c) the same way", async () => {
    const session = http2.connect(`http://127.0.0.1:${port}`)
    try {
      const r = await h2req(session, {
        method: "POST",
        authority: "127.0.0.1",
        path: "/o/v1/chat/completions",
        headers: { authorization: `Bearer ${LIMITED}`, "content-type": "application/json" },
        body: CHAT
      })
      expect([r.status, r.headers["x-ratelimit-limit-requests"], JSON.parse(r.text).error.code]).toEqual([
        429,
        "3",
        "rate_limit_exceeded"
      ])
      // the session stays usable
      const again = await h2req(session, {
        authority: "127.0.0.1",
        path: "/o/v1/models",
        headers: { authorization: `Bearer ${FREE}` }
      })
      expect(again.status).toBe(200)
    } finally {
      session.close()
    }
  })

  it("never limits a key without limits", async () => {
    for (let i = 0; i < 8; i++) expect((await chat(port, FREE)).status).toBe(200)
  })

  it("answers in the selected provider type's shape: Anthropic and Gemini", async () => {
    const a = await h1(port, {
      method: "POST",
      host: "127.0.0.1",
      path: "/a/v1/messages",
      headers: [
        ["x-api-key", LIMITED],
        ["anthropic-version", "2023-06-01"],
        ["content-type", "application/json"]
      ],
      body: JSON.stringify({ model: "claude-x", max_tokens: 5, messages: [{ role: "user", content: "hi" }] })
    })
    expect(a.status).toBe(429)
    expect(JSON.parse(a.text)).toMatchObject({ type: "error", error: { type: "rate_limit_error" } })
    const g = await h1(port, {
      method: "POST",
      host: "127.0.0.1",
      path: "/g/v1beta/models/gemini-2.0-flash:generateContent",
      headers: [
        ["x-goog-api-key", LIMITED],
        ["content-type", "application/json"]
      ],
      body: JSON.stringify({ contents: [{ parts: [{ text: "hi" }] }] })
    })
    expect(g.status).toBe(429)
    expect(JSON.parse(g.text)).toMatchObject({ error: { code: 429, status: "RESOURCE_EXHAUSTED" } })
  })

  it("the official SDKs raise their own rate-limit error (maxRetries 0)", async () => {
    const o = new OpenAI({ apiKey: LIMITED, baseURL: `http://127.0.0.1:${port}/o/v1`, maxRetries: 0 })
    const oe = await o.chat.completions
      .create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] })
      .catch((e: unknown) => e)
    expect(oe).toBeInstanceOf(OpenAI.RateLimitError)

    const an = new Anthropic({
      apiKey: LIMITED,
      baseURL: `http://127.0.0.1:${port}/a`,
      maxRetries: 0
    })
    const ae = await an.messages
      .create({ model: "claude-x", max_tokens: 5, messages: [{ role: "user", content: "hi" }] })
      .catch((e: unknown) => e)
    expect(ae).toBeInstanceOf(Anthropic.RateLimitError)

    const g = new GoogleGenAI({
      apiKey: LIMITED,
      httpOptions: { baseUrl: `http://127.0.0.1:${port}/g` }
    })
    const ge = await g.models.generateContent({ model: "gemini-2.0-flash", contents: "hi" }).catch((e: unknown) => e)
    expect(ge).toBeInstanceOf(ApiError)
    expect((ge as ApiError).status).toBe(429)
  })

  it("counts refusals by key name and limit, and shows the figures on /keys without a key", async () => {
    const metrics = await h1(proxy.adminPort()!, { path: "/metrics" })
    expect(
      seriesValue(metrics.text, 'openproxy_ratelimited_total{key="team-rpm",limit="requests_per_minute"}')
    ).toBeGreaterThanOrEqual(2)
    const keys = await h1(proxy.adminPort()!, { path: "/keys" })
    const byName = new Map(
      (JSON.parse(keys.text).keys as Array<{ name: string; limits: unknown }>).map((k) => [k.name, k])
    )
    expect(byName.get("team-free")?.limits).toBeNull()
    expect(byName.get("team-rpm")?.limits).toMatchObject({
      requests_per_minute: { limit: 3, used: 3, remaining: 0 },
      tokens_per_minute: { limit: null }
    })
    for (const s of SECRETS) expect(keys.text).not.toContain(s)
    for (const s of SECRETS) expect(logLines.join("\n")).not.toContain(s)
  })

  it("reserves max_tokens + body/4 on a token limit while requests are in flight", async () => {
    // 1000 tokens per minute; each request reserves 300 + ceil(bytes / 4) and is held upstream for a while, so the
    // reservations (not the usage) decide: exactly `fits` of `fits + 1` concurrent requests are admitted.
    const body = JSON.stringify({ model: "m", messages: [{ role: "user", content: "x" }], max_tokens: 300 })
    const each = 300 + Math.ceil(Buffer.byteLength(body) / 4)
    const fits = Math.floor(1000 / each)
    mock.fail({ key: DEFAULT_KEYS.openai, path: "/v1/chat/completions", delayMs: 400, times: fits })
    try {
      const replies = await Promise.all(Array.from({ length: fits + 1 }, () => chat(port, TOKENS, body)))
      const statuses = replies.map((r) => r.status).sort()
      expect(statuses).toEqual([...Array(fits).fill(200), 429])
      const refused = replies.find((r) => r.status === 429)!
      expect(refused.headers["x-ratelimit-limit-tokens"]).toBe("1000")
      expect(Number(refused.headers["x-ratelimit-remaining-tokens"])).toBe(1000 - fits * each)
    } finally {
      mock.clearFaults()
    }
    // Settled to the exact usage when the usage taps read it (10 + 6 from the mock), else kept at the estimate.
    const used = async () => {
      const keys = JSON.parse((await h1(proxy.adminPort()!, { path: "/keys" })).text).keys as Array<{
        name: string
        limits: { tokens_per_minute: { used: number } }
      }>
      return keys.find((k) => k.name === "team-tokens")!.limits.tokens_per_minute.used
    }
    await until(async () => [fits * each, fits * 16].includes(await used()))
  })

  it("finds the output cap in a JSON body without parsing it", () => {
    const cap = (o: unknown) => outputCapOf(Buffer.from(JSON.stringify(o)))
    expect(cap({ max_tokens: 42 })).toBe(42)
    expect(cap({ generationConfig: { maxOutputTokens: 77 } })).toBe(77)
    expect(cap({ max_output_tokens: 9 })).toBe(9)
    expect(cap({ max_completion_tokens: 12 })).toBe(12)
    expect(cap({ messages: [{ content: '"max_tokens": 5' }], tools: [{ max_tokens: { type: "integer" } }] })).toBe(
      undefined
    )
    expect(cap({ tools: [{ properties: { max_tokens: { type: "integer" } } }], max_tokens: 8 })).toBe(8)
    expect(outputCapOf(Buffer.from('{"max_tokens" :\n 31}'))).toBe(31)
  })
})

/** Opens a stream the mock holds (a stall rule for its key) and resolves once its head arrived. */
const openStream = (port: number, key: string): Promise<{ status: number; req: http.ClientRequest }> =>
  new Promise((resolve, reject) => {
    const req = http.request({
      host: "127.0.0.1",
      port,
      method: "POST",
      path: "/o/v1/chat/completions",
      headers: { Host: "127.0.0.1", Authorization: `Bearer ${key}`, "content-type": "application/json" },
      agent: false
    })
    req.on("response", (res) => {
      res.on("data", () => undefined)
      res.on("error", () => undefined)
      resolve({ status: res.statusCode!, req })
    })
    req.on("error", (e) => (req.destroyed ? undefined : reject(e)))
    req.end(JSON.stringify({ model: "m", stream: true, messages: [{ role: "user", content: "hi" }] }))
  })

const concurrentUsed = async (admin: number): Promise<number> => {
  const keys = JSON.parse((await h1(admin, { path: "/keys" })).text).keys as Array<{
    name: string
    limits: { concurrent_requests: { used: number } }
  }>
  return keys.find((k) => k.name === "team-streams")!.limits.concurrent_requests.used
}

const until = async (check: () => Promise<boolean>, ms = 5000) => {
  const end = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > end) throw new Error("condition not met in time")
    await new Promise((r) => setTimeout(r, 20))
  }
}

describe("concurrent_requests with slow streams", () => {
  let proxy: RunningProxy
  let port: number
  let admin: number
  beforeAll(async () => {
    proxy = await startProxy(config(1000).replaceAll("MOCK", String(mock.port)))
    port = proxy.httpPort!
    admin = proxy.adminPort()!
    mock.fail({ key: DEFAULT_KEYS.openai, path: "/v1/chat/completions", stallMs: 60_000, stallAfter: 1 })
  })
  afterAll(async () => {
    mock.clearFaults()
    await proxy.close()
  })

  it("refuses the 4th, admits again when one ends, and leaks no slot after 100 client aborts", {
    timeout: 30_000
  }, async () => {
    const open = await Promise.all([0, 1, 2].map(() => openStream(port, STREAMS)))
    expect(open.map((s) => s.status)).toEqual([200, 200, 200])
    const fourth = await chat(port, STREAMS)
    expect(fourth.status).toBe(429)
    expect(fourth.headers["retry-after"]).toBe("1")
    expect(JSON.parse(fourth.text).error.message).toContain("concurrent requests")
    // One client goes away: its slot comes back.
    open[0].req.destroy()
    await until(async () => (await concurrentUsed(admin)) === 2)
    const again = await openStream(port, STREAMS)
    expect(again.status).toBe(200)
    expect((await chat(port, STREAMS)).status).toBe(429)
    for (const s of [open[1], open[2], again]) s.req.destroy()
    await until(async () => (await concurrentUsed(admin)) === 0)

    // 100 aborts, in waves of 3 (mid-stream), plus some before any answer.
    for (let wave = 0; wave < 34; wave++) {
      const n = wave === 33 ? 1 : 3
      const streams = await Promise.all(Array.from({ length: n }, () => openStream(port, STREAMS)))
      expect(streams.every((s) => s.status === 200)).toBe(true)
      for (const s of streams) s.req.destroy()
      await until(async () => (await concurrentUsed(admin)) === 0)
    }
    expect(await concurrentUsed(admin)).toBe(0)
    const after = await Promise.all([0, 1, 2].map(() => openStream(port, STREAMS)))
    expect(after.map((s) => s.status)).toEqual([200, 200, 200])
    expect((await chat(port, STREAMS)).status).toBe(429)
    for (const s of after) s.req.destroy()
    await until(async () => (await concurrentUsed(admin)) === 0)
  })
})

describe("WebSockets count as requests of their key", () => {
  it("concurrent_requests: 3 open sockets, the 4th handshake refused 429, admitted again after one closed", async () => {
    const proxy = await startProxy(config(1000).replaceAll("MOCK", String(mock.port)))
    try {
      const url = `ws://127.0.0.1:${proxy.httpPort}/o/v1/realtime?model=gpt-realtime-mini`
      const open = () => wsConnect(url, { host: "127.0.0.1", headers: { Authorization: `Bearer ${STREAMS}` } })
      const sockets = [expectOpen(await open()), expectOpen(await open()), expectOpen(await open())]
      const refused = await open()
      expect(isOpen(refused)).toBe(false)
      if (!isOpen(refused)) expect(refused.status).toBe(429)
      sockets[0].close()
      await until(async () => (await concurrentUsed(proxy.adminPort()!)) === 2)
      const again = expectOpen(await open())
      for (const s of [sockets[1], sockets[2], again]) s.close()
      await until(async () => (await concurrentUsed(proxy.adminPort()!)) === 0)
    } finally {
      await proxy.close()
    }
  })
})

describe("limits follow a reload", () => {
  it("a new requests_per_minute applies to the next request; the memory counts are kept", async () => {
    const proxy = await startProxy(config(2).replaceAll("MOCK", String(mock.port)))
    try {
      const port = proxy.httpPort!
      expect([(await chat(port, LIMITED)).status, (await chat(port, LIMITED)).status]).toEqual([200, 200])
      expect((await chat(port, LIMITED)).status).toBe(429)
      const { writeFile } = await import("node:fs/promises")
      await writeFile(proxy.file, config(4).replaceAll("MOCK", String(mock.port)))
      expect(await Effect.runPromise(proxy.config.reload)).toBe(true)
      const after = [(await chat(port, LIMITED)).status, (await chat(port, LIMITED)).status]
      expect(after).toEqual([200, 200])
      const r = await chat(port, LIMITED)
      expect([r.status, r.headers["x-ratelimit-limit-requests"]]).toEqual([429, "4"])
    } finally {
      await proxy.close()
    }
  })

  it("a reload to another store opens it (empty) and swaps it in; a bad reload keeps the old store and counts", async () => {
    const redis = await startRedis()
    const proxy = await startProxy(config(2).replaceAll("MOCK", String(mock.port)))
    try {
      const port = proxy.httpPort!
      const { writeFile } = await import("node:fs/promises")
      expect([(await chat(port, LIMITED)).status, (await chat(port, LIMITED)).status]).toEqual([200, 200])
      expect((await chat(port, LIMITED)).status).toBe(429)
      // store: redis without a URL is refused: the memory store and its counts stay.
      const toRedis = (url: string) =>
        config(2)
          .replaceAll("MOCK", String(mock.port))
          .replace("limits:\n", `limits:\n  store: redis\n${url === "" ? "" : `  redis_url: ${url}\n`}`)
      await writeFile(proxy.file, toRedis(""))
      expect(await Effect.runPromise(proxy.config.reload)).toBe(false)
      expect((await chat(port, LIMITED)).status).toBe(429)
      // A valid one: the Redis store is opened and used from the next request on (its window is empty).
      await writeFile(proxy.file, toRedis(redis.url))
      expect(await Effect.runPromise(proxy.config.reload)).toBe(true)
      await until(async () => (await chat(port, LIMITED)).status === 200)
      expect((await chat(port, LIMITED)).status).toBe(200)
      expect((await chat(port, LIMITED)).status).toBe(429)
      expect(await redis.command("ZCARD", "openproxy:limits:{team-rpm}:r")).toBe(":2")
    } finally {
      await proxy.close()
      await redis.dispose()
    }
  })
})
