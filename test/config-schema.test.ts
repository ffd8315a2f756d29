// Tests for the Schema-based config definitions: the SPEC §8 connection limits, that examples/config.yml shows
// every top-level setting with its default, and properties of decoding checked over generated configs (paths
// and document order of errors, unknown and empty keys, numbers and durations, secrets kept out of errors).
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as AST from "effect/SchemaAST"
import * as fc from "fast-check"
import { parse as parseYaml, stringify } from "yaml"
import { parseConfig, summarize } from "../src/config/load.js"
import { Settings } from "../src/config/schema.js"

const FILE = "/etc/openproxy/config.yml"
const EXAMPLE = fileURLToPath(new URL("../examples/config.yml", import.meta.url))
const PROVIDER = "providers: [{type: openai, host: h, endpoint: e}]"

/** The result of loading `text`: the snapshot, or the error's `field: reason`. */
const load = (text: string, env: Record<string, string> = {}) =>
  Effect.runPromise(Effect.either(parseConfig(text, FILE, env))).then(
    Either.mapLeft((e) => (e.field === "" ? e.reason : `${e.field}: ${e.reason}`))
  )

const fails = async (text: string): Promise<string> => {
  const r = await load(text)
  if (Either.isRight(r)) throw new Error(`expected an error for:\n${text}`)
  return r.left
}

const value = async (text: string) => {
  const r = await load(text)
  if (Either.isLeft(r)) throw new Error(r.left)
  return r.right
}

describe("connection limits (SPEC §8)", () => {
  it("default to 10000 connections, 256 streams, 256 header fields", async () => {
    const c = await value(`http_port: 0\n${PROVIDER}`)
    expect([c.maxConnections, c.http2MaxConcurrentStreams, c.httpMaxHeadersCount]).toEqual([10_000, 256, 256])
  })

  it("are read and checked with their YAML path", async () => {
    const c = await value(
      `http_port: 0\nmax_connections: 5\nhttp2_max_concurrent_streams: 2147483647\nhttp_max_headers_count: 1\n${PROVIDER}`
    )
    expect([c.maxConnections, c.http2MaxConcurrentStreams, c.httpMaxHeadersCount]).toEqual([5, 2 ** 31 - 1, 1])
    expect(await fails(`http_port: 0\nmax_connections: 0\n${PROVIDER}`)).toBe(
      "max_connections: must be an integer of at least 1"
    )
    expect(await fails(`http_port: 0\nhttp2_max_concurrent_streams: 2147483648\n${PROVIDER}`)).toBe(
      "http2_max_concurrent_streams: must be an integer from 1 to 2147483647"
    )
    expect(await fails(`http_port: 0\nhttp_max_headers_count: 2.5\n${PROVIDER}`)).toBe(
      "http_max_headers_count: must be an integer (got a number)"
    )
    expect(await fails(`http_port: 0\nmax_conections: 5\n${PROVIDER}`)).toBe(
      "max_conections: unknown field (did you mean max_connections?)"
    )
  })

  it("appear in check's summary", async () => {
    const s = summarize(await value(`http_port: 0\nmax_connections: 7\n${PROVIDER}`))
    expect(s).toContain("max_connections 7 per process")
    expect(s).toContain("http2_max_concurrent_streams 256 per session")
    expect(s).toContain("http_max_headers_count 256")
  })
})

describe("examples/config.yml", () => {
  // The YAML names of the top-level settings, from the schema's encoded side.
  const settingsAst = Settings.ast as AST.Transformation
  const yamlKeys = (settingsAst.from as AST.TypeLiteral).propertySignatures.map((ps) => String(ps.name))

  it("shows every top-level setting, with its default (auth_keys aside)", async () => {
    const { readFile } = await import("node:fs/promises")
    const text = await readFile(EXAMPLE, "utf8")
    const written = Object.keys(parseYaml(text, { merge: true }) as Record<string, unknown>)
    expect(yamlKeys.filter((k) => !written.includes(k))).toEqual([])
    const example = await value(text)
    const defaults = await value(`http_port: 0\n${PROVIDER}`)
    for (const key of Object.keys(Settings.fields) as Array<keyof typeof Settings.fields>) {
      if (key !== "authKeys") expect({ key, value: example[key] }).toEqual({ key, value: defaults[key] })
    }
  })

  it("every top-level setting says what it is for", () => {
    for (const ps of (settingsAst.from as AST.TypeLiteral).propertySignatures) {
      // Optional fields are `schema | undefined`; the description sits on the schema.
      const types = AST.isUnion(ps.type) ? ps.type.types : [ps.type]
      const doc = types.map((t) => AST.getDescriptionAnnotation(t)).find((d) => d._tag === "Some")
      expect({ field: ps.name, documented: doc !== undefined }).toEqual({ field: ps.name, documented: true })
    }
  })
})

// Generated values for the properties below.
const wholeNumber = fc.integer({ min: -1_000_000, max: 3_000_000_000 })
const providerFields = {
  tls: "false",
  weight: "2",
  priority: "1",
  is_fallback: "true",
  api_key_cache_ttl: "5",
  http2: "auto",
  port: "8443"
}
const fieldNames = Object.keys(providerFields)

