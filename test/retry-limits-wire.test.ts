// Retries (SPEC §11) and per-key limits (SPEC §12) together, over real sockets against mock providers that fail on
// command (src/mock/faults.ts), with the real memory Limiter wrapped to count its calls: a retried request is
// admitted once (one request of `requests_per_minute`, one `concurrent_requests` slot) and settled once, to the
// final attempt; a `retry.max_wait` wait holds its slot and gives it back when the client leaves (no upstream call
// after that); a first-token retry settles once; the proxy's own cooling 429 reserves nothing; a WebSocket
// handshake retried is one admission; a CONNECT or WebSocket client leaving during a wait ends the exchange at
// once and nothing reaches the upstream after.
import * as http from "node:http"
import { describe, expect, it } from "vitest"
import WebSocket from "ws"
import type { Limiter } from "../src/limits/limiter.js"
import { openLimiter } from "../src/limits/open.js"
import type { KeyUsage } from "../src/limits/types.js"
import type { FaultRule } from "../src/mock/faults.js"
import type { Exchange } from "../src/proxy/exchange.js"
import { cleanupAfterEach, deadPort, listen, sleep, until } from "./support/cleanup.js"
import { type Answer, type PostOptions, postAndLeave, post as postJson } from "./support/http.js"
import type { MockProvider } from "./support/mockProvider.js"
import { startRequestPath } from "./support/requestPath.js"

const CLIENT = "sk-client-TOPSECRET-1"
const CHAT = JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }], max_tokens: 50 })
const CHAT_STREAM = JSON.stringify({
  model: "gpt-4o-mini",
  stream: true,
  messages: [{ role: "user", content: "hi" }],
  max_tokens: 50
})

const cleanup = cleanupAfterEach()

const mock = (key: string, faults?: Array<FaultRule>): Promise<MockProvider> =>
  cleanup.mock({ keys: { openai: key }, faults })

interface Calls {
  admit: number
  settle: Array<number>
  release: number
}

interface Harness {
  readonly port: number
  readonly ended: Array<{ status: number; attempts: number; outcome: string; tokens: number | undefined }>
  readonly calls: Calls
  readonly usage: () => Promise<KeyUsage>
}

/** The request path with the memory Limiter (its calls counted) and the log phase captured. */
const harness = async (yaml: string): Promise<Harness> => {
  const real = await openLimiter({ store: "memory" })
  cleanup.defer(() => real.close())
  const calls: Calls = { admit: 0, settle: [], release: 0 }
  const limiter: Limiter = {
    ...real,
    admit: (key, spec, estimate, now) => {
      calls.admit++
      return real.admit(key, spec, estimate, now)
    },
    settle: (r, tokens) => {
      calls.settle.push(tokens)
      return real.settle(r, tokens)
    },
    release: (r) => {
      calls.release++
      return real.release(r)
    }
  }
  const ended: Harness["ended"] = []
  const { port, snapshot } = await startRequestPath(cleanup, yaml, {
    services: {
      limits: { limiter: () => limiter, defaultOutputTokens: () => 700 },
      onEnd: (ex: Exchange) =>
        ended.push({
          status: ex.status,
          attempts: ex.attempts,
          outcome: ex.outcome,
          tokens:
            ex.usage === undefined
              ? undefined
              : ex.usage.input + ex.usage.cacheRead + ex.usage.cacheWrite + ex.usage.output
        })
    }
  })
  const spec = snapshot.keyLimits.get("team")!
  const usage = async () => (await real.inspect([{ name: "team", spec }]))[0]
  return { port, ended, calls, usage }
}

const config = (limits: string, providers: Array<string>, extra = "") => `
http_port: 0
auth_keys:
  - {name: team, key: ${CLIENT}, limits: {${limits}}}
${extra}
providers:
${providers.map((p) => `  - ${p}`).join("\n")}
`

const provider = (m: MockProvider | number, extra: string) =>
  `{ type: openai, host: "llm.test", endpoint: "127.0.0.1:${typeof m === "number" ? m : m.port}", tls: false, ${extra} }`

/** The team key with `limits`, and providers A (sk-a, failing by `faults`, first by priority) and B (sk-b). */
const aThenB = async (
  limits: string,
  faults: Array<FaultRule>,
  o: { bFaults?: Array<FaultRule>; extra?: string } = {}
): Promise<{ a: MockProvider; b: MockProvider; h: Harness }> => {
  const a = await mock("sk-a", faults)
  const b = await mock("sk-b", o.bFaults)
  const h = await harness(
    config(limits, [provider(a, 'api_key: "sk-a", priority: 1'), provider(b, 'api_key: "sk-b"')], o.extra)
  )
  return { a, b, h }
}

