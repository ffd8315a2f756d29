// The token-usage library (src/domain/usage): provider rules, the JSON tap (plain, gzip, deflate, br, large
// bodies), the SSE tap for every stream format (usage, response model, first content event) and, as fast-check
// properties, that splitting the byte stream anywhere changes neither the usage nor the first-content chunk.
import { brotliCompressSync, deflateRawSync, deflateSync, gzipSync } from "node:zlib"
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import {
  createUsageTap,
  fromAnthropic,
  fromGemini,
  fromOpenAI,
  JsonUsageTap,
  modelLabel,
  requestModel,
  SseUsageTap,
  type StreamKind,
  type Usage,
  usageSource
} from "../src/domain/usage/index.js"
import { findObject, findString, indexOfKey, StringMemo } from "../src/domain/usage/scan.js"
import * as X from "./usage-fixtures.js"
import { split } from "./usage-fixtures.js"

const cutsFor = (len: number) => fc.array(fc.integer({ min: 0, max: len }), { maxLength: 24 })

const runSse = (kind: StreamKind, parts: Buffer[]) => {
  let pushed = 0
  // The clock is "bytes pushed so far, this chunk included": it names the chunk the first content was seen in.
  const tap = new SseUsageTap(kind, () => pushed)
  for (const p of parts) {
    pushed += p.length
    tap.push(p)
  }
  return tap.finish()
}

/** The end offset of the chunk (of `parts`) that holds byte `index`. */
const chunkEndHolding = (parts: Buffer[], index: number): number => {
  let end = 0
  for (const p of parts) {
    end += p.length
    if (index < end) return end
  }
  return end
}

