// The mock provider's usage (x-mock-usage, x-mock-content-encoding): every API format reports exactly the figures
// the client set, in the provider's own shape, read back with the usage library from the raw bytes; the OpenAI
// chat stream sends its usage chunk only when asked, and the injection + strip round trip gives the client what a
// direct request without include_usage gives (but for the documented `"usage":null` fields).
import http from "node:http"
import OpenAI from "openai"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import {
  injectStreamUsage,
  JsonUsageTap,
  SseUsageTap,
  type StreamKind,
  StripUsageChunk,
  type Usage,
  type UsageDialect
} from "../src/domain/usage/index.js"
import { DEFAULT_KEYS, type MockProvider, startMockProvider } from "./support/mockProvider.js"

let mock: MockProvider
beforeAll(async () => {
  mock = await startMockProvider()
})
afterAll(async () => {
  await mock?.close()
})

const FIGURES = "input=1200,output=300,cache_read=1024,cache_write=64,reasoning=120"
const openaiUsage: Usage = { input: 1200, output: 300, cacheRead: 1024, cacheWrite: 0, reasoning: 120 }
const anthropicUsage: Usage = { ...openaiUsage, cacheWrite: 64 }

const AUTH: Record<string, Record<string, string>> = {
  openai: { authorization: `Bearer ${DEFAULT_KEYS.openai}` },
  anthropic: { "x-api-key": DEFAULT_KEYS.anthropic, "anthropic-version": "2023-06-01" },
  gemini: { "x-goog-api-key": DEFAULT_KEYS.gemini }
}

interface Raw {
  status: number
  headers: http.IncomingHttpHeaders
  body: Buffer
}

/** A POST whose answer is returned as raw bytes (never decompressed). */
const post = (path: string, family: string, body: unknown, headers: Record<string, string> = {}): Promise<Raw> =>
  new Promise((resolve, reject) => {
    const payload = Buffer.isBuffer(body) ? body : Buffer.from(JSON.stringify(body))
    const req = http.request(
      `${mock.url}${path}`,
      {
        method: "POST",
        headers: { "content-type": "application/json", "content-length": payload.length, ...AUTH[family], ...headers }
      },
      (res) => {
        const chunks: Buffer[] = []
        res.on("data", (c: Buffer) => chunks.push(c))
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }))
      }
    )
    req.on("error", reject)
    req.end(payload)
  })

const jsonUsage = (dialect: UsageDialect, r: Raw) => {
  const tap = new JsonUsageTap(dialect, { contentEncoding: r.headers["content-encoding"] })
  tap.push(r.body)
  return tap.finish()
}

const sseUsage = (kind: StreamKind, r: Raw) => {
  const tap = new SseUsageTap(kind)
  tap.push(r.body)
  return tap.finish()
}

const chat = { model: "gpt-4o", messages: [{ role: "user", content: "hi" }] }
const usageHeader = { "x-mock-usage": FIGURES }

describe("mock usage, JSON answers", () => {
  const cases = [
    {
      name: "OpenAI chat",
      path: "/v1/chat/completions",
      family: "openai",
      dialect: "openai",
      body: chat,
      usage: openaiUsage
    },
    {
      name: "OpenAI Responses",
      path: "/v1/responses",
      family: "openai",
      dialect: "openai",
      body: { model: "o4-mini", input: "hi" },
      usage: openaiUsage
    },
    {
      name: "OpenAI embeddings",
      path: "/v1/embeddings",
      family: "openai",
      dialect: "openai",
      body: { model: "text-embedding-3-small", input: "hi" },
      usage: { input: 1200, output: 0, cacheRead: 0, cacheWrite: 0, reasoning: 0 }
    },
    {
      name: "Anthropic",
      path: "/v1/messages",
      family: "anthropic",
      dialect: "anthropic",
      body: { model: "claude-sonnet-4-5", max_tokens: 10, messages: [{ role: "user", content: "hi" }] },
      usage: anthropicUsage
    },
    {
      name: "Gemini generateContent",
      path: "/v1beta/models/gemini-2.5-flash:generateContent",
      family: "gemini",
      dialect: "gemini",
      body: { contents: [{ parts: [{ text: "hi" }] }] },
      usage: openaiUsage
    },
    {
      name: "Gemini streamGenerateContent without alt=sse (a JSON array)",
      path: "/v1beta/models/gemini-2.5-flash:streamGenerateContent",
      family: "gemini",
      dialect: "gemini",
      body: { contents: [{ parts: [{ text: "hi" }] }] },
      usage: openaiUsage
    }
  ] as const

  for (const c of cases) {
    for (const coding of ["identity", "gzip", "deflate", "br"]) {
      it(`${c.name}, ${coding}`, async () => {
        const headers: Record<string, string> = { ...usageHeader }
        if (coding !== "identity") headers["x-mock-content-encoding"] = coding
        const r = await post(c.path, c.family, c.body, headers)
        expect(r.status).toBe(200)
        if (!c.name.includes("JSON array")) {
          expect(r.headers["content-encoding"]).toBe(coding === "identity" ? undefined : coding)
        }
        expect((await jsonUsage(c.dialect, r)).usage).toEqual(c.usage)
      })
    }
  }

  it("without the control header the historical usage stays exactly as it was", async () => {
    const r = await post("/v1/chat/completions", "openai", chat)
    expect(JSON.parse(r.body.toString()).usage).toEqual({ prompt_tokens: 10, completion_tokens: 6, total_tokens: 16 })
  })

  it("Anthropic with reasoning sends a thinking block before the text", async () => {
    const r = await post("/v1/messages", "anthropic", { model: "c", max_tokens: 5, messages: [] }, usageHeader)
    const msg = JSON.parse(r.body.toString())
    expect(msg.content.map((b: { type: string }) => b.type)).toEqual(["thinking", "text"])
    expect(msg.usage.output_tokens_details).toEqual({ thinking_tokens: 120 })
  })
})