/**
 * The team key with `limits`, one provider (sk-a) whose first answer is a 429 asking for 1.5 s of cool-down, and
 * `retry.max_wait: 3s` (so a request arriving while the key cools waits for it).
 */
const onlyKeyLimited = async (limits: string): Promise<{ a: MockProvider; h: Harness }> => {
  const a = await mock("sk-a", [{ status: 429, retryAfterMs: 1500, times: 1 }])
  const h = await harness(config(limits, [provider(a, 'api_key: "sk-a"')], "retry: { max_wait: 3s }"))
  return { a, h }
}

/** The team key's request to llm.test (CHAT unless another body is given). */
const asTeam = (body: string): PostOptions => ({
  host: "llm.test",
  headers: { authorization: `Bearer ${CLIENT}` },
  body
})

const post = (port: number, body = CHAT): Promise<Answer> => postJson(port, asTeam(body))

/** Sends a request and destroys it after `ms` (before any answer). */
const abortAfter = (port: number, ms: number, body = CHAT): Promise<void> => postAndLeave(port, ms, asTeam(body))

describe("a retried request is admitted once and settled once", () => {
  it("503 then 200: one request of requests_per_minute, the slot back, settled once on the estimate", async () => {
    const { a, b, h } = await aThenB("requests_per_minute: 3, concurrent_requests: 1, tokens_per_minute: 100000", [
      { status: 503 }
    ])
    expect((await post(h.port)).status).toBe(200)
    await until(() => h.ended.length === 1)
    expect(h.ended[0]).toMatchObject({ status: 200, attempts: 2 })
    expect(a.counts().requests + b.counts().requests).toBe(2)
    expect(h.calls.admit).toBe(1)
    expect(h.calls.settle.length + h.calls.release).toBe(1)
    const u = await h.usage()
    expect(u.requestsPerMinute.used).toBe(1)
    expect(u.concurrentRequests.used).toBe(0)
    // exactly two more fit in the minute, and (one slot) each after the other
    expect((await post(h.port)).status).toBe(200)
    expect((await post(h.port)).status).toBe(200)
    expect((await post(h.port)).status).toBe(429)
  })

  it("a connect failure then success: one admission, the slot released once", async () => {
    const dead = await deadPort()
    const b = await mock("sk-b")
    const h = await harness(
      config("requests_per_minute: 10, concurrent_requests: 1", [
        provider(dead, 'api_key: "sk-a", priority: 1'),
        provider(b, 'api_key: "sk-b"')
      ])
    )
    expect((await post(h.port)).status).toBe(200)
    await until(() => h.ended.length === 1)
    expect(h.ended[0]).toMatchObject({ status: 200, attempts: 2 })
    expect([h.calls.admit, h.calls.settle.length + h.calls.release]).toEqual([1, 1])
    const u = await h.usage()
    expect([u.requestsPerMinute.used, u.concurrentRequests.used]).toEqual([1, 0])
  })

  it("every attempt failing: the last answer relayed, the reservation released (no tokens counted)", async () => {
    const { h } = await aThenB("concurrent_requests: 1, tokens_per_minute: 100000", [{ status: 503 }], {
      bFaults: [{ status: 529, body: "busy" }]
    })
    expect((await post(h.port)).status).toBe(529)
    await until(() => h.ended.length === 1)
    expect([h.calls.admit, h.calls.settle.length, h.calls.release]).toEqual([1, 0, 1])
    const u = await h.usage()
    expect([u.tokensPerMinute.used, u.concurrentRequests.used]).toEqual([0, 0])
  })
})