describe("provider rules", () => {
  it("OpenAI: cached tokens come out of input; reasoning stays in output and is reported again", () => {
    expect(fromOpenAI(JSON.parse(X.openaiChatJson).usage)).toEqual(X.openaiChatUsage)
    expect(fromOpenAI(JSON.parse(X.openaiResponsesJson).usage)).toEqual(X.openaiResponsesUsage)
    expect(fromOpenAI(JSON.parse(X.openaiEmbeddingsJson).usage)).toEqual(X.openaiEmbeddingsUsage)
    const rt = (X.realtimeResponseDone("a").response as { usage: Record<string, unknown> }).usage
    expect(fromOpenAI(rt)).toEqual(X.realtimeResponseUsage)
  })

  it("Anthropic: input excludes both cache counts; thinking tokens are the reasoning part of output", () => {
    expect(fromAnthropic(JSON.parse(X.anthropicJson).usage)).toEqual(X.anthropicUsage)
    expect(
      fromAnthropic({
        input_tokens: 5,
        cache_creation_input_tokens: null,
        cache_read_input_tokens: null,
        output_tokens: 7
      })
    ).toEqual({
      input: 5,
      output: 7,
      cacheRead: 0,
      cacheWrite: 0,
      reasoning: 0
    })
  })

  it("Gemini: prompt includes the cache; output is candidates + thoughts; tool-use prompt tokens are input", () => {
    expect(fromGemini(JSON.parse(X.geminiJson).usageMetadata)).toEqual(X.geminiUsage)
  })

  it("the four disjoint types add up to the provider's total", () => {
    const total = (u: Usage): number => u.input + u.cacheRead + u.cacheWrite + u.output
    expect(total(X.openaiChatUsage)).toBe(JSON.parse(X.openaiChatJson).usage.total_tokens)
    expect(total(X.openaiResponsesUsage)).toBe(JSON.parse(X.openaiResponsesJson).usage.total_tokens)
    expect(total(X.geminiUsage)).toBe(JSON.parse(X.geminiJson).usageMetadata.totalTokenCount)
    // Anthropic has no total: its bill is exactly these four figures.
  })

  it("garbage counts are 0 and a cached count above the prompt is capped", () => {
    expect(
      fromOpenAI({ prompt_tokens: "12", completion_tokens: -3, prompt_tokens_details: { cached_tokens: 1e9 } })
    ).toEqual({
      input: 0,
      output: 0,
      cacheRead: 0,
      cacheWrite: 0,
      reasoning: 0
    })
    expect(fromOpenAI({ prompt_tokens: 10, prompt_tokens_details: { cached_tokens: 50 } })).toMatchObject({
      input: 0,
      cacheRead: 10
    })
  })

  it("model labels are short printable tokens, else unknown", () => {
    expect(modelLabel("gpt-4o-2024-08-06")).toBe("gpt-4o-2024-08-06")
    expect(modelLabel("models/gemini-2.5-flash")).toBe("gemini-2.5-flash")
    expect(modelLabel("ft:gpt-4o-mini-2024-07-18:my-org:custom:9abc")).toBe(
      "ft:gpt-4o-mini-2024-07-18:my-org:custom:9abc"
    )
    expect(modelLabel("a".repeat(101))).toBe("unknown")
    expect(modelLabel("gpt 4")).toBe("unknown")
    expect(modelLabel('x"y')).toBe("unknown")
    expect(modelLabel("")).toBe("unknown")
    expect(modelLabel(undefined)).toBe("unknown")
  })

  it("model labels stay right when names repeat and alternate (answers are kept, a bounded number)", () => {
    // More distinct names than are kept: the memory is forgotten, never wrong.
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < 700; i++) {
        expect(modelLabel(`m-${i}`)).toBe(`m-${i}`)
        expect(modelLabel(`models/bad ${i}`)).toBe("unknown")
      }
    }
    const names = ["gpt-4o", "gpt 4", "models/gemini-2.5-flash", "gemini-2.5-flash", "", "a".repeat(101), "x@y+z"]
    const want = ["gpt-4o", "unknown", "gemini-2.5-flash", "gemini-2.5-flash", "unknown", "unknown", "x@y+z"]
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < names.length; i++) {
        expect(modelLabel(names[i])).toBe(want[i])
        expect(modelLabel(names[i])).toBe(want[i])
        expect(modelLabel(names[(i + 1) % names.length])).toBe(want[(i + 1) % names.length])
      }
    }
  })

  it("request model: from the body, or Gemini's path", () => {
    expect(requestModel("openai", "/v1/chat/completions", Buffer.from('{"messages":[],"model": "gpt-4o"}'))).toBe(
      "gpt-4o"
    )
    expect(requestModel("anthropic", "/v1/messages", Buffer.from('{"model":"bad model"}'))).toBe("unknown")
    expect(requestModel("openai", "/v1/chat/completions", undefined)).toBe("unknown")
    expect(requestModel("gemini", "/v1beta/models/gemini-2.5-pro:streamGenerateContent", undefined)).toBe(
      "gemini-2.5-pro"
    )
    expect(requestModel("gemini", "/v1beta/models/gemini%202:generateContent", undefined)).toBe("unknown")
  })

  it("usageSource picks the tap from provider, path and content type", () => {
    expect(usageSource("openai", "/v1/chat/completions", "text/event-stream; charset=utf-8")).toEqual({
      kind: "sse",
      stream: "openai-chat"
    })
    expect(usageSource("openai", "/v1/responses", "application/json")).toEqual({ kind: "json", dialect: "openai" })
    expect(usageSource("openai", "/v1/models", "application/json")).toEqual({ kind: "none" })
    expect(usageSource("anthropic", "/v1/messages/count_tokens", "application/json")).toEqual({ kind: "none" })
    expect(usageSource("anthropic", "/v1/messages", "text/event-stream")).toEqual({ kind: "sse", stream: "anthropic" })
    expect(usageSource("gemini", "/v1beta/models/g:streamGenerateContent", "text/event-stream")).toEqual({
      kind: "sse",
      stream: "gemini"
    })
    expect(usageSource("gemini", "/v1beta/models/g:streamGenerateContent", "application/json")).toEqual({
      kind: "json",
      dialect: "gemini"
    })
    expect(usageSource("gemini", "/v1beta/models/g:countTokens", "application/json")).toEqual({ kind: "none" })
    expect(usageSource("openai", "/v1/chat/completions", "text/html")).toEqual({ kind: "none" })
  })
})

