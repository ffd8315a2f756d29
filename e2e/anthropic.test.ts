// e2e: the official `@anthropic-ai/sdk` through a real openproxy process to the mock provider, over every
// client leg (HTTP/1.1, HTTPS HTTP/1.1, HTTPS HTTP/2, h2c) and both upstream protocols: messages plain and
// streamed, authenticating with an API key (`x-api-key`) and with a bearer token (`authToken`).
import Anthropic from "@anthropic-ai/sdk"
import { describe, expect, it } from "vitest"
import { collect, EXPECTED_CONNECTION, LEGS, type Leg } from "./support/clients.js"
import { useStack } from "./support/setup.js"
import { CLIENT_KEY, providerHost, REPLY, type Upstream } from "./support/stack.js"

const { leg: getLeg } = useStack()

const UPSTREAMS: Upstream[] = ["h1", "h2"]
const upstreamTag = (u: Upstream): string => (u === "h1" ? "http/1.1" : "h2")

type Auth = "api key" | "bearer token"
const AUTHS: Auth[] = ["api key", "bearer token"]

describe.each(LEGS)("anthropic SDK over %s", (legName) => {
  const leg = (): Leg => getLeg(legName)

  describe.each(UPSTREAMS)("to a %s upstream", (upstream) => {
    describe.each(AUTHS)("with an %s", (auth) => {
      /** the headers of every request the SDK sent */
      const sent: Headers[] = []
      const client = (): Anthropic => {
        const common = {
          baseURL: leg().origin(providerHost("anthropic", upstream)),
          fetch: (input: string | URL | Request, init?: RequestInit) => {
            sent.push(new Headers(init?.headers))
            return leg().fetch(input, init)
          },
          maxRetries: 0
        }
        // SDK 1.13 sends `apiKey` as `Authorization: Bearer`; the `x-api-key` form is a default header.
        return auth === "api key"
          ? new Anthropic({ ...common, apiKey: null, authToken: null, defaultHeaders: { "x-api-key": CLIENT_KEY } })
          : new Anthropic({ ...common, authToken: CLIENT_KEY })
      }

      it("creates a message", async () => {
        const { data, response } = await client()
          .messages.create({
            model: "claude-mock-large",
            max_tokens: 64,
            messages: [{ role: "user", content: "hi" }]
          })
          .withResponse()
        expect(data.content).toEqual([{ type: "text", text: REPLY }])
        expect(data.model).toBe("claude-mock-large")
        expect(data.stop_reason).toBe("end_turn")
        expect(data.usage).toMatchObject({ input_tokens: 10, output_tokens: 6 })
        expect(response.headers.get("x-upstream-protocol")).toBe(upstreamTag(upstream))
        expect(response.headers.get("request-id")).toBe("req_mock")
        // The SDK really sent the credential in the form under test.
        const h = sent[sent.length - 1]
        if (auth === "api key") {
          expect([h.get("x-api-key"), h.get("authorization")]).toEqual([CLIENT_KEY, null])
        } else {
          expect([h.get("x-api-key"), h.get("authorization")]).toEqual([null, `Bearer ${CLIENT_KEY}`])
        }
      })

      it("streams a message (messages.stream + finalMessage)", async () => {
        const stream = client().messages.stream({
          model: "claude-mock-small",
          max_tokens: 64,
          messages: [{ role: "user", content: "hi" }]
        })
        const deltas: string[] = []
        stream.on("text", (t) => deltas.push(t))
        const final = await stream.finalMessage()
        expect(deltas).toEqual(["Hello", " from", " the", " mock", " provider", "."])
        expect(final.content).toEqual([{ type: "text", text: REPLY }])
        expect(final.model).toBe("claude-mock-small")
        expect(final.stop_reason).toBe("end_turn")
        expect(final.usage.output_tokens).toBe(6)
      })

      it("streams raw events (messages.create stream: true)", async () => {
        const { data: stream, response } = await client()
          .messages.create({
            model: "claude-mock-large",
            max_tokens: 64,
            messages: [{ role: "user", content: "hi" }],
            stream: true
          })
          .withResponse()
        expect(response.headers.get("x-upstream-protocol")).toBe(upstreamTag(upstream))
        const events = await collect(stream)
        expect(events[0].type).toBe("message_start")
        expect(events[events.length - 1].type).toBe("message_stop")
        const text = events
          .flatMap((e) => (e.type === "content_block_delta" && e.delta.type === "text_delta" ? [e.delta.text] : []))
          .join("")
        expect(text).toBe(REPLY)
      })
    })
  })

  it(`opened only ${EXPECTED_CONNECTION[legName]} connections to the proxy`, () => {
    expect(leg().connections.length).toBeGreaterThan(0)
    expect(new Set(leg().connections)).toEqual(new Set([EXPECTED_CONNECTION[legName]]))
  })
})
