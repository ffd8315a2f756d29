// The Limiter (src/limits/limiter.ts) over the memory store and over a store that fails on demand: fast path for
// keys without limits, refusal figures, the on_store_error policy logged once per transition and counted. And what
// clients see (src/limits/headers.ts): the headers, and 429 bodies the official SDKs turn into their own
// rate-limit error classes (served by a plain node:http server on loopback).
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import Anthropic from "@anthropic-ai/sdk"
import { ApiError, GoogleGenAI } from "@google/genai"
import OpenAI from "openai"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import {
  estimateTokens,
  formatDuration,
  rateLimitHeaders,
  refusalBody,
  refusalHeaders,
  refusalMessage
} from "../src/limits/headers.js"
import { makeLimiter } from "../src/limits/limiter.js"
import { MemoryEngine, memoryStore } from "../src/limits/memory.js"
import { openLimiter } from "../src/limits/open.js"
import type { Admission, LimitStore } from "../src/limits/types.js"
import { makeLogger } from "../src/log.js"

const T0 = Date.UTC(2026, 10, 30, 12, 0, 0)

/** A store that delegates to memory, or fails every call while `down` is set. */
const flakyStore = () => {
  const inner = memoryStore(new MemoryEngine())
  const state = { down: false, calls: 0 }
  const guard =
    <A extends Array<unknown>, R>(f: (...a: A) => Promise<R>) =>
    (...a: A): Promise<R> => {
      state.calls++
      return state.down ? Promise.reject(new Error("connect ECONNREFUSED 127.0.0.1:1")) : f(...a)
    }
  const store: LimitStore = {
    admit: guard(inner.admit),
    settle: guard(inner.settle),
    inspect: guard(inner.inspect),
    close: inner.close
  }
  return { store, state }
}

const capture = () => {
  const lines: Array<string> = []
  return { lines, logger: makeLogger("text", "debug", (l) => lines.push(l)) }
}

const refused = (a: Admission) => {
  if (a._tag !== "Refused") throw new Error(`expected a refusal, got ${a._tag}`)
  return a
}

