// OpenAI Realtime token usage over WebSocket through the whole proxy (SPEC §10, issue 14) over real sockets: the
// mock's `/v1/realtime` sessions with usage, opened with the `ws` client (HTTP/1.1, permessage-deflate on and off,
// compressed fragments), over HTTP/2 extended CONNECT (h2c), and with the official `openai` SDK's Realtime
// WebSocket client (wss, compression off and on). The client gets exactly the messages a direct connection gets,
// and the admin listener's /metrics shows exactly the mock's token counts per key name and model.
import * as http2 from "node:http2"
import { OpenAI } from "openai"
import { OpenAIRealtimeWS } from "openai/realtime/ws"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type WebSocket from "ws"
import { makeTestCerts, type TestCerts } from "./support/certs.js"
import { h1 } from "./support/http.js"
import { seriesValue } from "./support/metrics.js"
import { DEFAULT_KEYS, type MockProvider, startMockProvider } from "./support/mockProvider.js"
import { accessLines, type RunningProxy, startProxy, tempDir } from "./support/proxy.js"
import { closed, expectOpen, h2WebSocket, nextMessage, wsConnect } from "./support/wsClient.js"

const MOCK_USAGE = "input=1200,output=300,cache_read=1024"
const U = { input: 1200, output: 300, cacheRead: 1024 }
const usageQuery = `mock_usage=${encodeURIComponent(MOCK_USAGE)}`

let mock: MockProvider
let certs: TestCerts
let proxy: RunningProxy
let admin = 0

beforeAll(async () => {
  const dir = await tempDir()
  certs = await makeTestCerts(dir)
  mock = await startMockProvider()
  proxy = await startProxy(
    `
http_port: 0
https_port: 0
cert_file: ${certs.certFile}
private_key_file: ${certs.keyFile}
admin: {port: 0}
auth_keys:
  - {name: rt-a, key: client-rt-a}
  - {name: rt-b, key: client-rt-b}
  - {name: rt-sdk, key: client-rt-sdk}
providers:
  - {type: openai, host: rt.test, endpoint: "127.0.0.1:${mock.port}", tls: false, api_key: ${DEFAULT_KEYS.openai}}
  - {type: openai, host: localhost, endpoint: "127.0.0.1:${mock.port}", tls: false, api_key: ${DEFAULT_KEYS.openai}}
`,
    dir
  )
  admin = proxy.adminPort()!
})
afterAll(async () => {
  await proxy?.close()
  await mock?.close()
})

type Received = Array<[boolean, string]>

/** A session: session.created, then `responses` response.create, each answered up to its response.done; close. */
const session = async (ws: WebSocket, responses: number): Promise<Received> => {
  const got: Received = []
  const take = async () => {
    const m = await nextMessage(ws)
    got.push([m.isBinary, m.data.toString()])
    return JSON.parse(m.data.toString()).type as string
  }
  expect(await take()).toBe("session.created")
  for (let i = 0; i < responses; i++) {
    ws.send(JSON.stringify({ type: "response.create" }))
    while ((await take()) !== "response.done");
  }
  const c = closed(ws)
  ws.close(1000)
  await c
  return got
}

const direct = async (path: string, deflate: boolean, responses: number, headers: Record<string, string> = {}) =>
  session(
    expectOpen(
      await wsConnect(`ws://127.0.0.1:${mock.port}${path}`, {
        host: `127.0.0.1:${mock.port}`,
        headers: { Authorization: `Bearer ${DEFAULT_KEYS.openai}`, ...headers },
        deflate
      })
    ),
    responses
  )

const scrape = async () => (await h1(admin, { path: "/metrics" })).text

/** Polls /metrics until `n` WebSocket exchanges have been recorded (each after its tap settled). */
const scrapeAfter = async (n: number): Promise<string> => {
  for (let i = 0; i < 300; i++) {
    const text = await scrape()
    let sum = 0
    for (const line of text.split("\n")) {
      if (line.startsWith("openproxy_requests_total{") && line.includes('protocol="ws"')) {
        sum += Number(line.slice(line.lastIndexOf(" ") + 1))
      }
    }
    if (sum >= n) {
      expect(sum).toBe(n)
      return text
    }
    await new Promise((r) => setTimeout(r, 20))
  }
  throw new Error(
    `WebSocket exchanges were not recorded:\n${(await scrape())
      .split("\n")
      .filter((l) => l.startsWith("openproxy_requests_total"))
      .join("\n")}`
  )
}