describe("first_token retry with a token limit", () => {
  it("the stream replaced after its deadline settles once, to the exact usage of the stream relayed", async () => {
    const { h } = await aThenB(
      "tokens_per_minute: 100000, concurrent_requests: 1",
      [{ stallMs: 3000, stallAfter: 1 }],
      { extra: "timeouts: { first_token: 300ms }" }
    )
    const r = await post(h.port, CHAT_STREAM)
    expect(r.status).toBe(200)
    expect(r.text).toContain("[DONE]")
    await until(() => h.ended.length === 1)
    expect(h.ended[0]).toMatchObject({ status: 200, attempts: 2, outcome: "ok" })
    expect(h.calls.admit).toBe(1)
    expect(h.calls.release).toBe(0)
    expect(h.calls.settle.length).toBe(1)
    const u = await h.usage()
    // what was settled is what the window holds: the relayed stream's own usage (read by the usage tap of the
    // attempt that reached the client; the abandoned one had none), once (not twice)
    expect(h.ended[0]?.tokens).toBeGreaterThan(0)
    expect(h.calls.settle[0]).toBe(h.ended[0]?.tokens)
    expect(u.tokensPerMinute.used).toBe(h.calls.settle[0])
    expect(u.concurrentRequests.used).toBe(0)
  })
})

describe("cooling and retry.max_wait", () => {
  it("the proxy's own cooling 429 reserves nothing; a max_wait wait holds one slot and is settled once", async () => {
    const { a, h } = await onlyKeyLimited("requests_per_minute: 10, concurrent_requests: 1, tokens_per_minute: 100000")
    // the provider's 429 (no other key): relayed, one admission, released (its tokens not counted)
    expect((await post(h.port)).status).toBe(429)
    await until(() => h.ended.length === 1)
    expect([h.calls.settle.length, h.calls.release, (await h.usage()).tokensPerMinute.used]).toEqual([0, 1, 0])
    // the key cools 1.5 s: the next request waits for it, holding its slot meanwhile
    const waiting = post(h.port)
    await until(() => h.calls.admit === 2)
    await sleep(100)
    expect((await h.usage()).concurrentRequests.used).toBe(1)
    // a second one is refused by concurrent_requests (the waiting one holds the only slot)
    const refused = await post(h.port)
    expect(refused.status).toBe(429)
    expect(JSON.parse(refused.text).error.type).toBe("rate_limit_exceeded")
    expect((await waiting).status).toBe(200)
    await until(() => h.ended.length === 3)
    const u = await h.usage()
    // the refusal is not counted (a store counts only what it admits)
    expect([u.concurrentRequests.used, u.requestsPerMinute.used]).toEqual([0, 2])
    // the waited request settled once, on its estimate: the only tokens in the window
    expect(h.calls.settle.length).toBe(1)
    expect(u.tokensPerMinute.used).toBe(h.calls.settle[0])
    expect(a.counts().requests).toBe(2)
  })

  it("beyond max_wait the proxy answers 429 itself before admission: not counted against requests_per_minute", async () => {
    const a = await mock("sk-a", [{ status: 429, retryAfter: 30, times: 1 }])
    const h = await harness(config("requests_per_minute: 10", [provider(a, 'api_key: "sk-a"')]))
    expect((await post(h.port)).status).toBe(429)
    for (let i = 0; i < 3; i++) expect((await post(h.port)).status).toBe(429)
    await until(() => h.ended.length === 4)
    expect(h.calls.admit).toBe(1)
    expect((await h.usage()).requestsPerMinute.used).toBe(1)
    expect(a.counts().requests).toBe(1)
  })
})

describe("client aborts", () => {
  it("50 clients leaving during a max_wait wait: every slot back, no upstream request after they left", async () => {
    const { a, h } = await onlyKeyLimited("concurrent_requests: 50")
    expect((await post(h.port)).status).toBe(429)
    await Promise.all(Array.from({ length: 50 }, () => abortAfter(h.port, 200)))
    expect(await until(() => h.ended.length === 51)).toBe(true)
    expect((await h.usage()).concurrentRequests.used).toBe(0)
    // past the cool-down: none of the abandoned waits reached the upstream
    await sleep(1800)
    expect(a.counts().requests).toBe(1)
    expect([h.calls.admit, h.calls.settle.length + h.calls.release]).toEqual([51, 51])
  }, 15_000)

  it("50 clients leaving during the first-token hold: every slot back, no replacement attempt after they left", async () => {
    const { b, h } = await aThenB(
      "concurrent_requests: 50, tokens_per_minute: 10000000",
      [{ stallMs: 2000, stallAfter: 1 }],
      { extra: "timeouts: { first_token: 1s }" }
    )
    await Promise.all(Array.from({ length: 50 }, () => abortAfter(h.port, 300, CHAT_STREAM)))
    expect(await until(() => h.ended.length === 50)).toBe(true)
    const u = await h.usage()
    expect([u.concurrentRequests.used, u.tokensPerMinute.used]).toEqual([0, 0])
    await sleep(1200)
    expect(b.counts().requests).toBe(0)
    expect(h.calls.settle.length + h.calls.release).toBe(50)
  }, 15_000)
})