describe("Limiter", () => {
  it("a key without limits never reaches the store", async () => {
    const { store, state } = flakyStore()
    const limiter = makeLimiter({ store })
    const a = await limiter.admit("free", {}, 100, T0)
    expect(a._tag).toBe("Admitted")
    if (a._tag === "Admitted") await limiter.settle(a.reservation, 5)
    expect(state.calls).toBe(0)
  })

  it("a refusal carries the limit, whole seconds to wait and the x-ratelimit figures", async () => {
    const limiter = makeLimiter({ store: memoryStore() })
    const spec = { requestsPerMinute: 2, tokensPerMinute: 1000, tokensPerDay: 5000 }
    const first = await limiter.admit("k", spec, 300, T0)
    expect(first._tag === "Admitted" && first.figures).toEqual({
      limitRequests: 2,
      remainingRequests: 1,
      resetRequestsMs: 60_000,
      limitTokens: 1000,
      remainingTokens: 700,
      resetTokensMs: 60_000
    })
    await limiter.admit("k", spec, 300, T0 + 500)
    const r = refused(await limiter.admit("k", spec, 300, T0 + 1500))
    expect(r.limit).toBe("requests_per_minute")
    expect(r.retryAfterMs).toBe(58_500)
    expect(r.retryAfterSeconds).toBe(59)
    expect(r.figures).toMatchObject({ remainingRequests: 0, resetRequestsMs: 58_500, remainingTokens: 400 })
    expect(refusalHeaders(r)).toEqual([
      ["retry-after", "59"],
      ["retry-after-ms", "58500"],
      ["x-ratelimit-limit-requests", "2"],
      ["x-ratelimit-remaining-requests", "0"],
      ["x-ratelimit-reset-requests", "58.5s"],
      ["x-ratelimit-limit-tokens", "1000"],
      ["x-ratelimit-remaining-tokens", "400"],
      ["x-ratelimit-reset-tokens", "58.5s"]
    ])
    expect(refusalMessage("team-a", r)).toContain("requests per minute")
  })

  it("the token figures report the budget with the least room left", async () => {
    const limiter = makeLimiter({ store: memoryStore() })
    const a = await limiter.admit("k", { tokensPerMinute: 10_000, tokensPerDay: 1000 }, 400, T0)
    if (a._tag !== "Admitted" || a.figures === undefined) throw new Error("expected an admission with figures")
    expect(a.figures).toMatchObject({ limitRequests: -1, limitTokens: 1000, remainingTokens: 600 })
    expect(a.figures.resetTokensMs).toBe(12 * 3_600_000)
    expect(rateLimitHeaders(a.figures)).toEqual([
      ["x-ratelimit-limit-tokens", "1000"],
      ["x-ratelimit-remaining-tokens", "600"],
      ["x-ratelimit-reset-tokens", "12h0m0s"]
    ])
  })

  it("open: a failing store admits, logged once per transition and counted; settling never throws", async () => {
    const { store, state } = flakyStore()
    const { lines, logger } = capture()
    const seen: Array<boolean> = []
    let failures = 0
    const limiter = makeLimiter({
      store,
      logger,
      onStoreFailure: () => failures++,
      onStoreTransition: (up) => seen.push(up)
    })
    const spec = { requestsPerMinute: 1 }
    const held = await limiter.admit("k", spec, 0, T0)
    state.down = true
    for (let i = 0; i < 20; i++) {
      const a = await limiter.admit("k", spec, 0, T0 + i)
      expect(a).toMatchObject({ _tag: "Admitted", figures: undefined, reservation: { unmetered: true } })
      if (a._tag === "Admitted") await limiter.settle(a.reservation, 10)
    }
    if (held._tag === "Admitted") await limiter.settle(held.reservation, 1)
    expect(failures).toBe(21)
    expect(limiter.stats()).toEqual({ storeErrors: 21, storeDown: true, outages: 1 })
    state.down = false
    expect(refused(await limiter.admit("k", spec, 0, T0 + 100)).limit).toBe("requests_per_minute")
    expect(refused(await limiter.admit("k", spec, 0, T0 + 200)).limit).toBe("requests_per_minute")
    expect(lines.filter((l) => l.includes("limits store unavailable")).length).toBe(1)
    expect(lines.filter((l) => l.includes("limits store available again")).length).toBe(1)
    expect(seen).toEqual([false, true])
    state.down = true
    await limiter.admit("k", spec, 0, T0 + 300)
    expect(limiter.stats().outages).toBe(2)
  })

  it("closed: a failing store refuses with StoreError", async () => {
    const { store, state } = flakyStore()
    const limiter = makeLimiter({ store, onStoreError: "closed" })
    state.down = true
    expect((await limiter.admit("k", { concurrentRequests: 1 }, 0, T0))._tag).toBe("StoreError")
    state.down = false
    expect((await limiter.admit("k", { concurrentRequests: 1 }, 0, T0))._tag).toBe("Admitted")
  })

  it("openLimiter without settings: memory, open", async () => {
    const limiter = await openLimiter({})
    expect((await limiter.admit("k", { requestsPerMinute: 1 }, 0, T0))._tag).toBe("Admitted")
    expect((await limiter.admit("k", { requestsPerMinute: 1 }, 0, T0 + 1))._tag).toBe("Refused")
    await limiter.close()
  })

  it("inspect: figures per key name for /keys", async () => {
    const limiter = makeLimiter({ store: memoryStore() })
    const spec = { requestsPerMinute: 10, concurrentRequests: 2, tokensPerMonth: 1_000_000 }
    const a = await limiter.admit("team-a", spec, 100, T0)
    if (a._tag === "Admitted") await limiter.settle(a.reservation, 250)
    await limiter.admit("team-a", spec, 100, T0 + 1000)
    const [u, v] = await limiter.inspect(
      [
        { name: "team-a", spec },
        { name: "team-b", spec: {} }
      ],
      T0 + 2000
    )
    expect(u).toEqual({
      name: "team-a",
      requestsPerMinute: { limit: 10, used: 2, remaining: 8, resetMs: 58_000 },
      tokensPerMinute: { limit: null, used: 0, remaining: null, resetMs: 0 },
      concurrentRequests: { limit: 2, used: 1, remaining: 1, resetMs: 0 },
      tokensPerDay: { limit: null, used: 0, remaining: null, resetMs: 0 },
      tokensPerMonth: { limit: 1_000_000, used: 350, remaining: 999_650, resetMs: Date.UTC(2026, 11, 1) - T0 - 2000 }
    })
    expect(v.requestsPerMinute.limit).toBeNull()
  })
})

