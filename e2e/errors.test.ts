// e2e: errors and credential hygiene through a real openproxy process, over every client leg. A wrong
// client key surfaces as each SDK's own authentication error, an unknown host as its not-found error,
// and the mock's `/__headers` echo proves the upstream received exactly the provider's key and none of
// the client's credentials (in any form, any case, any number of times); the proxy logs no key.
import { connect as netConnect } from "node:net"
import Anthropic from "@anthropic-ai/sdk"
import { ApiError, GoogleGenAI } from "@google/genai"
import OpenAI from "openai"
import { describe, expect, it } from "vitest"
import { EXPECTED_CONNECTION, LEGS, type Leg } from "./support/clients.js"
import { useStack } from "./support/setup.js"
import { CLIENT_KEY, type Family, PROVIDER_KEYS, providerHost, type Upstream } from "./support/stack.js"

const { stack, leg: getLeg } = useStack()

const WRONG_KEY = "sk-proxy-wrong"
const UPSTREAMS: Upstream[] = ["h1", "h2"]

/** What the mock's `/__headers` answers: the request as it reached the upstream. */
interface HeadersEcho {
  method: string
  path: string
  httpVersion: string
  rawHeaders: string[]
}

const CREDENTIAL_NAMES = new Set(["authorization", "proxy-authorization", "x-api-key", "x-goog-api-key"])

/** [lower-case name, value] of every credential header the upstream received. */
const credentials = (echo: HeadersEcho): Array<[string, string]> => {
  const out: Array<[string, string]> = []
  for (let i = 0; i < echo.rawHeaders.length; i += 2) {
    const name = echo.rawHeaders[i].toLowerCase()
    if (CREDENTIAL_NAMES.has(name)) out.push([name, echo.rawHeaders[i + 1]])
  }
  return out
}

const expectOnlyProviderKey = (echo: HeadersEcho, family: Family, upstream: Upstream, bearer = false): void => {
  const expected: Record<Family, [string, string]> = {
    openai: ["authorization", `Bearer ${PROVIDER_KEYS.openai}`],
    // anthropic: in the form the client used (SPEC §4)
    anthropic: bearer ? ["authorization", `Bearer ${PROVIDER_KEYS.anthropic}`] : ["x-api-key", PROVIDER_KEYS.anthropic],
    gemini: ["x-goog-api-key", PROVIDER_KEYS.gemini]
  }
  expect(credentials(echo)).toEqual([expected[family]])
  expect(JSON.stringify(echo)).not.toContain(CLIENT_KEY)
  expect(echo.path).not.toMatch(/[?&]key=/)
  expect(echo.httpVersion).toBe(upstream === "h1" ? "1.1" : "2.0")
}

/** Runs `f`, expecting it to throw; returns what it threw. */
const thrown = async (f: () => Promise<unknown>): Promise<unknown> => {
  try {
    await f()
  } catch (e) {
    return e
  }
  throw new Error("expected an error")
}