describe("WebSocket handshake retried", () => {
  it("a handshake refused 503 then opened elsewhere: one admission, the slot held while open, back after", async () => {
    const { a, b, h } = await aThenB("requests_per_minute: 10, concurrent_requests: 1", [{ status: 503 }])
    const ws = new WebSocket(`ws://127.0.0.1:${h.port}/v1/realtime?model=gpt-realtime`, {
      headers: { host: "llm.test", authorization: `Bearer ${CLIENT}` }
    })
    await new Promise<void>((resolve, reject) => {
      ws.on("open", () => resolve())
      ws.on("unexpected-response", (_q, res) => reject(new Error(`status ${res.statusCode}`)))
      ws.on("error", reject)
    })
    expect(a.counts().requests + b.counts().requests).toBe(2)
    expect(h.calls.admit).toBe(1)
    expect((await h.usage()).concurrentRequests.used).toBe(1)
    ws.close()
    expect(await until(() => h.ended.length === 1)).toBe(true)
    const u = await h.usage()
    expect([u.requestsPerMinute.used, u.concurrentRequests.used]).toEqual([1, 0])
    expect(h.calls.settle.length + h.calls.release).toBe(1)
  })
})

describe("CONNECT waiting for a cooling key", () => {
  it("the client leaving during the max_wait wait: its slot back, and no connection to the provider after", async () => {
    // a provider that asks for 1.5 s of cool-down, counting the TCP connections it gets
    let connections = 0
    const upstream = http.createServer((_req, res) => {
      res.writeHead(429, { "retry-after-ms": "1500", "content-type": "application/json", "content-length": 2 })
      res.end("{}")
    })
    upstream.on("connection", () => connections++)
    const upPort = await listen(upstream)
    cleanup.defer(async () => {
      upstream.closeAllConnections()
      await new Promise((r) => upstream.close(r))
    })
    const h = await harness(
      config(
        "concurrent_requests: 5",
        [provider(upPort, 'api_key: "sk-a"')],
        "retry: { max_wait: 3s }\nconnect_tunnel_enabled: true"
      )
    )
    expect((await post(h.port)).status).toBe(429)
    expect(connections).toBe(1)
    // the key cools 1.5 s: the tunnel waits for it, and its client leaves after 200 ms
    const client = (await import("node:net")).connect(h.port, "127.0.0.1")
    client.on("error", () => undefined)
    let answered = ""
    client.on("data", (d: Buffer) => {
      answered += d.toString()
    })
    client.write(
      `CONNECT llm.test:${upPort} HTTP/1.1\r\nHost: llm.test:${upPort}\r\nProxy-Authorization: Bearer ${CLIENT}\r\n\r\n`
    )
    await sleep(200)
    expect(h.calls.admit).toBe(2)
    client.destroy()
    // ended while still waiting (before the cool-down passed): no attempt was made
    expect(await until(() => h.ended.length === 2)).toBe(true)
    expect(h.ended[1]).toMatchObject({ status: 0, attempts: 0 })
    expect((await h.usage()).concurrentRequests.used).toBe(0)
    await sleep(1700)
    expect(answered).toBe("")
    expect(connections).toBe(1)
  }, 10_000)
})

describe("WebSocket waiting for a cooling key", () => {
  it("the client leaving during the max_wait wait: its slot back, no handshake sent upstream after", async () => {
    const { a, h } = await onlyKeyLimited("concurrent_requests: 5")
    expect((await post(h.port)).status).toBe(429)
    const client = (await import("node:net")).connect(h.port, "127.0.0.1")
    client.on("error", () => undefined)
    client.write(
      "GET /v1/realtime?model=gpt-realtime HTTP/1.1\r\nHost: llm.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
        `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nAuthorization: Bearer ${CLIENT}\r\n\r\n`
    )
    await sleep(200)
    expect(h.calls.admit).toBe(2)
    client.destroy()
    expect(await until(() => h.ended.length === 2)).toBe(true)
    expect(h.ended[1]).toMatchObject({ status: 0, attempts: 0 })
    expect((await h.usage()).concurrentRequests.used).toBe(0)
    await sleep(1700)
    expect(a.counts().requests).toBe(1)
  }, 10_000)
})
