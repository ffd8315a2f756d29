// Provider keys cooling down after a rate limit (SPEC §11) on the admin listener's `/providers` (SPEC §10), over
// real sockets: a mock answers 429 with `Retry-After` for one of a provider's two keys (and 529 with
// `retry-after-ms` for another provider's only key); `/providers` then shows which key (provider and key index),
// until when and why (status, the header that named the time), no configured secret anywhere, and the entry is gone
// once the wait is over. With `workers: 2` (a real `node dist/main.js start` process) the primary's `/providers`
// shows the key cooling in both workers (each learned it from its own 429).
import { describe, expect, it } from "vitest"
import type { KeyCooldownView, ProviderView } from "../src/observability/adminHttp.js"
import { cleanupAfterEach, freePort, sleep } from "./support/cleanup.js"
import { h1 } from "./support/http.js"
import type { MockProvider } from "./support/mockProvider.js"
import { logLines } from "./support/proxy.js"

const ADMIN_KEY = "adm-TOPSECRET-cool"
const CLIENT_KEY = "sk-client-TOPSECRET-cool"
const A1 = "sk-a1-TOPSECRET-cool"
const A2 = "sk-a2-TOPSECRET-cool"
const B = "sk-b-TOPSECRET-cool"
const SECRETS = [ADMIN_KEY, CLIENT_KEY, A1, A2, B]
const CHAT = JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] })
const cleanup = cleanupAfterEach()

const config = (a: MockProvider, b: MockProvider, extra = "") => `
http_port: 0
http_bind_address: 127.0.0.1
${extra}
admin: {port: 0, bind_address: 127.0.0.1, auth_key: ${ADMIN_KEY}}
auth_keys: [{name: team, key: ${CLIENT_KEY}}]
providers:
  - {type: openai, host: oa.test, endpoint: "127.0.0.1:${a.port}", tls: false, api_keys: [{key: ${A1}}, {key: ${A2}}]}
  - {type: anthropic, host: an.test, endpoint: "127.0.0.1:${b.port}", tls: false, api_key: ${B}}
`

const chat = (port: number) =>
  h1(port, {
    host: "oa.test",
    method: "POST",
    path: "/v1/chat/completions",
    headers: [
      ["Authorization", `Bearer ${CLIENT_KEY}`],
      ["Content-Type", "application/json"]
    ],
    body: CHAT
  })

const admin = (port: number, p: string) => h1(port, { path: p, headers: [["Authorization", `Bearer ${ADMIN_KEY}`]] })

const providers = async (port: number): Promise<ReadonlyArray<ProviderView>> =>
  JSON.parse((await admin(port, "/providers")).text).providers

/** Sends requests (each on a new connection) until key `A1` has received `n` (the router draws keys at random). */
const untilA1Got = async (port: number, a: MockProvider, n: number, max = 200): Promise<Array<string>> => {
  const ids: Array<string> = []
  for (let i = 0; i < max && (a.counts().keys[A1] ?? 0) < n; i++) {
    const r = await chat(port)
    // the limited key's 429 is never seen: the request goes to the other key
    expect(r.status).toBe(200)
    ids.push(String(r.headers["x-request-id"]))
  }
  expect(a.counts().keys[A1]).toBe(n)
  return ids
}

const noSecretIn = (texts: Record<string, string>) => {
  for (const [where, text] of Object.entries(texts)) {
    for (const s of SECRETS) expect({ where, leaked: text.includes(s) }).toEqual({ where, leaked: false })
  }
}