describe("JSON tap", () => {
  const cases = [
    {
      name: "OpenAI chat",
      dialect: "openai",
      body: X.openaiChatJson,
      usage: X.openaiChatUsage,
      model: "o3-mini-2025-01-31"
    },
    {
      name: "OpenAI Responses",
      dialect: "openai",
      body: X.openaiResponsesJson,
      usage: X.openaiResponsesUsage,
      model: "o4-mini-2025-04-16"
    },
    {
      name: "OpenAI embeddings",
      dialect: "openai",
      body: X.openaiEmbeddingsJson,
      usage: X.openaiEmbeddingsUsage,
      model: "text-embedding-3-small"
    },
    {
      name: "Anthropic",
      dialect: "anthropic",
      body: X.anthropicJson,
      usage: X.anthropicUsage,
      model: "claude-sonnet-4-5-20250929"
    },
    { name: "Gemini", dialect: "gemini", body: X.geminiJson, usage: X.geminiUsage, model: "gemini-2.5-flash" },
    {
      name: "Gemini stream as a JSON array (last element wins)",
      dialect: "gemini",
      body: JSON.stringify(X.geminiStreamEvents()),
      usage: X.geminiStreamUsage,
      model: "gemini-2.5-pro"
    }
  ] as const

  const encoders: Record<string, (b: Buffer) => Buffer> = {
    identity: (b) => b,
    gzip: (b) => gzipSync(b),
    deflate: (b) => deflateSync(b),
    br: (b) => brotliCompressSync(b)
  }

  for (const c of cases) {
    for (const [coding, encode] of Object.entries(encoders)) {
      it(`${c.name}, ${coding}: usage and response model`, async () => {
        const encoded = encode(Buffer.from(c.body))
        const tap = new JsonUsageTap(c.dialect, { contentEncoding: coding })
        for (const part of split(encoded, [1, 7, encoded.length >> 1, encoded.length - 3])) tap.push(part)
        expect(await tap.finish()).toEqual({ usage: c.usage, responseModel: c.model })
      })
    }
  }

  it("property: a gzip body split anywhere gives the same usage", async () => {
    const gz = gzipSync(Buffer.from(X.anthropicJson))
    await fc.assert(
      fc.asyncProperty(cutsFor(gz.length), async (cuts) => {
        const tap = new JsonUsageTap("anthropic", { contentEncoding: "gzip" })
        for (const part of split(gz, cuts)) tap.push(part)
        expect((await tap.finish()).usage).toEqual(X.anthropicUsage)
      }),
      { numRuns: 100 }
    )
  })

  it("raw deflate (sent by some servers as 'deflate') is read too", async () => {
    const tap = new JsonUsageTap("anthropic", { contentEncoding: "deflate" })
    tap.push(deflateRawSync(Buffer.from(X.anthropicJson)))
    expect((await tap.finish()).usage).toEqual(X.anthropicUsage)
  })

  it("a body larger than the window keeps its head (model) and tail (usage)", async () => {
    const big = JSON.parse(X.openaiEmbeddingsJson)
    big.data = Array.from({ length: 4000 }, (_, i) => ({
      object: "embedding",
      index: i,
      embedding: new Array(64).fill(0.0123456)
    }))
    const body = Buffer.from(JSON.stringify(big))
    expect(body.length).toBeGreaterThan(2 * 1024 * 1024)
    const tap = new JsonUsageTap("openai", { tailBytes: 64 * 1024 })
    for (const part of split(
      body,
      Array.from({ length: 200 }, (_, i) => i * 16384)
    ))
      tap.push(part)
    expect(await tap.finish()).toEqual({ usage: X.openaiEmbeddingsUsage, responseModel: "text-embedding-3-small" })
  })

  it("the same large body in one chunk, in two, or in many: the same usage and model; no chunk: none", async () => {
    const big = JSON.parse(X.openaiEmbeddingsJson)
    big.data = Array.from({ length: 3000 }, (_, i) => ({ object: "embedding", index: i, embedding: [0.5, i] }))
    const body = Buffer.from(JSON.stringify(big))
    const want = { usage: X.openaiEmbeddingsUsage, responseModel: "text-embedding-3-small" }
    for (const cuts of [[], [5], [body.length - 40], [1000, 70_000, 140_000]]) {
      const tap = new JsonUsageTap("openai", { tailBytes: 4096 })
      for (const part of split(body, cuts)) tap.push(part)
      expect(await tap.finish()).toEqual(want)
    }
    expect(await new JsonUsageTap("openai").finish()).toEqual({ usage: undefined, responseModel: "unknown" })
    // a chat answer names its model first: read from the head, whatever the chunks
    const chat = JSON.parse(X.openaiChatJson)
    chat.choices[0].message.content = "x".repeat(200_000)
    const chatBody = Buffer.from(JSON.stringify(chat))
    for (const cuts of [[], [3], [90_000], [10, 66_000, 130_000]]) {
      const tap = new JsonUsageTap("openai", { tailBytes: 4096 })
      for (const part of split(chatBody, cuts)) tap.push(part)
      expect(await tap.finish()).toEqual({ usage: X.openaiChatUsage, responseModel: modelLabel(chat.model) })
    }
  })

  it("limits: an encoded body past the limit, a decoded size past the limit, an unknown coding give no usage", async () => {
    const gz = gzipSync(Buffer.from(X.openaiChatJson))
    const small = new JsonUsageTap("openai", { contentEncoding: "gzip", maxEncodedBytes: gz.length - 1 })
    small.push(gz)
    expect((await small.finish()).usage).toBeUndefined()
    const bomb = new JsonUsageTap("openai", { contentEncoding: "gzip", maxDecodedBytes: 100 })
    bomb.push(gz)
    expect((await bomb.finish()).usage).toBeUndefined()
    const zstd = new JsonUsageTap("openai", { contentEncoding: "zstd" })
    zstd.push(gz)
    expect(await zstd.finish()).toEqual({ usage: undefined, responseModel: "unknown" })
  })

  it("a truncated or non-JSON body gives no usage and never throws", async () => {
    const cut = new JsonUsageTap("openai")
    // cut inside the usage object (a body cut after it still reports it: that usage was sent)
    cut.push(Buffer.from(X.openaiChatJson.slice(0, X.openaiChatJson.indexOf("completion_tokens_details"))))
    expect((await cut.finish()).usage).toBeUndefined()
    const gz = new JsonUsageTap("openai", { contentEncoding: "gzip" })
    gz.push(gzipSync(Buffer.from(X.openaiChatJson)).subarray(0, 30))
    expect((await gz.finish()).usage).toBeUndefined()
    const html = new JsonUsageTap("gemini")
    html.push(Buffer.from("<html>502 Bad Gateway</html>"))
    expect(await html.finish()).toEqual({ usage: undefined, responseModel: "unknown" })
  })
})

