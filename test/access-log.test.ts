// The access-log formatter and writer (SPEC §10) and request ids: every field in json and text, the query (and a
// Gemini `key=`) never written, client-controlled values unable to break or forge a line, one write per event-loop
// turn; request ids valid per SPEC and unique across generators (processes).
import { describe, expect, it } from "vitest"
import type { ProviderConfig } from "../src/config/types.js"
import {
  ACCESS_LOG_BUFFER,
  type AccessLogEntry,
  type AccessSource,
  entryOf,
  formatAccessLine,
  makeAccessLog
} from "../src/observability/accessLog.js"
import { isValidRequestId, makeRequestIds } from "../src/observability/requestId.js"

const entry: AccessLogEntry = {
  time: Date.UTC(2026, 0, 2, 3, 4, 5, 678),
  requestId: "abc-1",
  client: "127.0.0.1",
  listener: "http",
  protocol: "h2c",
  method: "POST",
  host: "api.openai.test",
  path: "/v1beta/models/gemini:generateContent?key=AIza-TOPSECRET&alt=sse",
  provider: "api.openai.test#0",
  upstreamProtocol: "h2",
  key: "team-a",
  status: 200,
  bytesIn: 321,
  bytesOut: 4567,
  durationMs: 1234.5678,
  ttfbMs: 210.25,
  ttftMs: -1,
  attempts: 1,
  model: "gpt-4o",
  inputTokens: 10,
  outputTokens: 20,
  cacheReadTokens: 3,
  cacheWriteTokens: 0,
  reasoningTokens: undefined,
  outcome: "ok"
}