describe("mock usage, streams", () => {
  const streams = [
    {
      name: "OpenAI chat with include_usage",
      path: "/v1/chat/completions",
      family: "openai",
      kind: "openai-chat",
      body: { ...chat, stream: true, stream_options: { include_usage: true } },
      usage: openaiUsage
    },
    {
      name: "OpenAI chat without include_usage: no usage chunk, as the API",
      path: "/v1/chat/completions",
      family: "openai",
      kind: "openai-chat",
      body: { ...chat, stream: true },
      usage: undefined
    },
    {
      name: "OpenAI Responses",
      path: "/v1/responses",
      family: "openai",
      kind: "openai-responses",
      body: { model: "o4-mini", input: "hi", stream: true },
      usage: openaiUsage
    },
    {
      name: "Anthropic (thinking, message_start + message_delta)",
      path: "/v1/messages",
      family: "anthropic",
      kind: "anthropic",
      body: { model: "claude-sonnet-4-5", max_tokens: 10, stream: true, messages: [] },
      usage: anthropicUsage
    },
    {
      name: "Gemini alt=sse",
      path: "/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse",
      family: "gemini",
      kind: "gemini",
      body: { contents: [] },
      usage: openaiUsage
    }
  ] as const

  for (const s of streams) {
    it(s.name, async () => {
      const r = await post(s.path, s.family, s.body, usageHeader)
      expect(r.headers["content-type"]).toMatch(/^text\/event-stream/)
      const result = await sseUsage(s.kind, r)
      expect(result.usage).toEqual(s.usage)
      expect(result.firstContentAt).toBeDefined()
      expect(result.responseModel).not.toBe("unknown")
    })
  }

  it("injection + strip: the client gets the stream it asked for, the tap gets the usage", async () => {
    const asked = Buffer.from(JSON.stringify({ ...chat, stream: true }))
    const direct = await post("/v1/chat/completions", "openai", asked, usageHeader)
    const injected = injectStreamUsage(asked)
    expect(injected).toBeDefined()
    const upstream = await post("/v1/chat/completions", "openai", injected as Buffer, usageHeader)
    const tap = new SseUsageTap("openai-chat")
    const strip = new StripUsageChunk(tap)
    const out: Buffer[] = []
    strip.on("data", (c: Buffer) => out.push(c))
    const ended = new Promise((r) => strip.on("end", r))
    strip.end(upstream.body)
    await ended
    const client = Buffer.concat(out).toString()
    expect(strip.removed).toBe(1)
    expect(tap.finish().usage).toEqual(openaiUsage)
    // the documented difference: the upstream's "usage":null in every chunk
    expect(client).toContain('"usage":null')
    expect(client.replaceAll(',"usage":null', "")).toBe(direct.body.toString())
  })

  it("the OpenAI SDK reads the mock's usage chunk with cache and reasoning details", async () => {
    const client = new OpenAI({ apiKey: DEFAULT_KEYS.openai, baseURL: `${mock.url}/v1`, defaultHeaders: usageHeader })
    const stream = await client.chat.completions.create({
      model: "gpt-4o",
      messages: [{ role: "user", content: "hi" }],
      stream: true,
      stream_options: { include_usage: true }
    })
    let usage: OpenAI.CompletionUsage | undefined | null
    for await (const chunk of stream) if (chunk.usage) usage = chunk.usage
    expect(usage).toMatchObject({
      prompt_tokens: 2224,
      completion_tokens: 300,
      prompt_tokens_details: { cached_tokens: 1024 },
      completion_tokens_details: { reasoning_tokens: 120 }
    })
    const gz = new OpenAI({
      apiKey: DEFAULT_KEYS.openai,
      baseURL: `${mock.url}/v1`,
      defaultHeaders: { ...usageHeader, "x-mock-content-encoding": "gzip" }
    })
    const res = await gz.chat.completions.create({ model: "gpt-4o", messages: [{ role: "user", content: "hi" }] })
    expect(res.usage?.total_tokens).toBe(2524)
  })

  it("a malformed x-mock-usage is ignored (historical usage)", async () => {
    const r = await post("/v1/chat/completions", "openai", chat, { "x-mock-usage": "input=-1" })
    expect(JSON.parse(r.body.toString()).usage.total_tokens).toBe(16)
  })
})