describe("SSE tap", () => {
  const chat = X.openaiChatStreamParts(true)
  const streams = [
    {
      name: "OpenAI chat with the usage chunk",
      kind: "openai-chat",
      body: chat.before + chat.usageChunk + chat.after,
      usage: X.openaiChatStreamUsage,
      model: "gpt-4o-2024-08-06",
      firstContent: '"content":"Hel"'
    },
    {
      name: "OpenAI chat without usage",
      kind: "openai-chat",
      body: X.openaiChatStreamParts(false).before + "data: [DONE]\n\n",
      usage: undefined,
      model: "gpt-4o-2024-08-06",
      firstContent: '"content":"Hel"'
    },
    {
      name: "OpenAI Responses",
      kind: "openai-responses",
      body: X.openaiResponsesStream(),
      usage: X.openaiResponsesUsage,
      model: "o4-mini-2025-04-16",
      firstContent: '"delta":"In a peaceful"'
    },
    {
      name: "Anthropic, message_delta with output only",
      kind: "anthropic",
      body: X.anthropicStream(false),
      usage: X.anthropicStreamUsage,
      model: "claude-opus-4-1-20250805",
      firstContent: "thinking_delta"
    },
    {
      name: "Anthropic, message_delta with every field (null cache write keeps message_start's)",
      kind: "anthropic",
      body: X.anthropicStream(true),
      usage: X.anthropicStreamUsage,
      model: "claude-opus-4-1-20250805",
      firstContent: "thinking_delta"
    },
    {
      name: "Gemini alt=sse (CRLF)",
      kind: "gemini",
      body: X.geminiStream(),
      usage: X.geminiStreamUsage,
      model: "gemini-2.5-pro",
      firstContent: '"text":"The"'
    }
  ] as const

  for (const s of streams) {
    const body = Buffer.from(s.body)
    // the line that ends the first content event
    const firstLineEnd = body.indexOf("\n", body.indexOf(s.firstContent))

    it(`${s.name}: usage, model and first content, in one chunk`, () => {
      expect(runSse(s.kind, [body])).toEqual({ usage: s.usage, responseModel: s.model, firstContentAt: body.length })
    })

    it(`${s.name}: any split gives the same usage and the first content in the chunk that completes it`, () => {
      fc.assert(
        fc.property(cutsFor(body.length), (cuts) => {
          const parts = split(body, cuts)
          const r = runSse(s.kind, parts)
          expect(r.usage).toEqual(s.usage)
          expect(r.responseModel).toBe(s.model)
          expect(r.firstContentAt).toBe(chunkEndHolding(parts, firstLineEnd))
        }),
        { numRuns: 150 }
      )
    })
  }

  it("byte-at-a-time works too", () => {
    const body = Buffer.from(X.anthropicStream(false))
    const parts = Array.from({ length: body.length }, (_, i) => body.subarray(i, i + 1))
    expect(runSse("anthropic", parts).usage).toEqual(X.anthropicStreamUsage)
  })

  it("a client that leaves mid-stream: the usage seen so far (Anthropic message_start only)", () => {
    const body = X.anthropicStream(false)
    const cut = Buffer.from(body.slice(0, body.indexOf("event: message_delta")))
    expect(runSse("anthropic", [cut]).usage).toEqual({
      input: 472,
      output: 1,
      cacheRead: 1800,
      cacheWrite: 0,
      reasoning: 0
    })
  })

  it("the role-only first chat chunk and Responses' non-delta events are not content", () => {
    const chatStart = Buffer.from(X.openaiChatStreamParts(true).before.split("\n\n")[0] + "\n\n")
    expect(runSse("openai-chat", [chatStart]).firstContentAt).toBeUndefined()
    const created = Buffer.from(X.openaiResponsesStream().split("\n\n").slice(0, 6).join("\n\n") + "\n\n")
    expect(runSse("openai-responses", [created]).firstContentAt).toBeUndefined()
  })

  it("tool calls count as content; a usage key in a comment line or a string does not count as usage", () => {
    const tool = `data: {"id":"c","object":"chat.completion.chunk","model":"gpt-4o","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"f","arguments":""}}]}}]}\n\n`
    const comment = `: {"usage":{"prompt_tokens":99}}\n\n`
    const inString = `data: {"choices":[{"delta":{"content":"say \\"usage\\":{\\"prompt_tokens\\":5}"}}],"usage":null}\n\n`
    const r = runSse("openai-chat", [Buffer.from(comment + tool + inString)])
    expect(r.firstContentAt).toBeDefined()
    expect(r.usage).toBeUndefined()
  })

  it("an over-long line is skipped without holding it, and the stream goes on", () => {
    const tap = new SseUsageTap("openai-chat")
    const huge = Buffer.alloc(1024 * 1024, 0x61)
    tap.push(Buffer.from('data: {"x":"'))
    for (let i = 0; i < 17; i++) tap.push(huge)
    const chat2 = X.openaiChatStreamParts(true)
    tap.push(Buffer.from(`"}\n\n${chat2.usageChunk}`))
    expect(tap.finish().usage).toEqual(X.openaiChatStreamUsage)
  })
})