const tokens = (text: string, key: string, provider: string, model: string, type: string) =>
  seriesValue(text, `openproxy_tokens_total{key="${key}",provider="${provider}",model="${model}",type="${type}"}`)

const genAi = (text: string, suffix: "sum" | "count", type: string, model: string) =>
  seriesValue(
    text,
    `gen_ai_client_token_usage_${suffix}{gen_ai_token_type="${type}",gen_ai_provider_name="openai",gen_ai_request_model="${model}",gen_ai_response_model="${model}"}`
  )

describe("OpenAI Realtime usage in /metrics", () => {
  it("ws, h2c and the openai SDK: the direct messages, and exactly the mock's tokens per key and model", async () => {
    const mini = `/v1/realtime?model=gpt-realtime-mini&${usageQuery}`
    const heavy = `${mini}&mock_fragment=64&mock_repeat=30`
    // rt-a, gpt-realtime-mini: 2 responses uncompressed + 3 compressed in fragments = 5
    for (const [path, deflate, n] of [
      [mini, false, 2],
      [heavy, true, 3]
    ] as const) {
      const ws = expectOpen(
        await wsConnect(`ws://127.0.0.1:${proxy.httpPort}${path}`, {
          host: "rt.test",
          headers: { Authorization: "Bearer client-rt-a" },
          deflate
        })
      )
      expect(ws.extensions.includes("permessage-deflate")).toBe(deflate)
      expect(await session(ws, n)).toEqual(await direct(path, deflate, n))
    }
    // rt-b, no model in the query: the session's (the mock's default gpt-realtime); usage from a header; 1 response
    {
      const headers = { "x-mock-usage": MOCK_USAGE }
      const ws = expectOpen(
        await wsConnect(`ws://127.0.0.1:${proxy.httpPort}/v1/realtime`, {
          host: "rt.test",
          headers: { Authorization: "Bearer client-rt-b", ...headers },
          deflate: true
        })
      )
      expect(await session(ws, 1)).toEqual(await direct("/v1/realtime", true, 1, headers))
    }
    // rt-b, gpt-realtime-mini over HTTP/2 extended CONNECT (h2c): 2 responses
    {
      const h2 = http2.connect(`http://127.0.0.1:${proxy.httpPort}`)
      try {
        const r = await h2WebSocket(h2, {
          authority: "rt.test",
          path: mini,
          scheme: "http",
          headers: { authorization: "Bearer client-rt-b" }
        })
        expect(r.status).toBe(200)
        expect(await session(r.ws!, 2)).toEqual(await direct(mini, false, 2))
      } finally {
        h2.close()
      }
    }
    // rt-sdk, gpt-realtime-2025-08-28 through the official SDK over wss: 1 response uncompressed, 2 compressed
    const client = new OpenAI({ apiKey: "client-rt-sdk", baseURL: `https://localhost:${proxy.httpsPort}/v1` })
    const sdkModel = "gpt-realtime-2025-08-28"
    for (const [deflate, n] of [
      [false, 1],
      [true, 2]
    ] as const) {
      const rt = new OpenAIRealtimeWS(
        {
          model: sdkModel,
          options: { ca: certs.caCert, perMessageDeflate: deflate, headers: { "x-mock-usage": MOCK_USAGE } }
        },
        client
      )
      const events: Array<unknown> = []
      let done = 0
      const finished = new Promise<void>((resolve, reject) => {
        rt.on("error", reject)
        rt.on("event", (e) => {
          events.push(e)
          if (e.type === "response.done" && ++done === n) resolve()
        })
      })
      await new Promise<void>((resolve, reject) => {
        rt.socket.once("open", () => resolve())
        rt.socket.once("error", reject)
      })
      expect(rt.socket.extensions.includes("permessage-deflate")).toBe(deflate)
      for (let i = 0; i < n; i++) rt.send({ type: "response.create" })
      await finished
      const c = new Promise((r) => rt.socket.once("close", r))
      rt.close({ code: 1000, reason: "done" })
      await c
      // The SDK saw exactly the events of a direct session (the messages' JSON, in order).
      const expected = await direct(`/v1/realtime?model=${sdkModel}`, deflate, n, { "x-mock-usage": MOCK_USAGE })
      // a direct session sends response.create one at a time; the mock answers each in full before the next
      expect(events).toEqual(expected.map(([, t]) => JSON.parse(t)))
    }

    const text = await scrapeAfter(6)
    const expectTokens = (key: string, provider: string, model: string, responses: number) => {
      expect(tokens(text, key, provider, model, "input")).toBe(U.input * responses)
      expect(tokens(text, key, provider, model, "cache_read")).toBe(U.cacheRead * responses)
      expect(tokens(text, key, provider, model, "output")).toBe(U.output * responses)
      // the Realtime usage has no cache writes or reasoning: those series stay absent
      expect(tokens(text, key, provider, model, "cache_write")).toBeUndefined()
      expect(tokens(text, key, provider, model, "reasoning")).toBeUndefined()
    }
    expectTokens("rt-a", "rt.test#0", "gpt-realtime-mini", 5)
    expectTokens("rt-b", "rt.test#0", "gpt-realtime", 1)
    expectTokens("rt-b", "rt.test#0", "gpt-realtime-mini", 2)
    expectTokens("rt-sdk", "localhost#1", sdkModel, 3)
    // GenAI histogram: one observation per session, input = the whole prompt (cached part included)
    expect(genAi(text, "sum", "input", "gpt-realtime-mini")).toBe((U.input + U.cacheRead) * 7)
    expect(genAi(text, "count", "input", "gpt-realtime-mini")).toBe(3)
    expect(genAi(text, "sum", "output", "gpt-realtime-mini")).toBe(U.output * 7)
    expect(genAi(text, "sum", "input", "gpt-realtime")).toBe(U.input + U.cacheRead)
    expect(genAi(text, "sum", "output", sdkModel)).toBe(U.output * 3)
    expect(genAi(text, "count", "output", sdkModel)).toBe(2)
    expect(
      seriesValue(text, 'openproxy_requests_total{provider="rt.test#0",key="rt-a",code="101",protocol="ws"}')
    ).toBe(2)
    // the status each client received: 101 on HTTP/1.1, 200 on HTTP/2 extended CONNECT
    expect(
      seriesValue(text, 'openproxy_requests_total{provider="rt.test#0",key="rt-b",code="101",protocol="ws"}')
    ).toBe(1)
    expect(
      seriesValue(text, 'openproxy_requests_total{provider="rt.test#0",key="rt-b",code="200",protocol="ws"}')
    ).toBe(1)
    expect(seriesValue(text, "openproxy_open_websockets")).toBe(0)
  })
  it("a session that ends while a response is in progress logs `truncated`, with the tokens of the ended ones", async () => {
    const line = async (id: string): Promise<Record<string, string>> => {
      for (let i = 0; i < 200; i++) {
        const l = accessLines
          .join("")
          .split("\n")
          .find((x) => x.includes(` request_id=${id} `))
        if (l !== undefined) {
          const f: Record<string, string> = {}
          for (const m of l.matchAll(/ ([a-z_]+)=("(?:[^"\\]|\\.)*"|\S+)/g)) f[m[1]] = m[2]
          return f
        }
        await new Promise((r) => setTimeout(r, 20))
      }
      throw new Error(`no access line for ${id}`)
    }
    const take = async (ws: WebSocket, type: string) => {
      while (JSON.parse((await nextMessage(ws)).data.toString()).type !== type);
    }
    // 2 responses asked for, the 2nd (mock_hold=2) never gets its response.done; and a session that ends whole
    for (const [id, hold, deflate] of [
      ["rt-held", 2, false],
      ["rt-held-z", 2, true],
      ["rt-whole", 0, false]
    ] as const) {
      const ws = expectOpen(
        await wsConnect(
          `ws://127.0.0.1:${proxy.httpPort}/v1/realtime?model=gpt-realtime-mini&${usageQuery}&mock_hold=${hold}`,
          {
            host: "rt.test",
            headers: { Authorization: "Bearer client-rt-b", "x-request-id": id },
            deflate
          }
        )
      )
      await take(ws, "session.created")
      ws.send(JSON.stringify({ type: "response.create" }))
      await take(ws, "response.done")
      ws.send(JSON.stringify({ type: "response.create" }))
      await take(ws, hold === 2 ? "response.output_item.done" : "response.done")
      const c = closed(ws)
      ws.close(1000)
      await c
      const f = await line(id)
      expect(f.protocol).toBe("ws")
      expect(f.outcome).toBe(hold === 2 ? "truncated" : "ok")
      const n = hold === 2 ? 1 : 2
      expect([f.input_tokens, f.cache_read_tokens, f.output_tokens]).toEqual(
        [U.input * n, U.cacheRead * n, U.output * n].map(String)
      )
    }
  })
})
