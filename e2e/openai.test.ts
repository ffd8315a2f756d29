// e2e: the official `openai` SDK through a real openproxy process to the mock provider, over every client
// leg (HTTP/1.1, HTTPS HTTP/1.1, HTTPS HTTP/2, h2c) and both upstream protocols (HTTP/1.1, h2 over TLS):
// chat completions (plain and streamed with usage), the Responses API streamed, embeddings, models.
import OpenAI from "openai"
import { describe, expect, it } from "vitest"
import { collect, EXPECTED_CONNECTION, LEGS, type Leg, type LegName, makeLeg, nodeHttp2Leg } from "./support/clients.js"
import { useStack } from "./support/setup.js"
import { CLIENT_KEY, providerHost, REPLY, type Upstream } from "./support/stack.js"

const { stack, leg: getLeg } = useStack()

const UPSTREAMS: Upstream[] = ["h1", "h2"]
const upstreamTag = (u: Upstream): string => (u === "h1" ? "http/1.1" : "h2")

describe.each(LEGS)("openai SDK over %s", (legName) => {
  const leg = (): Leg => getLeg(legName)

  describe.each(UPSTREAMS)("to a %s upstream", (upstream) => {
    const client = (): OpenAI =>
      new OpenAI({
        apiKey: CLIENT_KEY,
        baseURL: leg().origin(providerHost("openai", upstream)) + "/v1",
        fetch: leg().fetch,
        maxRetries: 0
      })

    it("creates a chat completion", async () => {
      const { data, response } = await client()
        .chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] })
        .withResponse()
      expect(data.choices[0].message.content).toBe(REPLY)
      expect(data.model).toBe("gpt-4o-mini")
      expect(data.usage?.total_tokens).toBe(16)
      expect(response.headers.get("x-upstream-protocol")).toBe(upstreamTag(upstream))
    })

    it("streams a chat completion with include_usage", async () => {
      const { data: stream, response } = await client()
        .chat.completions.create({
          model: "gpt-4o",
          messages: [{ role: "user", content: "hi" }],
          stream: true,
          stream_options: { include_usage: true }
        })
        .withResponse()
      expect(response.headers.get("content-type")).toMatch(/^text\/event-stream/)
      expect(response.headers.get("x-upstream-protocol")).toBe(upstreamTag(upstream))
      const chunks = await collect(stream)
      const text = chunks.map((c) => c.choices[0]?.delta?.content ?? "").join("")
      expect(text).toBe(REPLY)
      expect(chunks.some((c) => c.choices[0]?.finish_reason === "stop")).toBe(true)
      const last = chunks[chunks.length - 1]
      expect(last.choices).toEqual([])
      expect(last.usage).toEqual({ prompt_tokens: 10, completion_tokens: 6, total_tokens: 16 })
      // Usage only on the final chunk.
      expect(chunks.slice(0, -1).every((c) => c.usage === null || c.usage === undefined)).toBe(true)
    })

    it("streams a chat completion without include_usage: no usage chunk, though the proxy read the usage", async () => {
      const id = `e2e-no-usage-${legName}-${upstream}`
      const stream = await client().chat.completions.create(
        { model: "gpt-4o", messages: [{ role: "user", content: "hi" }], stream: true },
        { headers: { "x-request-id": id } }
      )
      const chunks = await collect(stream)
      expect(chunks.map((c) => c.choices[0]?.delta?.content ?? "").join("")).toBe(REPLY)
      // exactly what the client asked for: no chunk without choices, no usage values
      expect(chunks.every((c) => c.choices.length === 1)).toBe(true)
      expect(chunks.every((c) => c.usage === null || c.usage === undefined)).toBe(true)
      // the proxy asked the upstream for the usage chunk (usage.inject_openai_stream_usage) and logged its figures
      await expect
        .poll(() => stack().proxyOutput())
        .toMatch(new RegExp(`request_id=${id} .* input_tokens=10 output_tokens=6 `))
    })

    it("streams a Responses API answer", async () => {
      const stream = await client().responses.create({ model: "gpt-4.1", input: "hi", stream: true })
      const events = await collect(stream)
      const deltas = events.flatMap((e) => (e.type === "response.output_text.delta" ? [e.delta] : []))
      expect(deltas.join("")).toBe(REPLY)
      expect(events[0].type).toBe("response.created")
      const done = events[events.length - 1]
      expect(done.type).toBe("response.completed")
      if (done.type === "response.completed") {
        // (output_text is an SDK convenience added to non-streamed responses only)
        expect(done.response.output).toMatchObject([
          { type: "message", content: [{ type: "output_text", text: REPLY }] }
        ])
        expect(done.response.usage?.total_tokens).toBe(16)
      }
      // sequence numbers arrive in order, none lost
      expect(events.map((e) => e.sequence_number)).toEqual(events.map((_, i) => i))
    })

    it("creates embeddings", async () => {
      const res = await client().embeddings.create({ model: "text-embedding-3-small", input: ["one", "two", "three"] })
      expect(res.data.map((d) => d.index)).toEqual([0, 1, 2])
      // The SDK asks for base64 and decodes it: 16 floats each (the mock's default size).
      for (const d of res.data) {
        expect(d.embedding).toHaveLength(16)
        expect(d.embedding.every((x) => Number.isFinite(x) && Math.abs(x) <= 0.5)).toBe(true)
      }
      expect(res.usage.total_tokens).toBe(12)
    })

    it("lists models", async () => {
      const models = await collect(client().models.list())
      expect(models.map((m) => m.id)).toEqual(["gpt-4o-mini", "gpt-4o", "gpt-4.1", "text-embedding-3-small"])
    })
  })

  it(`opened only ${EXPECTED_CONNECTION[legName]} connections to the proxy`, () => {
    expect(leg().connections.length).toBeGreaterThan(0)
    expect(new Set(leg().connections)).toEqual(new Set([EXPECTED_CONNECTION[legName]]))
  })
})