describe("createUsageTap", () => {
  it("one interface for JSON, SSE and encoded SSE; none where there is nothing to read", async () => {
    const json = createUsageTap({ kind: "json", dialect: "gemini" }, "gzip")
    json?.push(gzipSync(Buffer.from(X.geminiJson)))
    expect(await json?.finish()).toEqual({
      usage: X.geminiUsage,
      responseModel: "gemini-2.5-flash",
      firstContentAt: undefined
    })

    const body = Buffer.from(X.anthropicStream(false))
    for (const coding of [undefined, "gzip", "deflate", "br"]) {
      const encoded =
        coding === "gzip"
          ? gzipSync(body)
          : coding === "deflate"
            ? deflateSync(body)
            : coding === "br"
              ? brotliCompressSync(body)
              : body
      const tap = createUsageTap({ kind: "sse", stream: "anthropic" }, coding, () => 7)
      for (const part of split(encoded, [3, 50, encoded.length >> 1])) tap?.push(part)
      expect(await tap?.finish(), String(coding)).toEqual({
        usage: X.anthropicStreamUsage,
        responseModel: "claude-opus-4-1-20250805",
        firstContentAt: 7
      })
    }

    const cut = createUsageTap({ kind: "sse", stream: "anthropic" }, "gzip")
    const gz = gzipSync(body)
    cut?.push(gz.subarray(0, gz.length - 20))
    expect((await cut?.finish())?.usage?.input).toBe(472) // a cut stream: what was decoded

    expect(createUsageTap({ kind: "none" }, undefined)).toBeUndefined()
    expect(createUsageTap({ kind: "sse", stream: "gemini" }, "zstd")).toBeUndefined()
    expect(createUsageTap({ kind: "json", dialect: "openai" }, "compress")).toBeUndefined()
  })
})

