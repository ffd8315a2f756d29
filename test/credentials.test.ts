// Credential swap over real sockets (SPEC §4): client credentials in any case, duplicated or in several places
// never reach the upstream; the provider key arrives exactly once; no key ever appears in the proxy's logs.
import * as http from "node:http"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { h1 } from "./support/http.js"
import { DEFAULT_KEYS, type MockProvider, startMockProvider } from "./support/mockProvider.js"
import { logLines, type RunningProxy, startProxy } from "./support/proxy.js"

let mock: MockProvider
let proxy: RunningProxy
const CLIENT = "sk-client-secret-123"
const OTHER = "sk-other-client-456"

beforeAll(async () => {
  mock = await startMockProvider()
  const ep = `endpoint: "127.0.0.1:${mock.port}", tls: false`
  proxy = await startProxy(`
http_port: 0
http_bind_address: 127.0.0.1
auth_keys: ["${CLIENT}", "${OTHER}"]
providers:
  - { type: openai, host: "openai.test", ${ep}, api_key: "${DEFAULT_KEYS.openai}" }
  - { type: anthropic, host: "anthropic.test", ${ep}, api_key: "${DEFAULT_KEYS.anthropic}" }
  - { type: gemini, host: "gemini.test", ${ep}, api_key: "${DEFAULT_KEYS.gemini}" }
  - { type: openai, host: "nokey.test", ${ep} }
  - { type: forward, host: "fwd.test", ${ep} }
`)
})
afterAll(async () => {
  await proxy?.close()
  await mock?.close()
})

const CREDENTIAL_NAMES = ["authorization", "proxy-authorization", "x-api-key", "x-goog-api-key"]

/** The credential headers the upstream saw for the last request. */
const upstreamCredentials = () => {
  const raw = mock.received.at(-1)!.rawHeaders
  const out: Array<[string, string]> = []
  for (let i = 0; i < raw.length; i += 2) {
    if (CREDENTIAL_NAMES.includes(raw[i].toLowerCase())) out.push([raw[i].toLowerCase(), raw[i + 1]])
  }
  return { creds: out, path: mock.received.at(-1)!.path, all: raw.join("\n") }
}

const noisy: Array<[string, string]> = [
  ["Authorization", `Bearer ${CLIENT}`],
  ["AUTHORIZATION", `Bearer ${OTHER}`],
  ["proxy-authorization", `Bearer ${CLIENT}`],
  ["X-API-KEY", CLIENT],
  ["x-api-key", OTHER],
  ["X-Goog-Api-Key", CLIENT]
]