// The ALPN record above shows what each connection negotiated; this shows HTTP/2 is really in use:
// concurrent streams that overlap in time share one connection on h2 and h2c, while HTTP/1.1 needs one
// connection per in-flight request. (For h2 over TLS this uses the node:http2 fetch: undici never runs a
// non-idempotent request (POST) beside another on an h2 connection, so its streams would not overlap.)
describe("concurrent streamed completions", () => {
  const CONCURRENT = 6
  const cases: Array<[LegName, number]> = [
    ["https2", 1],
    ["h2c", 1],
    ["https1", CONCURRENT],
    ["http1", CONCURRENT]
  ]
  it.each(cases)("over %s overlap on %i connection(s)", async (name, expected) => {
    const s = stack()
    const leg =
      name === "https2"
        ? nodeHttp2Leg(name, s.proxy.httpsPort, s.certs.caCert)
        : makeLeg(name, { http: s.proxy.httpPort, https: s.proxy.httpsPort }, s.certs.caCert)
    try {
      const client = new OpenAI({
        apiKey: CLIENT_KEY,
        baseURL: leg.origin("openai.test") + "/v1",
        fetch: leg.fetch,
        maxRetries: 0
      })
      /** when each stream's first chunk arrived, and when each stream ended */
      const firstChunks: number[] = []
      const ends: number[] = []
      const texts = await Promise.all(
        Array.from({ length: CONCURRENT }, async () => {
          const stream = await client.chat.completions.create(
            { model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }], stream: true },
            // the mock spaces its SSE events so that the streams overlap
            { headers: { "x-mock-stream-interval-ms": "40" } }
          )
          let text = ""
          for await (const c of stream) {
            if (text === "" && firstChunks.length < CONCURRENT) firstChunks.push(Date.now())
            text += c.choices[0]?.delta?.content ?? ""
          }
          ends.push(Date.now())
          return text
        })
      )
      expect(texts).toEqual(Array.from({ length: CONCURRENT }, () => REPLY))
      // The streams overlapped: every stream had started before any of them finished.
      expect(firstChunks).toHaveLength(CONCURRENT)
      expect(Math.max(...firstChunks)).toBeLessThan(Math.min(...ends))
      if (expected === 1) expect(leg.connections).toEqual([EXPECTED_CONNECTION[name]])
      else {
        // HTTP/1.1: at least one connection per in-flight request. undici's Pool may open a few more than that
        // when the requests arrive within the same milliseconds (openai 7 issues them back to back; seen with
        // 11 connections for 6 requests, on Node 20 and 24), so the count is a floor, not an exact figure.
        expect(leg.connections.length).toBeGreaterThanOrEqual(expected)
        expect(new Set(leg.connections)).toEqual(new Set([EXPECTED_CONNECTION[name]]))
      }
    } finally {
      await leg.close()
    }
  })
})