describe("access log lines", () => {
  it("json: every SPEC §10 field, absent ones null, no query", () => {
    const line = formatAccessLine("json", entry)
    expect(line.endsWith("}\n")).toBe(true)
    expect(JSON.parse(line)).toEqual({
      time: "2026-01-02T03:04:05.678Z",
      level: "info",
      message: "access",
      request_id: "abc-1",
      client: "127.0.0.1",
      listener: "http",
      protocol: "h2c",
      method: "POST",
      host: "api.openai.test",
      path: "/v1beta/models/gemini:generateContent",
      provider: "api.openai.test#0",
      upstream_protocol: "h2",
      key: "team-a",
      status: 200,
      bytes_in: 321,
      bytes_out: 4567,
      duration_ms: 1234.568,
      ttfb_ms: 210.25,
      ttft_ms: null,
      attempts: 1,
      model: "gpt-4o",
      input_tokens: 10,
      output_tokens: 20,
      cache_read_tokens: 3,
      cache_write_tokens: 0,
      reasoning_tokens: null,
      outcome: "ok"
    })
    expect(line).not.toContain("TOPSECRET")
  })

  it("text: the process log's layout, `-` for absent values, no query", () => {
    const line = formatAccessLine("text", entry)
    expect(line).toBe(
      "2026-01-02T03:04:05.678Z INFO access request_id=abc-1 client=127.0.0.1 listener=http protocol=h2c " +
        "method=POST host=api.openai.test path=/v1beta/models/gemini:generateContent provider=api.openai.test#0 " +
        "upstream_protocol=h2 key=team-a status=200 bytes_in=321 bytes_out=4567 duration_ms=1234.568 ttfb_ms=210.25 " +
        "ttft_ms=- attempts=1 model=gpt-4o input_tokens=10 output_tokens=20 cache_read_tokens=3 cache_write_tokens=0 " +
        "reasoning_tokens=- outcome=ok\n"
    )
  })

  it("client-controlled values cannot split or forge a line in either format", () => {
    const hostile = {
      ...entry,
      model: 'x\n2026 INFO access status=200 key="admin"',
      host: "a b=c",
      method: "G\u001bET"
    }
    for (const format of ["json", "text"] as const) {
      const line = formatAccessLine(format, hostile)
      expect(line.split("\n").length).toBe(2)
      expect(line).not.toContain("\u001b")
    }
    const text = formatAccessLine("text", hostile)
    expect(text).toContain('model="x\\n2026 INFO access status=200 key=\\"admin\\""')
    expect(text).toContain('host="a b=c"')
    expect(JSON.parse(formatAccessLine("json", hostile)).model).toBe(hostile.model)
  })

  it("writeExchange writes what formatAccessLine writes for the exchange's entry, repeating values or not", () => {
    const providers = [
      { hostRaw: "api.openai.test", index: 0 },
      { hostRaw: "api.anthropic.test", index: 1 },
      { hostRaw: "h\u00e9=st", index: 2 }
    ] as unknown as Array<ProviderConfig>
    const pick = <T>(xs: ReadonlyArray<T>, i: number): T => xs[i % xs.length]
    const sources: Array<AccessSource> = []
    for (let i = 0; i < 300; i++) {
      // Runs of the same value (the memo's hits) and changes (its misses), with hostile and absent values.
      const slow = Math.floor(i / 7)
      sources.push({
        requestId: pick(["id-1", 'x"y', "r=1", "01ABC-zz"], i),
        client: pick(["127.0.0.1", undefined, "::1"], slow),
        listener: pick(["http", "https"], Math.floor(i / 50)),
        protocol: pick(["http/1.1", "h2", "h2c", "ws", "tunnel"] as const, Math.floor(i / 19)),
        method: pick(["POST", "GET", "G\u001bET"], Math.floor(i / 11)),
        hostName: pick(["api.openai.test", "", "a b=c"], Math.floor(i / 13)),
        url: pick(["/v1/chat/completions", "/v1/x?key=AIza-SECRET", `/${"\u00e9".repeat(3)}?q`], Math.floor(i / 23)),
        identity: pick(
          [{ provider: providers[0] }, undefined, { provider: providers[1] }, { provider: providers[2] }],
          Math.floor(i / 17)
        ),
        upstreamProtocol: pick(["http/1.1", undefined, "h2"], Math.floor(i / 5)),
        keyName: pick(["team-a", undefined, "cl\u00e9"], Math.floor(i / 3)),
        status: pick([200, 0, 429, 502], i),
        bytesIn: i * 13,
        bytesOut: i * 1021,
        ttfbMs: pick([-1, 0.25, 12.3456789], i),
        ttftMs: pick([-1, 3, 0.0005], i),
        attempts: i % 3,
        model: pick(["gpt-4o", "unknown", undefined, 'x\n2026 INFO key="admin"'], slow),
        responseModel: pick(["gpt-4o-2024", undefined, "mod\u00e8le-\u{1f642}"], Math.floor(i / 2)),
        usage: pick(
          [
            { input: 1, output: 2, cacheRead: 3, cacheWrite: 4, reasoning: 5 },
            { input: 1, output: 2, cacheRead: 3, cacheWrite: 4, reasoning: 6 },
            { input: 1, output: 2, cacheRead: 3, cacheWrite: 4, reasoning: 6 },
            undefined,
            { input: 0, output: 2, cacheRead: 3, cacheWrite: 4, reasoning: 6 }
          ],
          Math.floor(i / 2)
        ),
        outcome: pick(["ok", "client_abort", "upstream_error", "truncated", "refused"] as const, slow)
      })
    }
    for (const format of ["json", "text"] as const) {
      const chunks: Array<string> = []
      const log = makeAccessLog(format, (c) => chunks.push(c))
      for (const [i, src] of sources.entries()) log.writeExchange(src, i * 1.2345)
      log.flush()
      const lines = chunks.join("").split("\n").slice(0, -1)
      expect(lines.length).toBe(sources.length)
      lines.forEach((line, i) => {
        const time = Date.parse(format === "json" ? JSON.parse(line).time : line.slice(0, line.indexOf(" ")))
        expect(`${line}\n`).toBe(formatAccessLine(format, entryOf(sources[i], i * 1.2345, time)))
      })
    }
  })

  it("writes each line's time as toISOString does, within a second, across seconds and at the edges", () => {
    const base = Date.UTC(2026, 0, 2, 3, 4, 5, 0)
    const times = [base, base + 1, base + 999, base + 1000, base + 7, base + 1000, base + 61_999, base + 62_000]
    times.push(0, 999, 1000, -1, -1000, -1001, 1.5, 253402300799999, -62198755200000, base + 0.25, base + 10, base)
    const chunks: Array<string> = []
    const log = makeAccessLog("text", (c) => chunks.push(c))
    for (const time of times) log.write({ ...entry, time })
    log.flush()
    expect(chunks.join("")).toBe(times.map((time) => formatAccessLine("text", { ...entry, time })).join(""))
  })

  it("writes the lines of one event-loop turn at once", async () => {
    const chunks: Array<string> = []
    const log = makeAccessLog("json", (c) => chunks.push(c))
    log.write(entry)
    log.write({ ...entry, requestId: "abc-2" })
    expect(chunks).toEqual([])
    await new Promise((r) => setImmediate(r))
    expect(chunks.length).toBe(1)
    expect(
      chunks[0]
        .split("\n")
        .filter(Boolean)
        .map((l) => JSON.parse(l).request_id)
    ).toEqual(["abc-1", "abc-2"])
    log.write(entry)
    log.flush()
    expect(chunks.length).toBe(2)
  })

  it("with a byte sink: the same text as the string writer, batched in one reused buffer, in order", async () => {
    const strings: Array<string> = []
    const bytes: Array<Buffer> = []
    const asString = makeAccessLog("json", (c) => strings.push(c), 30)
    // The sink must be done with the bytes on return (the batch buffer is reused): copy them, as stdout's does.
    const asBytes = makeAccessLog(
      "json",
      () => expect.fail("no string writes"),
      30,
      (b) => bytes.push(Buffer.from(b))
    )
    const entries: Array<AccessLogEntry> = []
    for (let i = 0; i < 400; i++) {
      entries.push({
        ...entry,
        requestId: `r-${i}`,
        model: i % 7 === 0 ? "modèle-🙂" : entry.model,
        time: entry.time + i
      })
    }
    // A line longer than the whole buffer (a long non-ASCII path) goes alone, after what was pending.
    entries.splice(150, 0, { ...entry, requestId: "huge", path: `/${"é".repeat(40_000)}` })
    for (const e of entries) {
      asString.write(e)
      asBytes.write(e)
    }
    asString.flush()
    asBytes.flush()
    const text = Buffer.concat(bytes).toString("utf8")
    expect(text).toBe(strings.join(""))
    expect(
      text
        .split("\n")
        .filter(Boolean)
        .map((l) => JSON.parse(l).request_id)
    ).toEqual(entries.map((e) => e.requestId))
    expect(bytes.length).toBeGreaterThan(2)
    expect(bytes.some((b) => b.toString("utf8").startsWith('{"time"') && b.includes("huge"))).toBe(true)
    for (const b of bytes) expect(b.length === 0).toBe(false)
  })

  it("with flushMs: one write for the lines of that long, or at once past the buffer size", async () => {
    const chunks: Array<string> = []
    const log = makeAccessLog("text", (c) => chunks.push(c), 30)
    log.write(entry)
    await new Promise((r) => setImmediate(r))
    log.write({ ...entry, requestId: "abc-2" })
    await new Promise((r) => setTimeout(r, 5))
    expect(chunks).toEqual([])
    await new Promise((r) => setTimeout(r, 60))
    expect(chunks.length).toBe(1)
    expect(chunks[0].match(/ access /g)?.length).toBe(2)
    const line = formatAccessLine("text", entry).length
    for (let n = 0; n * line < ACCESS_LOG_BUFFER; n++) log.write(entry)
    expect(chunks.length).toBe(2)
    expect(chunks[1].length).toBeGreaterThanOrEqual(ACCESS_LOG_BUFFER)
    log.write(entry)
    log.flush()
    expect(chunks.length).toBe(3)
  })
})