describe("credential swap", () => {
  it("openai: every client credential removed, provider key exactly once", async () => {
    const r = await h1(proxy.httpPort!, { host: "openai.test", path: `/v1/models?key=${CLIENT}&x=1`, headers: noisy })
    expect(r.status).toBe(200)
    const u = upstreamCredentials()
    expect(u.creds).toEqual([["authorization", `Bearer ${DEFAULT_KEYS.openai}`]])
    expect(u.path).toBe("/v1/models?x=1")
    expect(u.all).not.toContain(CLIENT)
    expect(u.all).not.toContain(OTHER)
  })
  it("anthropic: x-api-key injected once", async () => {
    const r = await h1(proxy.httpPort!, {
      host: "anthropic.test",
      method: "POST",
      path: "/v1/messages",
      headers: [["x-api-key", CLIENT], ...noisy, ["content-type", "application/json"]],
      body: JSON.stringify({ model: "m", max_tokens: 5, messages: [{ role: "user", content: "hi" }] })
    })
    expect(r.status).toBe(200)
    expect(upstreamCredentials().creds).toEqual([["x-api-key", DEFAULT_KEYS.anthropic]])
  })
  it("gemini: ?key= and headers removed, x-goog-api-key injected once", async () => {
    const r = await h1(proxy.httpPort!, {
      host: "gemini.test",
      method: "POST",
      path: `/v1beta/models/g:generateContent?key=${CLIENT}&key=${OTHER}`,
      headers: [
        ["x-goog-api-key", CLIENT],
        ["content-type", "application/json"]
      ],
      body: JSON.stringify({ contents: [{ parts: [{ text: "hi" }] }] })
    })
    expect(r.status).toBe(200)
    const u = upstreamCredentials()
    expect(u.creds).toEqual([["x-goog-api-key", DEFAULT_KEYS.gemini]])
    expect(u.path).toBe("/v1beta/models/g:generateContent")
  })
  it("gemini accepts the client key from the query string", async () => {
    const r = await h1(proxy.httpPort!, { host: "gemini.test", path: `/v1beta/models?alt=json&key=${CLIENT}` })
    expect(r.status).toBe(200)
    expect(upstreamCredentials().path).toBe("/v1beta/models?alt=json")
  })
  it("openai without a provider key: the client's credential is removed and none injected", async () => {
    await h1(proxy.httpPort!, { host: "nokey.test", path: "/__headers", headers: noisy })
    expect(upstreamCredentials().creds).toEqual([])
  })
  it("forward: Authorization passes unchanged, Proxy-Authorization never", async () => {
    await h1(proxy.httpPort!, {
      host: "fwd.test",
      path: "/__headers",
      headers: [
        ["Authorization", "Basic dXNlcjpwYXNz"],
        ["Proxy-Authorization", "Bearer x"],
        ["X-Custom", "1"]
      ]
    })
    const raw = mock.received.at(-1)!.rawHeaders
    const pairs = raw.flatMap((v, i) => (i % 2 === 0 ? [`${v.toLowerCase()}: ${raw[i + 1]}`] : []))
    expect(pairs).toContain("authorization: Basic dXNlcjpwYXNz")
    expect(pairs).toContain("x-custom: 1")
    expect(pairs.some((p) => p.startsWith("proxy-authorization"))).toBe(false)
  })
  it("a wrong key is 401 with the exact body and never reaches the upstream", async () => {
    const before = mock.received.length
    for (const headers of [[["Authorization", "Bearer nope"]], [], [["Authorization", `Basic ${CLIENT}`]]] as Array<
      Array<[string, string]>
    >) {
      const r = await h1(proxy.httpPort!, { host: "openai.test", path: "/v1/models", headers })
      expect(r.status).toBe(401)
      expect(r.text).toBe("authentication failed")
    }
    expect(mock.received.length).toBe(before)
  })
  it("hop-by-hop headers and those named in Connection are not forwarded", async () => {
    await h1(proxy.httpPort!, {
      host: "openai.test",
      path: "/__headers",
      headers: [
        ["Authorization", `Bearer ${CLIENT}`],
        ["Connection", "keep-alive, X-Secret-Hop"],
        ["X-Secret-Hop", "1"],
        ["Keep-Alive", "timeout=5"],
        ["Proxy-Connection", "keep-alive"],
        ["TE", "trailers"],
        ["X-Kept", "yes"]
      ]
    })
    const names = mock.received
      .at(-1)!
      .rawHeaders.filter((_, i) => i % 2 === 0)
      .map((n) => n.toLowerCase())
    expect(names).toContain("x-kept")
    for (const n of ["x-secret-hop", "keep-alive", "proxy-connection", "te"]) expect(names).not.toContain(n)
    expect(names.filter((n) => n === "host")).toHaveLength(1)
  })
  it("on one kept-alive connection, a changed key is checked again (the per-connection digest cache)", async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
    try {
      const send = (key: string) =>
        h1(proxy.httpPort!, {
          host: "openai.test",
          path: "/v1/models",
          headers: [["authorization", `Bearer ${key}`]],
          agent
        })
      expect((await send(CLIENT)).status).toBe(200)
      expect((await send("wrong")).status).toBe(401)
      expect((await send(OTHER)).status).toBe(200)
      expect((await send(`${CLIENT}x`)).status).toBe(401)
      expect((await send(CLIENT)).status).toBe(200)
    } finally {
      agent.destroy()
    }
  })
  it("no client or provider key appears in the proxy's log output", async () => {
    // provoke logged failures: an unreachable upstream (the log line names the request, never the key)
    const dead = await startProxy(`
http_port: 0
http_bind_address: 127.0.0.1
auth_keys: ["${CLIENT}"]
providers:
  - { type: openai, host: "dead.test", endpoint: "127.0.0.1:1", tls: false, api_key: "${DEFAULT_KEYS.openai}" }
`)
    try {
      const r = await h1(dead.httpPort!, { host: "dead.test", path: `/v1/models?key=${CLIENT}`, headers: noisy })
      expect(r.status).toBe(502)
      expect(r.text).toBe("upstream connection failed")
    } finally {
      await dead.close()
    }
    const all = logLines.join("")
    expect(all).toContain("upstream request failed")
    for (const secret of [CLIENT, OTHER, ...Object.values(DEFAULT_KEYS)]) expect(all).not.toContain(secret)
  })
})