describe("/providers shows the keys cooling down", () => {
  it("which key, until when and why; no secret; gone once the wait is over", async () => {
    const a = await cleanup.mock({ keys: { openai: [A1, A2] }, faults: [{ key: A1, status: 429, retryAfter: 2 }] })
    const b = await cleanup.mock({ keys: { anthropic: B }, faults: [{ status: 529, retryAfterMs: 1500, times: 1 }] })
    const proxy = await cleanup.proxy(config(a, b))
    const port = proxy.adminPort()!
    // nothing cooling yet
    expect((await providers(port)).map((p) => p.cooling)).toEqual([[], []])

    const before = Date.now()
    await untilA1Got(proxy.httpPort!, a, 1)
    // the anthropic provider's only key answers 529 naming 1.5 s: relayed as it is (no other key), and cooling
    const refused = await h1(proxy.httpPort!, {
      host: "an.test",
      method: "POST",
      path: "/v1/messages",
      headers: [
        ["x-api-key", CLIENT_KEY],
        ["anthropic-version", "2023-06-01"],
        ["content-type", "application/json"]
      ],
      body: JSON.stringify({ model: "claude-sonnet-4-5", max_tokens: 8, messages: [{ role: "user", content: "hi" }] })
    })
    expect(refused.status).toBe(529)

    const seen = await providers(port)
    const after = Date.now()
    expect(seen.map((p) => [p.host, p.cooling.length])).toEqual([
      ["oa.test", 1],
      ["an.test", 1]
    ])
    const [oa, an] = seen.map((p) => p.cooling[0]) as [KeyCooldownView, KeyCooldownView]
    // key index 0 of api_keys (A1), not the provider: A2 is not listed
    expect(oa).toMatchObject({ key: 0, status: 429, source: "retry-after", workers: 1 })
    expect(an).toMatchObject({ key: 0, status: 529, source: "retry-after-ms", workers: 1 })
    // until = when the answer came + the time it named
    expect(Date.parse(oa.until) - Date.parse(oa.since)).toBe(2000)
    expect(Date.parse(an.until) - Date.parse(an.since)).toBe(1500)
    for (const c of [oa, an]) {
      expect(Date.parse(c.since)).toBeGreaterThanOrEqual(before)
      expect(Date.parse(c.since)).toBeLessThanOrEqual(after)
      expect(c.remaining_ms).toBeGreaterThan(0)
      expect(c.remaining_ms).toBeLessThanOrEqual(Date.parse(c.until) - Date.parse(c.since))
    }

    noSecretIn({
      providers: (await admin(port, "/providers")).text,
      keys: (await admin(port, "/keys")).text,
      metrics: (await admin(port, "/metrics")).text,
      log: logLines.join("\n")
    })

    // each entry leaves when its time is over (never before), the shorter one first
    const gone: Record<string, number> = {}
    for (let i = 0; i < 60 && Object.keys(gone).length < 2; i++) {
      await sleep(100)
      const now = await providers(port)
      const at = Date.now()
      for (const p of now) if (p.cooling.length === 0 && gone[p.host] === undefined) gone[p.host] = at
    }
    expect(gone["oa.test"]).toBeGreaterThanOrEqual(Date.parse(oa.until))
    expect(gone["an.test"]).toBeGreaterThanOrEqual(Date.parse(an.until))
    expect((await providers(port)).map((p) => p.cooling)).toEqual([[], []])
  }, 20_000)
})

describe("/providers with workers: 2", () => {
  it("the primary shows a key cooling in both workers, each having had its own 429", async () => {
    const a = await cleanup.mock({ keys: { openai: [A1, A2] }, faults: [{ key: A1, status: 429, retryAfter: 60 }] })
    const b = await cleanup.mock({ keys: { anthropic: B } })
    // a fixed port for the cluster (as the other workers tests do)
    const {
      proc,
      httpPort,
      adminPort: port
    } = await cleanup.process(config(a, b, "workers: 2").replace("http_port: 0", `http_port: ${await freePort()}`))

    // new connections go to both workers in turn; each sends A1 one request (its 429 cools A1 in that worker only)
    const ids = await untilA1Got(httpPort, a, 2)
    expect(new Set(ids.map((id) => id.slice(0, 12))).size).toBe(2)
    for (let i = 0; i < 20; i++) expect((await chat(httpPort)).status).toBe(200)
    expect(a.counts().keys[A1]).toBe(2)

    const text = (await admin(port, "/providers")).text
    const seen: ReadonlyArray<ProviderView> = JSON.parse(text).providers
    expect(seen.map((p) => p.cooling.map((c) => [c.key, c.status, c.source, c.workers]))).toEqual([
      [[0, 429, "retry-after", 2]],
      []
    ])
    noSecretIn({ providers: text, keys: (await admin(port, "/keys")).text, output: proc.output() })
  }, 30_000)
})