describe("properties of decoding", () => {
  it("an integer limit decodes to itself when in range, else names the field", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(
          ["max_connections", 1, Number.MAX_SAFE_INTEGER] as const,
          ["http2_max_concurrent_streams", 1, 2 ** 31 - 1] as const,
          ["http_max_headers_count", 1, 65_535] as const,
          ["max_request_body_size", 1, Number.MAX_SAFE_INTEGER] as const
        ),
        wholeNumber,
        async ([key, min, max], n) => {
          const r = await load(`http_port: 0\n${key}: ${n}\n${PROVIDER}`)
          if (n >= min && n <= max) {
            expect(Either.isRight(r)).toBe(true)
          } else {
            expect(Either.isLeft(r) && r.left.startsWith(`${key}: must be an integer`)).toBe(true)
          }
        }
      ),
      { numRuns: 150 }
    )
  })

  it("a duration in ms, s, m or h decodes to whole milliseconds, never 0 when positive", async () => {
    const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 100_000 }),
        fc.constantFrom(...(Object.keys(unit) as Array<keyof typeof unit>)),
        fc.boolean(),
        async (n, u, fraction) => {
          const written = fraction ? `${n / 1000}${u}` : `${n}${u}`
          const c = await value(`http_port: 0\ntimeouts: {connect: "${written}"}\n${PROVIDER}`)
          const ms = fraction ? (n / 1000) * unit[u] : n * unit[u]
          expect(c.timeouts.connectMs).toBe(Math.max(1, Math.round(ms)))
        }
      ),
      { numRuns: 150 }
    )
  })

  it("of several problems in a provider, the first in document order is reported", async () => {
    // Each field gets a broken value or an unknown key takes its place; the field order is shuffled.
    const broken: Record<string, string> = {
      tls: "maybe",
      weight: "0",
      priority: "1.5",
      is_fallback: "3",
      api_key_cache_ttl: "-1",
      http2: "h3",
      port: "0"
    }
    await fc.assert(
      fc.asyncProperty(
        fc.shuffledSubarray(fieldNames, { minLength: 1 }),
        fc.array(fc.integer({ min: 0, max: 2 }), { minLength: fieldNames.length, maxLength: fieldNames.length }),
        fc.integer({ min: 0, max: 2 }),
        async (order, kinds, index) => {
          const lines = order.map((f, i) =>
            kinds[i] === 0
              ? `${f}: ${providerFields[f as keyof typeof providerFields]}`
              : kinds[i] === 1
                ? `${f}: ${broken[f]}`
                : `x${f}: 1`
          )
          const firstBad = lines.findIndex((_, i) => kinds[i] !== 0)
          const providers = Array.from({ length: index + 1 }, (_, i) =>
            i < index
              ? "  - {type: openai, host: h, endpoint: e}"
              : ["  - type: openai", "    host: h", "    endpoint: e", ...lines.map((l) => `    ${l}`)].join("\n")
          )
          const r = await load(`http_port: 0\nproviders:\n${providers.join("\n")}`)
          if (firstBad < 0) {
            expect(Either.isRight(r)).toBe(true)
          } else {
            const key = lines[firstBad].slice(0, lines[firstBad].indexOf(":"))
            expect(Either.isLeft(r) && r.left.slice(0, r.left.indexOf(": "))).toBe(`providers[${index}].${key}`)
            if (kinds[firstBad] === 2) expect(Either.isLeft(r) && r.left).toMatch(/: unknown field/)
          }
        }
      ),
      { numRuns: 150 }
    )
  })

  it("an empty value counts as absent, except for an unknown key", async () => {
    await fc.assert(
      fc.asyncProperty(fc.shuffledSubarray(fieldNames), fc.boolean(), async (empty, unknown) => {
        const lines = [...empty.map((f) => `    ${f}:`), ...(unknown ? ["    wieght:"] : [])]
        const r = await load(
          `http_port: 0\nproviders:\n  - type: openai\n    host: h\n    endpoint: e\n${lines.join("\n")}`
        )
        if (unknown) expect(r).toEqual(Either.left("providers[0].wieght: unknown field (did you mean weight?)"))
        else expect(Either.isRight(r) && [r.right.providers[0].weight, r.right.providers[0].tls]).toEqual([1, true])
      }),
      { numRuns: 60 }
    )
  })

  it("a secret never appears in an error, whatever else is wrong", async () => {
    const secret = fc.stringMatching(/^[A-Za-z0-9_-]{12,24}$/).map((s) => `sk-${s}`)
    const mistake = fc.constantFrom("weight: 0", "api_keys: [{key: k}]", "tls: 2", "wieght: 1", "health_check: {}", "")
    await fc.assert(
      fc.asyncProperty(secret, mistake, fc.constantFrom("api_key", "auth_keys"), async (s, m, where) => {
        const keyLine = where === "api_key" ? `api_key: ${s}` : `auth_keys: [${s}, 7]`
        const provider = { type: "anthropic", host: "h", endpoint: "e", ...parseYaml(`${keyLine}\n${m}`) }
        const r = await load(`http_port: 0\n${stringify({ providers: [provider] })}`)
        if (Either.isLeft(r)) expect(r.left).not.toContain(s)
        else expect(JSON.stringify(r.right)).not.toContain(s)
      }),
      { numRuns: 100 }
    )
  })
})