describe("request ids", () => {
  it("accepts 1-128 visible ASCII characters only", () => {
    expect(isValidRequestId("a")).toBe(true)
    expect(isValidRequestId("x".repeat(128))).toBe(true)
    expect(isValidRequestId("!~")).toBe(true)
    expect(isValidRequestId("")).toBe(false)
    expect(isValidRequestId("x".repeat(129))).toBe(false)
    expect(isValidRequestId("a b")).toBe(false)
    expect(isValidRequestId("a\tb")).toBe(false)
    expect(isValidRequestId("é")).toBe(false)
    expect(isValidRequestId("a\u007f")).toBe(false)
  })

  it("keeps a valid client id, replaces others, and generates ids unique across processes", () => {
    const a = makeRequestIds()
    const b = makeRequestIds()
    expect(a.fromHeader("client-id-1")).toBe("client-id-1")
    expect(a.fromHeader("bad id")).not.toBe("bad id")
    expect(a.fromHeader(["x", "y"])).not.toMatch(/^[xy]$/)
    expect(a.fromHeader(undefined)).toMatch(/^[A-Za-z0-9_-]{12}-[0-9a-z]+$/)
    const ids = new Set<string>()
    for (let i = 0; i < 10_000; i++) {
      ids.add(a.next())
      ids.add(b.next())
    }
    expect(ids.size).toBe(20_000)
    for (const id of ids) expect(isValidRequestId(id)).toBe(true)
  })
})
