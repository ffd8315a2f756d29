// e2e: the official `@google/genai` SDK through a real openproxy process to the mock provider, over every
// client leg (HTTP/1.1, HTTPS HTTP/1.1, HTTPS HTTP/2, h2c) and both upstream protocols: generateContent
// plain and streamed, with the key in the `x-goog-api-key` header (the SDK's way) and in `?key=`.
import { GoogleGenAI } from "@google/genai"
import { describe, expect, it } from "vitest"
import { EXPECTED_CONNECTION, type Fetch, inputUrl, LEGS, type Leg } from "./support/clients.js"
import { useStack } from "./support/setup.js"
import { CLIENT_KEY, providerHost, REPLY, type Upstream } from "./support/stack.js"

const { leg: getLeg } = useStack()

const UPSTREAMS: Upstream[] = ["h1", "h2"]
const upstreamTag = (u: Upstream): string => (u === "h1" ? "http/1.1" : "h2")

type KeyPlace = "header" | "query"
const PLACES: KeyPlace[] = ["header", "query"]

/**
 * The SDK always sends its key as `x-goog-api-key`; for the `?key=` form this fetch moves it into the
 * query string (what older clients and curl users do), so the SDK still builds the request and parses
 * the answer. Every request it sends is recorded so the test can check the form that went out.
 */
const keyInQuery =
  (inner: Fetch, sent: string[]): Fetch =>
  (input, init) => {
    const url = new URL(inputUrl(input))
    const headers = new Headers(init?.headers)
    const key = headers.get("x-goog-api-key")
    if (key !== null) {
      headers.delete("x-goog-api-key")
      url.searchParams.set("key", key)
    }
    sent.push(`${url.search} ${headers.has("x-goog-api-key") ? "header" : "no-header"}`)
    return inner(url.href, { ...init, headers })
  }

describe.each(LEGS)("genai SDK over %s", (legName) => {
  const leg = (): Leg => getLeg(legName)

  describe.each(UPSTREAMS)("to a %s upstream", (upstream) => {
    describe.each(PLACES)("with the key in the %s", (place) => {
      const sent: string[] = []
      const client = (): GoogleGenAI => {
        const recording: Fetch = (input, init) => {
          const h = new Headers(init?.headers)
          sent.push(`${new URL(inputUrl(input)).search} ${h.has("x-goog-api-key") ? "header" : "no-header"}`)
          return leg().fetch(input, init)
        }
        return new GoogleGenAI({
          apiKey: CLIENT_KEY,
          httpOptions: {
            baseUrl: leg().origin(providerHost("gemini", upstream)),
            fetch: place === "header" ? recording : keyInQuery(leg().fetch, sent),
            retryOptions: { attempts: 1 }
          }
        })
      }

      it("generates content", async () => {
        const res = await client().models.generateContent({ model: "gemini-2.5-flash", contents: "hi" })
        expect(res.text).toBe(REPLY)
        expect(res.modelVersion).toBe("gemini-2.5-flash")
        expect(res.usageMetadata?.totalTokenCount).toBe(16)
        expect(res.candidates?.[0].finishReason).toBe("STOP")
        expect(res.sdkHttpResponse?.headers?.["x-upstream-protocol"]).toBe(upstreamTag(upstream))
        const last = sent[sent.length - 1]
        expect(last).toBe(place === "header" ? " header" : `?key=${CLIENT_KEY} no-header`)
      })

      it("streams generated content", async () => {
        const stream = await client().models.generateContentStream({ model: "gemini-2.5-pro", contents: "hi" })
        const texts: string[] = []
        let lastTokens: number | undefined
        for await (const chunk of stream) {
          texts.push(chunk.text ?? "")
          lastTokens = chunk.usageMetadata?.candidatesTokenCount
          expect(chunk.sdkHttpResponse?.headers?.["x-upstream-protocol"]).toBe(upstreamTag(upstream))
        }
        expect(texts).toEqual(["Hello", " from", " the", " mock", " provider", "."])
        expect(texts.join("")).toBe(REPLY)
        expect(lastTokens).toBe(6)
        const last = sent[sent.length - 1]
        expect(last).toBe(place === "header" ? "?alt=sse header" : `?alt=sse&key=${CLIENT_KEY} no-header`)
      })
    })
  })

  it(`opened only ${EXPECTED_CONNECTION[legName]} connections to the proxy`, () => {
    expect(leg().connections.length).toBeGreaterThan(0)
    expect(new Set(leg().connections)).toEqual(new Set([EXPECTED_CONNECTION[legName]]))
  })
})
