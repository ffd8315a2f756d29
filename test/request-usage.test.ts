// Token usage read on the side in the response-filter phase (SPEC §10) and recorded once by the log phase: after
// requests through the proxy whose mock answers report known usage (x-mock-usage), `/metrics` shows exactly those
// tokens per key name, provider, model and type — an OpenAI JSON answer, an OpenAI stream that asked for its usage
// chunk, and an Anthropic JSON answer — and the client's bytes are the mock's. Full layers, real sockets.
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { h1 } from "./support/http.js"
import { seriesValue } from "./support/metrics.js"
import { DEFAULT_KEYS, type MockProvider, startMockProvider } from "./support/mockProvider.js"
import { type RunningProxy, startProxy } from "./support/proxy.js"

let mock: MockProvider
let proxy: RunningProxy
let admin: number

beforeAll(async () => {
  mock = await startMockProvider()
  proxy = await startProxy(`
http_port: 0
admin: {port: 0}
auth_keys:
  - {name: team-u, key: client-u}
providers:
  - {type: openai, host: oa.test, endpoint: "127.0.0.1:${mock.port}", tls: false, api_key: ${DEFAULT_KEYS.openai}}
  - {type: anthropic, host: an.test, endpoint: "127.0.0.1:${mock.port}", tls: false, api_key: ${DEFAULT_KEYS.anthropic}}
`)
  admin = proxy.adminPort()!
})
afterAll(async () => {
  await proxy?.close()
  await mock?.close()
})

const tokens = (text: string, provider: string, model: string, type: string) =>
  seriesValue(text, `openproxy_tokens_total{key="team-u",provider="${provider}",model="${model}",type="${type}"}`)

describe("usage through the phases", () => {
  it("OpenAI JSON and stream, Anthropic JSON: exact tokens by key, provider, model and type", async () => {
    const usage = "input=1200,output=300,cache_read=1024,cache_write=0,reasoning=120"
    const json = await h1(proxy.httpPort!, {
      host: "oa.test",
      method: "POST",
      path: "/v1/chat/completions",
      headers: [
        ["Authorization", "Bearer client-u"],
        ["Content-Type", "application/json"],
        ["x-mock-usage", usage]
      ],
      body: JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] })
    })
    expect(json.status).toBe(200)
    expect(JSON.parse(json.text).usage).toBeDefined()
    const stream = await h1(proxy.httpPort!, {
      host: "oa.test",
      method: "POST",
      path: "/v1/chat/completions",
      headers: [
        ["Authorization", "Bearer client-u"],
        ["Content-Type", "application/json"],
        ["x-mock-usage", usage]
      ],
      body: JSON.stringify({
        model: "gpt-4o-mini",
        stream: true,
        stream_options: { include_usage: true },
        messages: [{ role: "user", content: "hi" }]
      })
    })
    expect(stream.status).toBe(200)
    expect(stream.text).toContain("data: [DONE]")
    const claude = await h1(proxy.httpPort!, {
      host: "an.test",
      method: "POST",
      path: "/v1/messages",
      headers: [
        ["x-api-key", "client-u"],
        ["anthropic-version", "2023-06-01"],
        ["Content-Type", "application/json"],
        ["x-mock-usage", "input=50,output=7,cache_read=20,cache_write=30,reasoning=0"]
      ],
      body: JSON.stringify({ model: "claude-sonnet-4", max_tokens: 16, messages: [{ role: "user", content: "hi" }] })
    })
    expect(claude.status).toBe(200)
    await new Promise((r) => setTimeout(r, 100))
    const text = (await h1(admin, { path: "/metrics" })).text
    expect(tokens(text, "oa.test#0", "gpt-4o-mini", "input")).toBe(2400)
    expect(tokens(text, "oa.test#0", "gpt-4o-mini", "output")).toBe(600)
    expect(tokens(text, "oa.test#0", "gpt-4o-mini", "cache_read")).toBe(2048)
    expect(tokens(text, "oa.test#0", "gpt-4o-mini", "reasoning")).toBe(240)
    expect(tokens(text, "an.test#1", "claude-sonnet-4", "input")).toBe(50)
    expect(tokens(text, "an.test#1", "claude-sonnet-4", "output")).toBe(7)
    expect(tokens(text, "an.test#1", "claude-sonnet-4", "cache_read")).toBe(20)
    expect(tokens(text, "an.test#1", "claude-sonnet-4", "cache_write")).toBe(30)
    // the stream's first content event was timed
    expect(text).toMatch(/gen_ai_server_time_to_first_token_seconds_count\{[^}]*provider="oa.test#0"[^}]*\} 1/)
  })
})
