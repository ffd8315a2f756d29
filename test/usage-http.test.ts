// Token usage of HTTP answers through the whole proxy (SPEC §10), over real sockets with the mock provider: after a
// known sequence of requests — OpenAI chat JSON and SSE (with include_usage, and without: the proxy injects it),
// Responses JSON and SSE, embeddings, Anthropic JSON and SSE, Gemini JSON and SSE, gzip and br JSON — `/metrics`
// (admin listener) and the access log show exactly the mock's token counts per key name and model, cache and
// reasoning tokens included; the client's bytes are the mock's own (hash-compared with a direct request), except
// the injected stream, which lacks exactly the usage chunk; a client that leaves mid-stream is logged with the usage
// seen so far and outcome client_abort; no configured secret appears in /metrics, /providers, /keys or the logs.
import { createHash } from "node:crypto"
import * as net from "node:net"
import { beforeAll, describe, expect, it } from "vitest"
import { cleanupAfterAll, sleep } from "./support/cleanup.js"
import { h1, type Reply } from "./support/http.js"
import { seriesValue } from "./support/metrics.js"
import { DEFAULT_KEYS, type MockProvider } from "./support/mockProvider.js"
import { accessLines, logLines, type RunningProxy } from "./support/proxy.js"
import { wsConnect } from "./support/wsClient.js"

const CLIENT_KEY = "client-secret-U1x9"
const PLAIN_KEY = "client-secret-plain-P2q7"
const ADMIN_KEY = "admin-secret-K9z3"

const cleanup = cleanupAfterAll()
let mock: MockProvider
let proxy: RunningProxy

beforeAll(async () => {
  mock = await cleanup.mock()
  proxy = await cleanup.proxy(`
http_port: 0
connect_tunnel_enabled: true
admin: {port: 0, auth_key: ${ADMIN_KEY}}
auth_keys:
  - {name: team-u, key: ${CLIENT_KEY}}
  - ${PLAIN_KEY}
providers:
  - {type: openai, host: oa.test, endpoint: "127.0.0.1:${mock.port}", tls: false, api_key: ${DEFAULT_KEYS.openai}}
  - {type: anthropic, host: an.test, endpoint: "127.0.0.1:${mock.port}", tls: false, api_key: ${DEFAULT_KEYS.anthropic}}
  - {type: gemini, host: ge.test, endpoint: "127.0.0.1:${mock.port}", tls: false, api_key: ${DEFAULT_KEYS.gemini}}
`)
})

type Provider = "openai" | "anthropic" | "gemini"
interface Tokens {
  input: number
  output: number
  cacheRead: number
  cacheWrite: number
  reasoning: number
}

const HOSTS: Record<Provider, string> = { openai: "oa.test", anthropic: "an.test", gemini: "ge.test" }
const LABELS: Record<Provider, string> = { openai: "oa.test#0", anthropic: "an.test#1", gemini: "ge.test#2" }

/** The client's key (through the proxy) or the provider's key (direct), in the provider's own header. */
const auth = (p: Provider, key: string): Array<[string, string]> =>
  p === "openai"
    ? [["Authorization", `Bearer ${key}`]]
    : p === "anthropic"
      ? [
          ["x-api-key", key],
          ["anthropic-version", "2023-06-01"]
        ]
      : [["x-goog-api-key", key]]

interface Case {
  readonly name: string
  readonly provider: Provider
  readonly path: string
  readonly model: string
  readonly body: Record<string, unknown>
  /** What the mock is asked to report (x-mock-usage, usageHeader) and what must be read back. */
  readonly expected: Tokens
  readonly sse?: boolean
  readonly encoding?: "gzip" | "br"
}