describe("what clients see", () => {
  it("durations in OpenAI's format, and the reservation estimate", () => {
    expect([0, 20, 999, 1000, 1500, 59_999, 60_000, 61_250, 3_600_000, 3_723_000].map(formatDuration)).toEqual([
      "0ms",
      "20ms",
      "999ms",
      "1s",
      "1.5s",
      "59.999s",
      "1m0s",
      "1m1.25s",
      "1h0m0s",
      "1h2m3s"
    ])
    expect(estimateTokens(4000, 256, 4096)).toBe(1256)
    expect(estimateTokens(4001, undefined, 4096)).toBe(5097)
  })

  describe("the official SDKs raise their own rate-limit error", () => {
    let server: http.Server
    let origin = ""
    let r: ReturnType<typeof refused>

    beforeAll(async () => {
      const limiter = makeLimiter({ store: memoryStore() })
      await limiter.admit("k", { requestsPerMinute: 1 }, 0, T0)
      r = refused(await limiter.admit("k", { requestsPerMinute: 1 }, 0, T0 + 10_000))
      server = http.createServer((req, res) => {
        const type = req.url?.startsWith("/anthropic")
          ? "anthropic"
          : req.url?.startsWith("/gemini")
            ? "gemini"
            : "openai"
        const body = refusalBody(type, refusalMessage("team-a", r))
        res.writeHead(429, [["content-type", "application/json"], ...refusalHeaders(r)].flat())
        res.end(body)
      })
      await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok))
      origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    })
    afterAll(() => new Promise<void>((ok) => server.close(() => ok())))

    it("openai → OpenAI.RateLimitError", async () => {
      const c = new OpenAI({ apiKey: "sk-test", baseURL: `${origin}/v1`, maxRetries: 0 })
      const e = await c.chat.completions
        .create({ model: "m", messages: [{ role: "user", content: "x" }] })
        .catch((x) => x)
      expect(e).toBeInstanceOf(OpenAI.RateLimitError)
      expect((e as InstanceType<typeof OpenAI.RateLimitError>).headers.get("retry-after")).toBe("50")
      expect((e as Error).message).toContain("requests per minute")
    })

    it("anthropic → Anthropic.RateLimitError", async () => {
      const c = new Anthropic({ apiKey: "sk-ant-test", baseURL: `${origin}/anthropic`, maxRetries: 0 })
      const e = await c.messages
        .create({ model: "m", max_tokens: 8, messages: [{ role: "user", content: "x" }] })
        .catch((x) => x)
      expect(e).toBeInstanceOf(Anthropic.RateLimitError)
      expect((e as InstanceType<typeof Anthropic.RateLimitError>).error).toMatchObject({
        type: "error",
        error: { type: "rate_limit_error" }
      })
    })

    it("gemini → ApiError 429 RESOURCE_EXHAUSTED", async () => {
      const c = new GoogleGenAI({
        apiKey: "g-test",
        httpOptions: { baseUrl: `${origin}/gemini`, retryOptions: { attempts: 1 } }
      })
      const e = await c.models.generateContent({ model: "gemini-2.5-flash", contents: "x" }).catch((x) => x)
      expect(e).toBeInstanceOf(ApiError)
      expect((e as ApiError).status).toBe(429)
      expect((e as ApiError).message).toContain("RESOURCE_EXHAUSTED")
    })
  })
})
