// The Metrics service (SPEC §10): names and labels as specified, exact values after known records, bounded model
// labels, histogram buckets cumulative, and the families' output aggregated over "workers" like prom-client's
// cluster aggregation does it.
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { AggregatorRegistry } from "prom-client"
import { parseConfig } from "../src/config/load.js"
import { MAX_MODELS, makeModelLabel } from "../src/observability/labels.js"
import { makeMetrics, type RequestEnd } from "../src/services/Metrics.js"
import { seriesValue } from "./support/metrics.js"

const snapshot = () =>
  Effect.runPromise(
    parseConfig(
      [
        "http_port: 0",
        "providers:",
        "  - {type: openai, host: api.openai.test, endpoint: e, auth_keys: [{name: team-a, key: sk-a}]}",
        "  - {type: gemini, host: g.test, endpoint: e, api_key: k}"
      ].join("\n"),
      "/x.yml",
      {}
    )
  )

const end = (over: Partial<RequestEnd>): RequestEnd => ({
  provider: undefined,
  keyName: undefined,
  status: 200,
  protocol: "http/1.1",
  durationMs: 120,
  ttfbMs: 80,
  ttftMs: -1,
  model: undefined,
  responseModel: undefined,
  usage: undefined,
  ...over
})

describe("Metrics", () => {
  it("exposes every SPEC §10 metric name", async () => {
    const m = makeMetrics()
    const text = await m.registry.metrics()
    for (const name of [
      "openproxy_requests_total",
      "openproxy_request_duration_seconds",
      "openproxy_upstream_ttfb_seconds",
      "gen_ai_server_time_to_first_token_seconds",
      "gen_ai_client_token_usage",
      "openproxy_tokens_total",
      "openproxy_inflight_requests",
      "openproxy_open_connections",
      "openproxy_open_websockets",
      "openproxy_provider_healthy",
      "openproxy_upstream_connect_errors_total",
      "openproxy_config_reloads_total",
      "openproxy_retries_total",
      "openproxy_ratelimited_total"
    ]) {
      expect(text).toContain(`# TYPE ${name} `)
    }
  })

  it("records requests, latencies and tokens with their labels", async () => {
    const c = await snapshot()
    const [openai, gemini] = c.providers
    const m = makeMetrics()
    const usage = { input: 10, output: 7, cacheRead: 3, cacheWrite: 0, reasoning: 2 }
    m.record(end({ provider: openai, keyName: "team-a", model: "gpt-4o", ttftMs: 50, usage }))
    m.record(end({ provider: openai, keyName: "team-a", model: "gpt-4o", durationMs: 90_000, usage }))
    m.record(end({ provider: gemini, status: 429, protocol: "h2", model: "bad model name" }))
    m.record(end({ status: 404, ttfbMs: -1 }))
    m.configReload(true)
    m.configReload(false)
    m.configReload(true)
    m.connectError(gemini)
    m.live.requestStarted()
    m.live.websocketOpened()
    m.setSources({ openConnections: () => 5, providerHealth: () => [{ provider: openai, healthy: false }] })
    const t = await m.registry.metrics()
    const p = 'provider="api.openai.test#0"'
    expect(seriesValue(t, `openproxy_requests_total{${p},key="team-a",code="200",protocol="http/1.1"}`)).toBe(2)
    expect(seriesValue(t, 'openproxy_requests_total{provider="g.test#1",key="",code="429",protocol="h2"}')).toBe(1)
    expect(seriesValue(t, 'openproxy_requests_total{provider="",key="",code="404",protocol="http/1.1"}')).toBe(1)
    expect(seriesValue(t, `openproxy_tokens_total{key="team-a",${p},model="gpt-4o",type="input"}`)).toBe(20)
    expect(seriesValue(t, `openproxy_tokens_total{key="team-a",${p},model="gpt-4o",type="output"}`)).toBe(14)
    expect(seriesValue(t, `openproxy_tokens_total{key="team-a",${p},model="gpt-4o",type="cache_read"}`)).toBe(6)
    expect(seriesValue(t, `openproxy_tokens_total{key="team-a",${p},model="gpt-4o",type="reasoning"}`)).toBe(4)
    expect(t).not.toContain('type="cache_write"')
    // Cumulative buckets: 0.12 s is under 0.25, 90 s under 120.
    expect(seriesValue(t, `openproxy_request_duration_seconds_bucket{${p},protocol="http/1.1",le="0.1"}`)).toBe(0)
    expect(seriesValue(t, `openproxy_request_duration_seconds_bucket{${p},protocol="http/1.1",le="0.25"}`)).toBe(1)
    expect(seriesValue(t, `openproxy_request_duration_seconds_bucket{${p},protocol="http/1.1",le="60"}`)).toBe(1)
    expect(seriesValue(t, `openproxy_request_duration_seconds_bucket{${p},protocol="http/1.1",le="120"}`)).toBe(2)
    expect(seriesValue(t, `openproxy_request_duration_seconds_bucket{${p},protocol="http/1.1",le="+Inf"}`)).toBe(2)
    expect(seriesValue(t, `openproxy_request_duration_seconds_sum{${p},protocol="http/1.1"}`)).toBeCloseTo(90.12)
    expect(seriesValue(t, `openproxy_request_duration_seconds_count{${p},protocol="http/1.1"}`)).toBe(2)
    const ttft = `gen_ai_server_time_to_first_token_seconds_count{${p},gen_ai_provider_name="openai",gen_ai_request_model="gpt-4o"}`
    expect(seriesValue(t, ttft)).toBe(1)
    const input =
      'gen_ai_client_token_usage_sum{gen_ai_token_type="input",gen_ai_provider_name="openai",gen_ai_request_model="gpt-4o",gen_ai_response_model="gpt-4o"}'
    expect(seriesValue(t, input)).toBe(26)
    expect(seriesValue(t, 'openproxy_config_reloads_total{result="ok"}')).toBe(2)
    expect(seriesValue(t, 'openproxy_config_reloads_total{result="error"}')).toBe(1)
    expect(seriesValue(t, 'openproxy_upstream_connect_errors_total{provider="g.test#1"}')).toBe(1)
    expect(seriesValue(t, "openproxy_inflight_requests")).toBe(1)
    expect(seriesValue(t, "openproxy_open_websockets")).toBe(1)
    expect(seriesValue(t, "openproxy_open_connections")).toBe(5)
    expect(seriesValue(t, `openproxy_provider_healthy{${p}}`)).toBe(0)
  })

  it("records the same whether consecutive requests share their label values or not (the cells memo)", async () => {
    const c = await snapshot()
    const [openai, gemini] = c.providers
    const decoy = { ...gemini, hostRaw: "decoy.test", index: 9 }
    const pick = <T>(xs: ReadonlyArray<T>, i: number): T => xs[i % xs.length]
    const ends: Array<RequestEnd> = []
    for (let i = 0; i < 400; i++) {
      const slow = Math.floor(i / 6)
      ends.push(
        end({
          provider: pick([openai, openai, undefined, gemini], slow),
          keyName: pick(["team-a", undefined, "team-b"], Math.floor(i / 4)),
          status: pick([200, 200, 429, 502, 0], Math.floor(i / 5)),
          protocol: pick(["http/1.1", "h2", "ws"] as const, Math.floor(i / 9)),
          durationMs: i * 7.5,
          ttfbMs: pick([-1, 3, 4000], i),
          ttftMs: pick([-1, 20, 700], i),
          model: pick(["gpt-4o", undefined, "bad model", "gpt-4o-mini"], Math.floor(i / 3)),
          responseModel: pick(["gpt-4o-2024", undefined, "gpt-4o"], Math.floor(i / 7)),
          usage: pick(
            [
              { input: 10, output: 7, cacheRead: 3, cacheWrite: 0, reasoning: 2 },
              undefined,
              { input: 1, output: 2, cacheRead: 0, cacheWrite: 5, reasoning: 0 }
            ],
            slow
          )
        })
      )
    }
    // `reused`: as the request path records (runs of equal labels); `fresh`: a decoy before each one, so no cell
    // is ever reused; the decoy's own series (its provider and model) are dropped before comparing.
    const reused = makeMetrics()
    const fresh = makeMetrics()
    const decoyEnd = end({ provider: decoy, keyName: "decoy", status: 201, model: "decoy", responseModel: "decoy" })
    for (const e of ends) {
      const { provider, ...rest } = e
      reused.recordEnd({ ...rest, identity: provider === undefined ? undefined : { provider } }, e.durationMs)
      fresh.record(decoyEnd)
      fresh.record(e)
    }
    const series = async (m: ReturnType<typeof makeMetrics>) =>
      (await m.registry.metrics()).split("\n").filter((l) => !l.includes("decoy"))
    const want = await series(fresh)
    expect(await series(reused)).toEqual(want)
    expect(want.filter((l) => l.startsWith("openproxy_tokens_total{")).length).toBeGreaterThan(10)
  })

  it("bounds model labels: short printable tokens only, then a cap", () => {
    const modelLabel = makeModelLabel()
    expect(modelLabel("claude-3-5-sonnet-20241022")).toBe("claude-3-5-sonnet-20241022")
    expect(modelLabel("models/gemini-2.0-flash:generateContent")).toBe("models/gemini-2.0-flash:generateContent")
    expect(modelLabel("a b")).toBe("unknown")
    expect(modelLabel('x"}')).toBe("unknown")
    expect(modelLabel("x".repeat(65))).toBe("unknown")
    expect(modelLabel(undefined)).toBe("unknown")
    for (let i = 0; i < MAX_MODELS + 10; i++) modelLabel(`m-${i}`)
    expect(modelLabel("never-seen-before")).toBe("other")
    expect(modelLabel("m-1")).toBe("m-1")
    // Another instance (another embedded proxy) has its own cap.
    expect(makeModelLabel()("never-seen-before")).toBe("never-seen-before")
  })

  it("sums over workers the way the cluster aggregation does", async () => {
    const c = await snapshot()
    const workers = [makeMetrics(), makeMetrics()]
    for (const [i, m] of workers.entries()) {
      for (let n = 0; n <= i; n++) m.record(end({ provider: c.providers[0], keyName: "team-a" }))
      m.setSources({ providerHealth: () => [{ provider: c.providers[0], healthy: i === 0 }] })
    }
    const json = await Promise.all(workers.map((m) => m.registry.getMetricsAsJSON()))
    const t = await AggregatorRegistry.aggregate(json).metrics()
    const p = 'provider="api.openai.test#0"'
    expect(seriesValue(t, `openproxy_requests_total{${p},key="team-a",code="200",protocol="http/1.1"}`)).toBe(3)
    expect(seriesValue(t, `openproxy_request_duration_seconds_count{${p},protocol="http/1.1"}`)).toBe(3)
    expect(seriesValue(t, `openproxy_provider_healthy{${p}}`)).toBe(0)
  })
})
