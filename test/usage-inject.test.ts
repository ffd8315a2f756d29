// OpenAI stream usage injection: the request-body rewrite (only `stream_options` changes, every other byte stays)
// and the response Transform that removes exactly the usage-only chunk, for any chunking, while the usage tap
// still sees it.
import { once } from "node:events"
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { injectStreamUsage, SseUsageTap, StripUsageChunk } from "../src/domain/usage/index.js"
import { mayStream } from "../src/domain/usage/inject.js"
import * as X from "./usage-fixtures.js"
import { split } from "./usage-fixtures.js"

const inject = (text: string): string | undefined => injectStreamUsage(Buffer.from(text))?.toString()

describe("injectStreamUsage", () => {
  it("adds stream_options right after the opening brace, every other byte unchanged", () => {
    const body =
      ' {\n  "model": "gpt-4o",\n  "stream": true,\n  "seed": 12345678901234567890,\n  "messages": [{"role":"user","content":"hi"}]\n}'
    const out = inject(body)
    expect(out).toBe(
      ' {"stream_options":{"include_usage":true},\n  "model": "gpt-4o",\n  "stream": true,\n  "seed": 12345678901234567890,\n  "messages": [{"role":"user","content":"hi"}]\n}'
    )
  })

  it("rewrites only the stream_options value when it exists without include_usage: true", () => {
    expect(inject('{"model":"m","stream_options":{"include_obfuscation":false},"stream":true}')).toBe(
      '{"model":"m","stream_options":{"include_obfuscation":false,"include_usage":true},"stream":true}'
    )
    expect(inject('{"stream":true,"stream_options": {"include_usage": false} ,"n":2}')).toBe(
      '{"stream":true,"stream_options": {"include_usage":true} ,"n":2}'
    )
    expect(inject('{"stream":true,"stream_options":null}')).toBe(
      '{"stream":true,"stream_options":{"include_usage":true}}'
    )
  })

  it("a duplicated stream_options key: the last one (the one JSON.parse reads) is rewritten", () => {
    const out = inject('{"stream_options":{"include_usage":true},"stream":true,"stream_options":{}}')
    expect(out).toBe('{"stream_options":{"include_usage":true},"stream":true,"stream_options":{"include_usage":true}}')
  })

  it("leaves alone what needs no change or is not a streamed JSON object", () => {
    for (const body of [
      '{"model":"m","messages":[]}',
      '{"model":"m","stream":false}',
      '{"model":"m","stream":"true"}',
      '{"stream":true,"stream_options":{"include_usage":true}}',
      '{"stream":true,"stream_options":"yes"}',
      '{"stream":true,"stream_options":[]}',
      '[{"stream":true}]',
      '{"stream":true,',
      '{"stream":true}}',
      '\ufeff{"stream":true}',
      ""
    ]) {
      expect(inject(body), body).toBeUndefined()
    }
  })

  it("property: any streamed request object keeps its meaning, with include_usage added", () => {
    const key = fc.string({ maxLength: 8 }).filter((k) => k !== "stream" && k !== "stream_options" && k !== "__proto__")
    fc.assert(
      fc.property(
        fc.dictionary(key, fc.jsonValue({ maxDepth: 3 }), { maxKeys: 6 }),
        fc.option(fc.dictionary(key, fc.jsonValue({ maxDepth: 1 }), { maxKeys: 3 }), { nil: undefined }),
        fc.constantFrom(undefined, 2, "\t"),
        (rest, options, indent) => {
          const req: Record<string, unknown> = { ...rest, stream: true }
          if (options !== undefined) req.stream_options = options
          const body = JSON.stringify(req, null, indent)
          const out = injectStreamUsage(Buffer.from(body))
          expect(out).toBeDefined()
          const parsed = JSON.parse(String(out))
          const sent = JSON.parse(body) // (what the client sent: JSON has no -0)
          expect(parsed).toEqual({ ...sent, stream_options: { ...(sent.stream_options ?? {}), include_usage: true } })
          if (options === undefined) {
            // pure insertion: removing it gives the original bytes back
            expect(String(out).replace('"stream_options":{"include_usage":true},', "")).toBe(body)
          }
        }
      ),
      { numRuns: 300 }
    )
  })
})

