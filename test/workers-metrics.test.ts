// /metrics with `workers: 2` adds up (SPEC §10, issue 14: "after 1,000 requests spread over both workers, /metrics
// reports 1,000"), over a real `node dist/main.js start` process and real sockets: 1,000 OpenAI Realtime WebSocket
// sessions (one `response.done` each, with the mock's usage) and 1,000 HTTP requests, each on a new connection so
// node:cluster hands them to both workers — checked by the request ids, whose prefix is random per process. The
// primary's admin port then reports exactly 1,000 of each in `openproxy_requests_total` and exactly 1,000 × the
// mock's usage in the token series, never one worker's share.
import { beforeAll, describe, expect, it } from "vitest"
import WebSocket from "ws"
import { cleanupAfterAll, freePort, sleep } from "./support/cleanup.js"
import { h1 } from "./support/http.js"
import { seriesValue } from "./support/metrics.js"
import { DEFAULT_KEYS } from "./support/mockProvider.js"

const N = 1000
const CONCURRENCY = 16
const MOCK_USAGE = "input=1200,output=300,cache_read=1024"
const U = { input: 1200, output: 300, cacheRead: 1024 }

const cleanup = cleanupAfterAll()
let admin = 0
let port = 0

beforeAll(async () => {
  const mock = await cleanup.mock()
  const started = await cleanup.process(`http_port: ${await freePort()}
http_bind_address: 127.0.0.1
workers: 2
admin: {port: 0}
auth_keys:
  - {name: rt-w, key: client-rt-w}
  - {name: http-w, key: client-http-w}
providers:
  - { type: openai, host: "rt.test", endpoint: "127.0.0.1:${mock.port}", tls: false, api_key: ${DEFAULT_KEYS.openai} }
  - { type: anthropic, host: "msg.test", endpoint: "127.0.0.1:${mock.port}", tls: false, api_key: ${DEFAULT_KEYS.anthropic} }
`)
  admin = started.adminPort
  port = started.httpPort
}, 30_000)

/** The per-process part of a generated request id (`<12 random chars>-<counter>`). */
const processOf = (id: string | undefined): string => {
  expect(id).toMatch(/^[A-Za-z0-9_-]{12}-[0-9a-z]+$/)
  return id!.slice(0, 12)
}

/** Runs `n` tasks, `CONCURRENCY` at a time. */
const run = async (n: number, task: (i: number) => Promise<void>): Promise<void> => {
  let next = 0
  const lane = async () => {
    while (next < n) await task(next++)
  }
  await Promise.all(Array.from({ length: CONCURRENCY }, lane))
}

/** One Realtime session on a new connection: one response.create, its response.done, close. The 101's id. */
const realtimeSession = () =>
  new Promise<string | undefined>((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/v1/realtime?model=gpt-realtime-mini`, {
      headers: { Host: "rt.test", Authorization: "Bearer client-rt-w", "x-mock-usage": MOCK_USAGE },
      perMessageDeflate: false
    })
    let id: string | undefined
    ws.once("upgrade", (res) => {
      id = res.headers["x-request-id"] as string | undefined
    })
    ws.on("message", (data: Buffer) => {
      const type = JSON.parse(data.toString()).type
      if (type === "session.created") ws.send(JSON.stringify({ type: "response.create" }))
      else if (type === "response.done") ws.close(1000)
    })
    ws.once("close", () => resolve(id))
    ws.once("error", reject)
  })

const scrape = async () => (await h1(admin, { path: "/metrics" })).text

/** Polls /metrics until `series` reads `value` (bounded: exchanges are recorded as they end); the last text. */
const scrapeUntil = async (series: string, value: number): Promise<string> => {
  let text = ""
  for (let i = 0; i < 100; i++) {
    text = await scrape()
    if (seriesValue(text, series) === value) break
    await sleep(100)
  }
  return text
}

describe("workers: 2, 1,000 requests", () => {
  it("/metrics on the primary's admin port sums both workers exactly", async () => {
    const wsProcesses = new Map<string, number>()
    await run(N, async () => {
      const p = processOf(await realtimeSession())
      wsProcesses.set(p, (wsProcesses.get(p) ?? 0) + 1)
    })
    const httpProcesses = new Map<string, number>()
    await run(N, async () => {
      const r = await h1(port, {
        host: "msg.test",
        path: "/v1/messages",
        method: "POST",
        headers: [
          ["x-api-key", "client-http-w"],
          ["content-type", "application/json"],
          ["anthropic-version", "2023-06-01"],
          ["x-mock-usage", MOCK_USAGE]
        ],
        body: JSON.stringify({
          model: "claude-sonnet-4-5",
          max_tokens: 16,
          messages: [{ role: "user", content: "hi" }]
        })
      })
      expect(r.status).toBe(200)
      const p = processOf(r.headers["x-request-id"] as string | undefined)
      httpProcesses.set(p, (httpProcesses.get(p) ?? 0) + 1)
    })
    // Both workers served: two request-id prefixes, each with a real share (cluster's round robin).
    for (const seen of [wsProcesses, httpProcesses]) {
      expect(seen.size).toBe(2)
      expect([...seen.values()].reduce((a, b) => a + b)).toBe(N)
      expect(Math.min(...seen.values())).toBeGreaterThan(N / 10)
    }
    expect([...wsProcesses.keys()].sort()).toEqual([...httpProcesses.keys()].sort())

    const ws = 'openproxy_requests_total{provider="rt.test#0",key="rt-w",code="101",protocol="ws"}'
    const text = await scrapeUntil(ws, N)
    expect(seriesValue(text, ws)).toBe(N)
    expect(
      seriesValue(text, 'openproxy_requests_total{provider="msg.test#1",key="http-w",code="200",protocol="http/1.1"}')
    ).toBe(N)
    const total = text
      .split("\n")
      .filter((l) => l.startsWith("openproxy_requests_total{"))
      .reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(" ") + 1)), 0)
    expect(total).toBe(2 * N)
    /** Input, cache-read and output tokens of one key, provider and model. */
    const tokens = (key: string, provider: string, model: string) =>
      ["input", "cache_read", "output"].map((type) =>
        seriesValue(text, `openproxy_tokens_total{key="${key}",provider="${provider}",model="${model}",type="${type}"}`)
      )
    expect(tokens("rt-w", "rt.test#0", "gpt-realtime-mini")).toEqual([N * U.input, N * U.cacheRead, N * U.output])
    const genAi = (suffix: string, type: string) =>
      seriesValue(
        text,
        `gen_ai_client_token_usage_${suffix}{gen_ai_token_type="${type}",gen_ai_provider_name="openai",gen_ai_request_model="gpt-realtime-mini",gen_ai_response_model="gpt-realtime-mini"}`
      )
    expect([genAi("sum", "input"), genAi("count", "input"), genAi("sum", "output")]).toEqual([
      N * (U.input + U.cacheRead),
      N,
      N * U.output
    ])
    // The HTTP answers' usage too (the Anthropic JSON tap), summed over both workers.
    expect(tokens("http-w", "msg.test#1", "claude-sonnet-4-5")).toEqual([N * U.input, N * U.cacheRead, N * U.output])
    // Nothing left open in either worker.
    expect(seriesValue(text, "openproxy_open_websockets")).toBe(0)
    expect(seriesValue(text, "openproxy_inflight_requests")).toBe(0)
  })
})