const msgs = [{ role: "user", content: "hi" }]
const CASES: ReadonlyArray<Case> = [
  {
    name: "OpenAI chat JSON",
    provider: "openai",
    path: "/v1/chat/completions",
    model: "m-chat-json",
    body: { model: "m-chat-json", messages: msgs },
    expected: { input: 1200, output: 300, cacheRead: 1024, cacheWrite: 0, reasoning: 120 }
  },
  {
    name: "OpenAI chat SSE with include_usage",
    provider: "openai",
    path: "/v1/chat/completions",
    model: "m-chat-sse",
    body: { model: "m-chat-sse", messages: msgs, stream: true, stream_options: { include_usage: true } },
    expected: { input: 41, output: 17, cacheRead: 5, cacheWrite: 0, reasoning: 3 },
    sse: true
  },
  {
    name: "OpenAI Responses JSON",
    provider: "openai",
    path: "/v1/responses",
    model: "m-resp-json",
    body: { model: "m-resp-json", input: "hi" },
    expected: { input: 77, output: 66, cacheRead: 55, cacheWrite: 0, reasoning: 44 }
  },
  {
    name: "OpenAI Responses SSE",
    provider: "openai",
    path: "/v1/responses",
    model: "m-resp-sse",
    body: { model: "m-resp-sse", input: "hi", stream: true },
    expected: { input: 78, output: 67, cacheRead: 56, cacheWrite: 0, reasoning: 45 },
    sse: true
  },
  {
    name: "OpenAI embeddings",
    provider: "openai",
    path: "/v1/embeddings",
    model: "m-embed",
    body: { model: "m-embed", input: "hi" },
    expected: { input: 9, output: 0, cacheRead: 0, cacheWrite: 0, reasoning: 0 }
  },
  {
    name: "OpenAI chat JSON, gzip",
    provider: "openai",
    path: "/v1/chat/completions",
    model: "m-chat-gzip",
    body: { model: "m-chat-gzip", messages: msgs },
    expected: { input: 300, output: 200, cacheRead: 100, cacheWrite: 0, reasoning: 50 },
    encoding: "gzip"
  },
  {
    name: "Anthropic JSON",
    provider: "anthropic",
    path: "/v1/messages",
    model: "m-claude-json",
    body: { model: "m-claude-json", max_tokens: 16, messages: msgs },
    expected: { input: 50, output: 7, cacheRead: 20, cacheWrite: 30, reasoning: 2 }
  },
  {
    name: "Anthropic SSE",
    provider: "anthropic",
    path: "/v1/messages",
    model: "m-claude-sse",
    body: { model: "m-claude-sse", max_tokens: 16, messages: msgs, stream: true },
    expected: { input: 51, output: 8, cacheRead: 21, cacheWrite: 31, reasoning: 3 },
    sse: true
  },
  {
    name: "Anthropic JSON, br",
    provider: "anthropic",
    path: "/v1/messages",
    model: "m-claude-br",
    body: { model: "m-claude-br", max_tokens: 16, messages: msgs },
    expected: { input: 52, output: 9, cacheRead: 22, cacheWrite: 32, reasoning: 4 },
    encoding: "br"
  },
  {
    name: "Gemini JSON",
    provider: "gemini",
    path: "/v1beta/models/m-gem-json:generateContent",
    model: "m-gem-json",
    body: { contents: [{ parts: [{ text: "hi" }] }] },
    expected: { input: 600, output: 90, cacheRead: 400, cacheWrite: 0, reasoning: 30 }
  },
  {
    name: "Gemini SSE",
    provider: "gemini",
    path: "/v1beta/models/m-gem-sse:streamGenerateContent?alt=sse",
    model: "m-gem-sse",
    body: { contents: [{ parts: [{ text: "hi" }] }] },
    expected: { input: 601, output: 91, cacheRead: 401, cacheWrite: 0, reasoning: 31 },
    sse: true
  }
]

/** The mock's `x-mock-usage` for these tokens: the non-zero ones, as `input=…,output=…,cache_read=…`. */
const usageHeader = (t: Tokens): string =>
  (
    [
      ["input", t.input],
      ["output", t.output],
      ["cache_read", t.cacheRead],
      ["cache_write", t.cacheWrite],
      ["reasoning", t.reasoning]
    ] as const
  )
    .filter(([, n]) => n > 0)
    .map(([name, n]) => `${name}=${n}`)
    .join(",")

const send = (c: Case, port: number, key: string, body: Record<string, unknown> = c.body): Promise<Reply> =>
  h1(port, {
    host: HOSTS[c.provider],
    method: "POST",
    path: c.path,
    headers: [
      ...auth(c.provider, key),
      ["Content-Type", "application/json"],
      ["x-mock-usage", usageHeader(c.expected)],
      ...(c.encoding === undefined ? [] : [["x-mock-content-encoding", c.encoding] as [string, string]])
    ],
    body: JSON.stringify(body)
  })

