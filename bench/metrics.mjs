// Micro-benchmark: what one metric update costs with prom-client (labels object per call, a cached
// `.labels(...)` child) against a plain in-process accumulator, per call, in ns. The request path records ~10
// updates per request at its end (a counter, 3 histograms, token counters), so this says whether recording
// through prom-client directly fits the budget (SPEC/issue 14: ≤ +10 µs c1 p50, ≥ 0.95x req/s).
// Run: npm run build && node bench/metrics.mjs [iterations]
import client from "prom-client"

const N = Number(process.argv[2] ?? 1_000_000)
const ROUNDS = 7
const registry = new client.Registry()
const counter = new client.Counter({
  name: "c_total",
  help: "h",
  labelNames: ["provider", "key", "code", "protocol"],
  registers: [registry]
})
const buckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600]
const hist = new client.Histogram({
  name: "h_seconds",
  help: "h",
  labelNames: ["provider", "key", "code", "protocol"],
  buckets,
  registers: [registry]
})
const providers = ["api.openai.test#0", "api.anthropic.test#1", "gemini.test#2"]
const keys = ["team-a", "team-b", "key-1a2b3c4d"]
const codes = [200, 200, 200, 429, 500]
const protocols = ["http/1.1", "h2"]

const bench = (name, fn) => {
  const per = []
  for (let r = 0; r < ROUNDS; r++) {
    const t0 = process.hrtime.bigint()
    for (let i = 0; i < N; i++) fn(i)
    per.push(Number(process.hrtime.bigint() - t0) / N)
  }
  per.sort((a, b) => a - b)
  console.log(`${name.padEnd(58)} ${per[ROUNDS >> 1].toFixed(1).padStart(7)} ns/op (min ${per[0].toFixed(1)})`)
}

const pick = (i) => [providers[i % 3], keys[(i >> 2) % 3], codes[i % 5], protocols[(i >> 3) & 1]]
// The label values the request path would have at hand; precomputed so the loop measures the metric call only.
const sets = Array.from({ length: 1024 }, (_, i) => pick(i))

bench("counter.inc({labels}, 1), new object per call", (i) => {
  const s = sets[i & 1023]
  counter.inc({ provider: s[0], key: s[1], code: s[2], protocol: s[3] }, 1)
})
const objs = sets.map((s) => ({ provider: s[0], key: s[1], code: s[2], protocol: s[3] }))
bench("counter.inc(labels, 1), same object reused", (i) => counter.inc(objs[i & 1023], 1))
const cchildren = sets.map((s) => counter.labels(s[0], s[1], String(s[2]), s[3]))
bench("counter child (cached .labels()).inc()", (i) => cchildren[i & 1023].inc())
bench("histogram.observe({labels}, v), new object per call", (i) => {
  const s = sets[i & 1023]
  hist.observe({ provider: s[0], key: s[1], code: s[2], protocol: s[3] }, (i % 1000) / 100)
})
const hchildren = sets.map((s) => hist.labels(s[0], s[1], String(s[2]), s[3]))
bench("histogram child (cached .labels()).observe(v)", (i) => hchildren[i & 1023].observe((i % 1000) / 100))

// What openproxy does instead (src/observability/families.ts): cells found through nested Maps, read by
// prom-client at scrape time; and a whole request's `record()` (a counter, 2-3 histograms, 2 token histograms,
// 3-5 token counters). Needs `npm run build` (dist/index.js).
const { Metrics, loadConfigText } = await import("../dist/index.js").then((m) => ({
  Metrics: m.Metrics,
  loadConfigText: m.parseConfig
}))
const { Effect } = await import("effect")
const snapshot = await Effect.runPromise(
  loadConfigText(
    "http_port: 0\nproviders:\n  - {type: openai, host: a.test, endpoint: e}\n  - {type: anthropic, host: b.test, endpoint: e, api_key: k}",
    "/bench.yml",
    {}
  )
)
const m = Metrics.makeMetrics()
const family = m.registry.getSingleMetric("openproxy_requests_total")
bench("openproxy CounterFamily: .at(4 labels).value++", (i) => {
  const s = sets[i & 1023]
  family.at(s[0], s[1], String(s[2]), s[3]).value++
})
const hfamily = m.registry.getSingleMetric("openproxy_request_duration_seconds")
bench("openproxy HistogramFamily: .at(2 labels).observe(v)", (i) => {
  const s = sets[i & 1023]
  hfamily.at(s[0], s[3]).observe((i % 1000) / 100)
})
const usage = { input: 1200, output: 300, cacheRead: 800, cacheWrite: 0, reasoning: 120 }
const ends = Array.from({ length: 1024 }, (_, i) => ({
  provider: snapshot.providers[i & 1],
  keyName: keys[(i >> 2) % 3],
  status: codes[i % 5],
  protocol: protocols[(i >> 3) & 1],
  durationMs: (i % 1000) * 7,
  ttfbMs: (i % 100) * 3,
  ttftMs: i & 1 ? 120 : -1,
  model: i & 2 ? "gpt-4o-mini" : "claude-sonnet-4",
  responseModel: undefined,
  usage
}))
bench("openproxy Metrics.record(requestEnd): one whole request", (i) => m.record(ends[i & 1023]))