describe("findString (the byte-level key reader)", () => {
  // The reader as it was before its JS near-scan and its string memory: the oracle.
  const oracle = (buf: Buffer, key: Buffer, from: number, end: number): string | undefined => {
    const b = end < buf.length ? buf.subarray(0, end) : buf
    let at = b.indexOf(key, from)
    while (at >= 0 && at + key.length <= end) {
      let i = at + key.length
      while (i < end && (b[i] === 0x20 || b[i] === 0x0a || b[i] === 0x0d || b[i] === 0x09)) i++
      if (b[i] === 0x3a) {
        i++
        while (i < end && (b[i] === 0x20 || b[i] === 0x0a || b[i] === 0x0d || b[i] === 0x09)) i++
        if (i < end && b[i] === 0x22) {
          const close = b.indexOf(0x22, i + 1)
          if (close < 0 || close >= end || close - i > 201) return undefined
          const text = b.toString("latin1", i + 1, close)
          return text.includes("\\") ? undefined : text
        }
      }
      at = b.indexOf(key, at + 1)
    }
    return undefined
  }

  it("finds what a plain indexOf reader finds, near the start or far, with or without its memory", () => {
    const key = Buffer.from('"model"')
    const memo = new StringMemo()
    const piece = fc.constantFrom(
      '"model"',
      '"model": "gpt-4o"',
      ":",
      " ",
      '"',
      "\\",
      "x",
      "é",
      "gpt-4o",
      '"model":"gpt-4a"',
      '"model":"gpt-4b"',
      '"mod',
      'el"'
    )
    fc.assert(
      fc.property(
        fc.array(piece, { maxLength: 60 }),
        fc.nat(300),
        fc.nat(40),
        fc.nat(400),
        (pieces, pad, from, cut) => {
          const buf = Buffer.from("y".repeat(pad) + pieces.join(""))
          const end = Math.min(buf.length, cut + pad)
          const want = oracle(buf, key, from, end)
          expect(findString(buf, key, from, end)).toBe(want)
          expect(findString(buf, key, from, end, memo)).toBe(want)
          expect(findString(buf, key, from, end, memo)).toBe(want)
        }
      ),
      { numRuns: 3000 }
    )
  })
  it("indexOfKey finds what indexOf finds; findObject the last object span", () => {
    const key = Buffer.from('"usage"')
    const piece = fc.constantFrom('"usage"', '"usage":{"a":1}', '"usage":null', "{", "}", '"', "x", "é", '"usa', 'ge"')
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 80 }), fc.nat(900), fc.nat(1200), (pieces, pad, at) => {
        const buf = Buffer.from("y".repeat(pad) + pieces.join("") + "z".repeat(pad % 7))
        expect(indexOfKey(buf, key, at % (buf.length + 2))).toBe(buf.indexOf(key, at % (buf.length + 2)))
        const span = findObject(buf, key, 0, buf.length, true)
        const want = ((): { start: number; end: number } | undefined => {
          for (
            let i = buf.lastIndexOf(key, buf.length - key.length);
            i >= 0;
            i = i === 0 ? -1 : buf.lastIndexOf(key, i - 1)
          ) {
            const got = findObject(buf, key, i, Math.min(buf.length, i + key.length + 20), false)
            if (got !== undefined && got.start === i + key.length + 1) return findObject(buf, key, i, buf.length, false)
          }
          return undefined
        })()
        expect(span).toEqual(want)
      }),
      { numRuns: 3000 }
    )
  })
})