const directKey = (p: Provider): string => DEFAULT_KEYS[p]
const sha = (b: Buffer): string => createHash("sha256").update(b).digest("hex")

/** The access line (text format) with this request id, as fields. */
const accessFields = (requestId: string): Record<string, string> | undefined => {
  const line = accessLines
    .join("")
    .split("\n")
    .find((l) => l.includes(` request_id=${requestId} `))
  if (line === undefined) return undefined
  const fields: Record<string, string> = {}
  for (const m of line.matchAll(/ ([a-z_]+)=("(?:[^"\\]|\\.)*"|\S+)/g)) fields[m[1]] = m[2]
  return fields
}

/** Waits until the access line of `requestId` is out (the log phase runs when the response has ended). */
const accessLine = async (requestId: string): Promise<Record<string, string>> => {
  for (let i = 0; i < 100; i++) {
    const f = accessFields(requestId)
    if (f !== undefined) return f
    await sleep(20)
  }
  throw new Error(`no access line for ${requestId}`)
}

const adminGet = async (path: string): Promise<string> =>
  (await h1(proxy.adminPort()!, { path, headers: [["Authorization", `Bearer ${ADMIN_KEY}`]] })).text

const tokensOf = (metrics: string, c: { provider: Provider; model: string }, key = "team-u"): Tokens => {
  const v = (type: string) =>
    seriesValue(
      metrics,
      `openproxy_tokens_total{key="${key}",provider="${LABELS[c.provider]}",model="${c.model}",type="${type}"}`
    ) ?? 0
  return {
    input: v("input"),
    output: v("output"),
    cacheRead: v("cache_read"),
    cacheWrite: v("cache_write"),
    reasoning: v("reasoning")
  }
}

const logTokens = (f: Record<string, string>): Tokens => ({
  input: Number(f.input_tokens),
  output: Number(f.output_tokens),
  cacheRead: Number(f.cache_read_tokens),
  cacheWrite: Number(f.cache_write_tokens),
  reasoning: Number(f.reasoning_tokens)
})

describe("token usage of HTTP answers through the proxy", () => {
  it("every format: the client gets the mock's bytes; /metrics and the access log show exactly its tokens", async () => {
    const ids = new Map<string, string>()
    // twice each: the counters add up per key name and model
    for (let round = 0; round < 2; round++) {
      for (const c of CASES) {
        const via = await send(c, proxy.httpPort!, CLIENT_KEY)
        const direct = await send(c, mock.port, directKey(c.provider))
        expect(via.status, c.name).toBe(200)
        expect(direct.status, c.name).toBe(200)
        expect(sha(via.body), c.name).toBe(sha(direct.body))
        if (c.encoding !== undefined) expect(via.headers["content-encoding"], c.name).toBe(c.encoding)
        ids.set(c.name, String(via.headers["x-request-id"]))
      }
    }
    for (const c of CASES) {
      const f = await accessLine(ids.get(c.name)!)
      expect(logTokens(f), c.name).toEqual(c.expected)
      expect(f.model, c.name).toBe(c.model)
      expect(f.key, c.name).toBe("team-u")
      expect(f.provider, c.name).toBe(LABELS[c.provider])
      expect(f.status, c.name).toBe("200")
      expect(f.outcome, c.name).toBe("ok")
      expect(f.protocol, c.name).toBe("http/1.1")
      expect(f.upstream_protocol, c.name).toBe("http/1.1")
      expect(f.listener, c.name).toBe("http")
      expect(f.client, c.name).toBe("127.0.0.1")
      expect(f.method, c.name).toBe("POST")
      expect(f.host, c.name).toBe(HOSTS[c.provider])
      expect(f.path, c.name).toBe(c.path.split("?")[0])
      expect(f.attempts, c.name).toBe("1")
      expect(Number(f.bytes_in), c.name).toBe(Buffer.byteLength(JSON.stringify(c.body)))
      expect(Number(f.bytes_out), c.name).toBeGreaterThan(0)
      expect(Number(f.ttfb_ms), c.name).toBeGreaterThan(0)
      if (c.sse) expect(Number(f.ttft_ms), c.name).toBeGreaterThanOrEqual(Number(f.ttfb_ms))
      else expect(f.ttft_ms, c.name).toBe("-")
    }
    const metrics = await adminGet("/metrics")
    for (const c of CASES) {
      const e = c.expected
      const twice = {
        input: 2 * e.input,
        output: 2 * e.output,
        cacheRead: 2 * e.cacheRead,
        cacheWrite: 2 * e.cacheWrite,
        reasoning: 2 * e.reasoning
      }
      expect(tokensOf(metrics, c), c.name).toEqual(twice)
    }
    // time to first token: one observation per streamed answer, none for JSON ones
    for (const c of CASES) {
      const re = new RegExp(
        `gen_ai_server_time_to_first_token_seconds_count\\{[^}]*gen_ai_request_model="${c.model}"[^}]*\\} (\\d+)`
      )
      expect(Number(metrics.match(re)?.[1] ?? 0), c.name).toBe(c.sse ? 2 : 0)
    }
    // all SSE answers are over: no stream counted as open
    expect(seriesValue(metrics, "openproxy_open_streams")).toBe(0)
  })

  it("a bytes_out of the access log is the body bytes the client received", async () => {
    const c = CASES[1]
    const via = await send(c, proxy.httpPort!, CLIENT_KEY)
    const f = await accessLine(String(via.headers["x-request-id"]))
    expect(Number(f.bytes_out)).toBe(via.body.length)
  })

  it("an OpenAI chat stream without include_usage: usage injected upstream, the usage chunk kept from the client", async () => {
    const c: Case = {
      name: "OpenAI chat SSE, usage injected",
      provider: "openai",
      path: "/v1/chat/completions",
      model: "m-chat-inject",
      body: { model: "m-chat-inject", messages: msgs, stream: true },
      expected: { input: 700, output: 70, cacheRead: 7, cacheWrite: 0, reasoning: 1 },
      sse: true
    }
    const via = await send(c, proxy.httpPort!, CLIENT_KEY)
    // what the upstream answered: the stream of a request that asked for usage
    const asked = await send(c, mock.port, directKey("openai"), {
      model: "m-chat-inject",
      messages: msgs,
      stream: true,
      stream_options: { include_usage: true }
    })
    const plain = await send(c, mock.port, directKey("openai"))
    expect(via.status).toBe(200)
    const usageUnit = /data: \{[^\n]*"choices":\[\][^\n]*"usage":\{[^\n]*\n\n/
    expect(asked.text).toMatch(usageUnit)
    expect(via.text).not.toMatch(/"choices":\[\]/)
    // exactly the upstream's bytes minus the usage chunk
    expect(via.text).toBe(asked.text.replace(usageUnit, ""))
    // as many events as without the proxy: no extra one
    const events = (t: string) => t.split("\n\n").filter((u) => u.startsWith("data:")).length
    expect(events(via.text)).toBe(events(plain.text))
    // the upstream was asked for usage, the rest of the body as the client sent it
    const injected = Buffer.from(`{"stream_options":{"include_usage":true},${JSON.stringify(c.body).slice(1)}`)
    const upstream = mock.received.at(-3)!
    expect(upstream.bodySha256).toBe(sha(injected))
    expect(upstream.bodyBytes).toBe(injected.length)
    const f = await accessLine(String(via.headers["x-request-id"]))
    expect(logTokens(f)).toEqual(c.expected)
    expect(Number(f.bytes_out)).toBe(via.body.length)
    expect(tokensOf(await adminGet("/metrics"), c)).toEqual(c.expected)
  })

  it("a client that leaves mid-stream: the usage seen so far, outcome client_abort", async () => {
    const body = JSON.stringify({ model: "m-claude-abort", max_tokens: 16, messages: msgs, stream: true })
    const socket = net.connect(proxy.httpPort!, "127.0.0.1")
    await new Promise((r) => socket.once("connect", r))
    socket.write(
      "POST /v1/messages HTTP/1.1\r\nHost: an.test\r\n" +
        `x-api-key: ${CLIENT_KEY}\r\nanthropic-version: 2023-06-01\r\ncontent-type: application/json\r\n` +
        "x-mock-usage: input=333,output=44,cache_read=22,cache_write=11\r\nx-mock-stream-interval-ms: 100\r\n" +
        `content-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`
    )
    let seen = ""
    await new Promise<void>((resolve) =>
      socket.on("data", (d: Buffer) => {
        seen += d.toString()
        if (seen.includes("content_block_delta")) resolve()
      })
    )
    socket.destroy()
    const id = /x-request-id: (\S+)\r\n/i.exec(seen)![1]
    const f = await accessLine(id)
    expect(f.outcome).toBe("client_abort")
    expect(f.status).toBe("200")
    // message_start's usage (output so far: 1), the final message_delta never came
    expect(logTokens(f)).toEqual({ input: 333, output: 1, cacheRead: 22, cacheWrite: 11, reasoning: 0 })
    expect(Number(f.ttft_ms)).toBeGreaterThan(0)
    const metrics = await adminGet("/metrics")
    expect(tokensOf(metrics, { provider: "anthropic", model: "m-claude-abort" })).toEqual({
      input: 333,
      output: 1,
      cacheRead: 22,
      cacheWrite: 11,
      reasoning: 0
    })
    expect(seriesValue(metrics, "openproxy_open_streams")).toBe(0)
  })

  it("a key named by its hash is shown by that name; no configured secret in /metrics, /providers, /keys or logs", async () => {
    const c = CASES[0]
    const via = await send(c, proxy.httpPort!, PLAIN_KEY)
    expect(via.status).toBe(200)
    const f = await accessLine(String(via.headers["x-request-id"]))
    expect(f.key).toMatch(/^key-[0-9a-f]{8}$/)
    // a refused request too (wrong key): its line is there, without the key it tried
    const refused = await h1(proxy.httpPort!, {
      host: "oa.test",
      method: "POST",
      path: "/v1/chat/completions?key=query-secret-Q5",
      headers: [["Authorization", "Bearer wrong-secret-W4"]],
      body: "{}"
    })
    expect(refused.status).toBe(401)
    const r = await accessLine(String(refused.headers["x-request-id"]))
    expect(r.outcome).toBe("refused")
    expect(r.path).toBe("/v1/chat/completions")
    const bodies = [
      await adminGet("/metrics"),
      await adminGet("/providers"),
      await adminGet("/keys"),
      accessLines.join(""),
      logLines.join("")
    ]
    const secrets = [
      CLIENT_KEY,
      PLAIN_KEY,
      ADMIN_KEY,
      "wrong-secret-W4",
      "query-secret-Q5",
      DEFAULT_KEYS.openai,
      DEFAULT_KEYS.anthropic,
      DEFAULT_KEYS.gemini
    ]
    expect(bodies[0]).toContain("openproxy_tokens_total")
    expect(bodies[3]).toContain(f.key)
    for (const [i, text] of bodies.entries()) {
      for (const s of secrets) expect(text.includes(s), `${s} in body ${i}`).toBe(false)
    }
  })

  it("a WebSocket and a CONNECT tunnel each get their access line", async () => {
    const ws = await wsConnect(`ws://127.0.0.1:${proxy.httpPort}/v1/realtime?model=gpt-realtime`, {
      host: "oa.test",
      headers: { Authorization: `Bearer ${CLIENT_KEY}`, "x-request-id": "ws-id-1" }
    })
    if (!("close" in ws)) throw new Error(`refused: ${ws.status}`)
    await new Promise<void>((resolve) => {
      ws.once("close", () => resolve())
      ws.close()
    })
    const socket = net.connect(proxy.httpPort!, "127.0.0.1")
    await new Promise((r) => socket.once("connect", r))
    socket.write(
      `CONNECT oa.test:${mock.port} HTTP/1.1\r\nHost: oa.test:${mock.port}\r\n` +
        `Proxy-Authorization: Bearer ${CLIENT_KEY}\r\nx-request-id: tunnel-id-1\r\n\r\n`
    )
    await new Promise<void>((resolve) => socket.once("data", () => resolve()))
    socket.end()
    await new Promise((r) => socket.once("close", r))
    const t = await accessLine("tunnel-id-1")
    expect(t.protocol).toBe("tunnel")
    expect(t.method).toBe("CONNECT")
    expect(t.client).toBe("127.0.0.1")
    expect(t.key).toBe("team-u")
    expect(t.provider).toBe("oa.test#0")
    expect(t.status).toBe("200")
    const w = await accessLine("ws-id-1")
    expect(w.protocol).toBe("ws")
    expect(w.method).toBe("GET")
    expect(w.status).toBe("101")
    expect(w.client).toBe("127.0.0.1")
    expect(w.key).toBe("team-u")
    expect(w.path).toBe("/v1/realtime")
    expect(w.provider).toBe("oa.test#0")
  })
})