const runStrip = async (parts: Buffer[]) => {
  const tap = new SseUsageTap("openai-chat", () => 0)
  const strip = new StripUsageChunk(tap)
  const out: Buffer[] = []
  strip.on("data", (c: Buffer) => out.push(c))
  for (const p of parts) strip.write(p)
  strip.end()
  await once(strip, "end")
  return { bytes: Buffer.concat(out), chunks: out, tap: tap.finish(), removed: strip.removed }
}

describe("mayStream (the byte scan before any parse)", () => {
  it('true only when some "stream" key is followed by : true', () => {
    const t = (s: string) => mayStream(Buffer.from(s))
    expect(t('{"model":"m","stream":false}')).toBe(false)
    expect(t('{"model":"m"}')).toBe(false)
    expect(t('{"stream" :\n true}')).toBe(true)
    expect(t('{"stream":false,"x":{"stream":true}}')).toBe(true) // the parse then decides (top level only)
    expect(t('{"stream":"true"}')).toBe(false)
    expect(t('{"stream":')).toBe(false)
    expect(injectStreamUsage(Buffer.from('{"stream":false,"x":{"stream":true}}'))).toBeUndefined()
  })
  it("never false for a body injectStreamUsage would change", () => {
    fc.assert(
      fc.property(fc.dictionary(fc.constantFrom("stream", "model", "n", "stream_options"), fc.jsonValue()), (o) => {
        const body = Buffer.from(JSON.stringify(o))
        if (injectStreamUsage(body) !== undefined) expect(mayStream(body)).toBe(true)
      })
    )
  })
})

describe("StripUsageChunk", () => {
  const s = X.openaiChatStreamParts(true)
  const upstream = Buffer.from(s.before + s.usageChunk + s.after)
  const expected = Buffer.from(s.before + s.after)

  it("removes the usage-only chunk, passes everything else, and the tap still counts it", async () => {
    const r = await runStrip([upstream])
    expect(r.bytes.equals(expected)).toBe(true)
    expect(r.removed).toBe(1)
    expect(r.tap.usage).toEqual(X.openaiChatStreamUsage)
  })

  it("chunks that hold whole events pass as the very same buffers", async () => {
    const events: Buffer[] = (s.before + s.usageChunk + s.after).split(/(?<=\n\n)/).map((e) => Buffer.from(e))
    const r = await runStrip(events)
    expect(r.chunks.length).toBe(events.length - 1)
    for (const c of r.chunks) expect(events.includes(c)).toBe(true)
  })

  it("property: any split gives the same output bytes and the same usage", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.integer({ min: 0, max: upstream.length }), { maxLength: 30 }), async (cuts) => {
        const r = await runStrip(split(upstream, cuts))
        expect(r.bytes.toString()).toBe(expected.toString())
        expect(r.tap.usage).toEqual(X.openaiChatStreamUsage)
      }),
      { numRuns: 200 }
    )
  })

  it("CRLF line ends, too", async () => {
    const crlf = (t: string): string => t.replaceAll("\n", "\r\n")
    const r = await runStrip(split(Buffer.from(crlf(s.before + s.usageChunk + s.after)), [10, 200, 900, 1300, 1310]))
    expect(r.bytes.toString()).toBe(crlf(s.before + s.after))
  })

  it("keeps Azure's choices-empty content-filter chunk, streams without a usage chunk, and [DONE]", async () => {
    const body = Buffer.from(X.azurePromptFilterChunk + X.openaiChatStreamParts(false).before + "data: [DONE]\n\n")
    fc.assert(fc.property(fc.array(fc.integer({ min: 0, max: body.length }), { maxLength: 10 }), () => true))
    for (const cuts of [[], [5], [40, 41, 300], [body.length - 3]]) {
      const r = await runStrip(split(body, cuts))
      expect(r.bytes.equals(body)).toBe(true)
      expect(r.removed).toBe(0)
    }
  })

  it("an error event or a non-JSON stream passes unchanged", async () => {
    const body = Buffer.from(
      'event: error\ndata: {"error":{"message":"overloaded","choices":[]}}\n\n: keep-alive\n\nretry: 100\n\n'
    )
    const r = await runStrip(split(body, [3, 30]))
    expect(r.bytes.equals(body)).toBe(true)
  })
})