describe.each(LEGS)("errors and credentials over %s", (legName) => {
  const leg = (): Leg => getLeg(legName)
  const openai = (host: string, apiKey: string, v1 = true): OpenAI =>
    new OpenAI({ apiKey, baseURL: leg().origin(host) + (v1 ? "/v1" : ""), fetch: leg().fetch, maxRetries: 0 })
  const anthropicKey = (host: string, key: string): Anthropic =>
    new Anthropic({
      apiKey: null,
      authToken: null,
      defaultHeaders: { "x-api-key": key },
      baseURL: leg().origin(host),
      fetch: leg().fetch,
      maxRetries: 0
    })
  const anthropicToken = (host: string, token: string): Anthropic =>
    new Anthropic({ authToken: token, baseURL: leg().origin(host), fetch: leg().fetch, maxRetries: 0 })
  const genai = (host: string, apiKey: string): GoogleGenAI =>
    new GoogleGenAI({
      apiKey,
      httpOptions: { baseUrl: leg().origin(host), fetch: leg().fetch, retryOptions: { attempts: 1 } }
    })
  const chat = (c: OpenAI) =>
    c.chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "x" }] })
  const message = (c: Anthropic) =>
    c.messages.create({ model: "claude-mock-large", max_tokens: 8, messages: [{ role: "user", content: "x" }] })
  const generate = (c: GoogleGenAI) => c.models.generateContent({ model: "gemini-2.5-flash", contents: "x" })

  describe("a wrong client key is the SDK's authentication error", () => {
    it("openai → OpenAI.AuthenticationError", async () => {
      const e = await thrown(() => chat(openai("openai.test", WRONG_KEY)))
      expect(e).toBeInstanceOf(OpenAI.AuthenticationError)
      expect((e as InstanceType<typeof OpenAI.AuthenticationError>).status).toBe(401)
      expect(String((e as Error).message)).not.toContain(WRONG_KEY)
    })

    it("anthropic x-api-key → Anthropic.AuthenticationError", async () => {
      const e = await thrown(() => message(anthropicKey("anthropic.test", WRONG_KEY)))
      expect(e).toBeInstanceOf(Anthropic.AuthenticationError)
      expect((e as InstanceType<typeof Anthropic.AuthenticationError>).status).toBe(401)
    })

    it("anthropic bearer token → Anthropic.AuthenticationError", async () => {
      const e = await thrown(() => message(anthropicToken("anthropic.test", WRONG_KEY)))
      expect(e).toBeInstanceOf(Anthropic.AuthenticationError)
    })

    it("gemini → ApiError 401", async () => {
      const e = await thrown(() => generate(genai("gemini.test", WRONG_KEY)))
      expect(e).toBeInstanceOf(ApiError)
      expect((e as ApiError).status).toBe(401)
    })

    it("gemini ?key= → 401 authentication failed", async () => {
      const res = await leg().fetch(
        `${leg().origin("gemini.test")}/v1beta/models/gemini-2.5-flash:generateContent?key=${WRONG_KEY}`,
        { method: "POST", headers: { "content-type": "application/json" }, body: '{"contents":[]}' }
      )
      expect(res.status).toBe(401)
      expect(await res.text()).toBe("authentication failed")
    })

    it("the provider key itself is not a client key", async () => {
      const e = await thrown(() => chat(openai("openai.test", PROVIDER_KEYS.openai)))
      expect(e).toBeInstanceOf(OpenAI.AuthenticationError)
    })
  })

  describe("an unknown host is the SDK's not-found error", () => {
    it("openai → OpenAI.NotFoundError", async () => {
      const e = await thrown(() => chat(openai("unknown.test", CLIENT_KEY)))
      expect(e).toBeInstanceOf(OpenAI.NotFoundError)
      expect((e as InstanceType<typeof OpenAI.NotFoundError>).status).toBe(404)
    })

    it("anthropic → Anthropic.NotFoundError", async () => {
      const e = await thrown(() => message(anthropicKey("unknown.test", CLIENT_KEY)))
      expect(e).toBeInstanceOf(Anthropic.NotFoundError)
    })

    it("gemini → ApiError 404", async () => {
      const e = await thrown(() => generate(genai("unknown.test", CLIENT_KEY)))
      expect(e).toBeInstanceOf(ApiError)
      expect((e as ApiError).status).toBe(404)
    })

    it("the body is `No provider found`", async () => {
      const res = await leg().fetch(`${leg().origin("unknown.test")}/v1/models`, {
        headers: { authorization: `Bearer ${CLIENT_KEY}` }
      })
      expect(res.status).toBe(404)
      expect(res.headers.get("content-type")).toBe("text/plain; charset=utf-8")
      expect(await res.text()).toBe("No provider found")
    })
  })

  describe.each(UPSTREAMS)("the %s upstream receives only the provider key", (upstream) => {
    it("openai (client key as Bearer plus every other credential form)", async () => {
      const echo = await openai(providerHost("openai", upstream), CLIENT_KEY, false).get<HeadersEcho>("/__headers", {
        headers: {
          "x-api-key": CLIENT_KEY,
          "x-goog-api-key": CLIENT_KEY,
          "proxy-authorization": `Bearer ${CLIENT_KEY}`
        },
        query: { key: CLIENT_KEY, keep: "1" }
      })
      expectOnlyProviderKey(echo, "openai", upstream)
      expect(echo.path).toBe("/__headers?keep=1")
    })

    it("anthropic (x-api-key)", async () => {
      const echo = await anthropicKey(providerHost("anthropic", upstream), CLIENT_KEY).get<HeadersEcho>("/__headers")
      expectOnlyProviderKey(echo, "anthropic", upstream)
    })

    it("anthropic (bearer token)", async () => {
      const echo = await anthropicToken(providerHost("anthropic", upstream), CLIENT_KEY).get<HeadersEcho>("/__headers")
      expectOnlyProviderKey(echo, "anthropic", upstream, true)
    })

    it("gemini (x-goog-api-key plus ?key=)", async () => {
      const res = await leg().fetch(`${leg().origin(providerHost("gemini", upstream))}/__headers?key=${CLIENT_KEY}`, {
        headers: { "x-goog-api-key": CLIENT_KEY }
      })
      expect(res.status).toBe(200)
      expectOnlyProviderKey((await res.json()) as HeadersEcho, "gemini", upstream)
    })

    it("gemini (?key= only)", async () => {
      const res = await leg().fetch(
        `${leg().origin(providerHost("gemini", upstream))}/__headers?alt=sse&key=${CLIENT_KEY}`
      )
      expect(res.status).toBe(200)
      const echo = (await res.json()) as HeadersEcho
      expectOnlyProviderKey(echo, "gemini", upstream)
      expect(echo.path).toBe("/__headers?alt=sse")
    })
  })

  it(`opened only ${EXPECTED_CONNECTION[legName]} connections to the proxy`, () => {
    expect(new Set(leg().connections)).toEqual(new Set([EXPECTED_CONNECTION[legName]]))
  })
})

/** Sends one raw HTTP/1.1 request to the proxy's plain port and returns the whole response text. */
const rawHttp = (port: number, head: string): Promise<string> =>
  new Promise((resolve, reject) => {
    const socket = netConnect(port, "127.0.0.1")
    let out = ""
    socket.on("data", (b: Buffer) => {
      out += b.toString()
    })
    socket.on("end", () => resolve(out))
    socket.on("error", reject)
    socket.write(head)
  })

describe("credentials repeated in mixed case (raw HTTP/1.1)", () => {
  it.each(["openai", "anthropic", "gemini"] as const)(
    "%s: every copy is removed, the provider key added once",
    async (family) => {
      const head = [
        "GET /__headers?key=" + CLIENT_KEY + "&keep=1&key=" + CLIENT_KEY + " HTTP/1.1",
        `Host: ${family}.test`,
        // The family's own form first, so it authenticates; then every other form, several times.
        ...(family === "openai" ? [`Authorization: Bearer ${CLIENT_KEY}`] : []),
        ...(family === "anthropic" ? [`x-api-key: ${CLIENT_KEY}`] : []),
        ...(family === "gemini" ? [`x-goog-api-key: ${CLIENT_KEY}`] : []),
        `AUTHORIZATION: Bearer ${CLIENT_KEY}`,
        `authorization: Bearer ${CLIENT_KEY}`,
        `Proxy-Authorization: Bearer ${CLIENT_KEY}`,
        `X-Api-Key: ${CLIENT_KEY}`,
        `X-API-KEY: ${CLIENT_KEY}`,
        `X-Goog-Api-Key: ${CLIENT_KEY}`,
        `x-goog-api-key: ${CLIENT_KEY}`,
        "Connection: close",
        "",
        ""
      ].join("\r\n")
      const res = await rawHttp(stack().proxy.httpPort, head)
      expect(res).toMatch(/^HTTP\/1\.1 200 /)
      const echo = JSON.parse(res.slice(res.indexOf("\r\n\r\n") + 4)) as HeadersEcho
      expectOnlyProviderKey(echo, family, "h1")
    }
  )
})

describe("the proxy's own output", () => {
  it("never contains a client or provider key", () => {
    const out = stack().proxyOutput()
    expect(out).toContain("openproxy started")
    for (const secret of [CLIENT_KEY, WRONG_KEY, ...Object.values(PROVIDER_KEYS)]) expect(out).not.toContain(secret)
  })
})
