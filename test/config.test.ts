// Tests for the config loader (SPEC §2): defaults, `${VAR}`, merge keys, every validation error's
// path and wording, host/endpoint parsing, file reading, and that no error or summary leaks a secret.
// biome-ignore-all lint/suspicious/noTemplateCurlyInString: the YAML under test uses ${VAR} on purpose
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises"
import { availableParallelism, tmpdir } from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import { ConfigError, loadConfig, parseConfig, summarize } from "../src/config/load.js"
import type { KeySource, ProviderConfig } from "../src/config/types.js"

const FILE = "/etc/openproxy/config.yml"
const CERT = "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n"
const KEY = "-----BEGIN PRIVATE KEY-----\nMIIEsecretkeymaterial\n-----END PRIVATE KEY-----\n"
const EXAMPLE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../examples/config.yml")

const parse = (text: string, env: Record<string, string | undefined> = {}) => parseConfig(text, FILE, env)
const failure = (text: string, env: Record<string, string | undefined> = {}) => Effect.flip(parse(text, env))
const provider = (text: string, env: Record<string, string | undefined> = {}) =>
  Effect.map(parse(text, env), (c): ProviderConfig => c.providers[0])

/** A minimal valid config with one provider built from `lines` (YAML lines at provider indentation). */
const withProvider = (...lines: ReadonlyArray<string>): string =>
  ["http_port: 0", "providers:", `  - ${lines[0]}`, ...lines.slice(1).map((l) => `    ${l}`)].join("\n")

const openai = (...extra: ReadonlyArray<string>) =>
  withProvider("type: openai", "host: api.openai.test", "endpoint: api.openai.com", ...extra)

const staticKey = (s: KeySource): string => (s._tag === "Static" ? Redacted.value(s.value) : "<command>")

let dir = ""
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "openproxy-config-"))
  await mkdir(path.join(dir, "certs"))
  await writeFile(path.join(dir, "certs", "cert.pem"), CERT)
  await writeFile(path.join(dir, "certs", "key.pem"), KEY)
  await writeFile(path.join(dir, "certs", "ca.pem"), CERT)
  await writeFile(path.join(dir, "not-pem.txt"), "hello\n")
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

describe("defaults", () => {
  it.effect("fills every default", () =>
    Effect.gen(function* () {
      const c = yield* parse(openai())
      expect(c.source).toBe(FILE)
      expect(c.http).toEqual({ port: 0, bindAddress: "0.0.0.0" })
      expect(c.https).toBeUndefined()
      expect(c.authKeys).toEqual([])
      expect(c.healthCheck).toEqual({
        enabled: false,
        intervalMs: 60_000,
        timeoutMs: 5_000,
        unhealthyThreshold: 1,
        healthyThreshold: 1,
        cooldownMs: 30_000
      })
      expect(c.gracefulShutdownTimeoutMs).toBe(5_000)
      expect(c.connectTunnelEnabled).toBe(false)
      expect(c.httpMaxHeaderSize).toBe(16_384)
      expect(c.maxRequestBodySize).toBe(104_857_600)
      expect(c.timeouts).toEqual({
        clientHeaderMs: 30_000,
        connectMs: 10_000,
        tlsHandshakeMs: 10_000,
        responseHeaderMs: 600_000,
        idleMs: 300_000,
        firstTokenMs: 0
      })
      expect(c.workers).toBe(1)
      const p = c.providers[0]
      expect(p).toEqual({
        index: 0,
        type: "openai",
        hostRaw: "api.openai.test",
        host: { name: "api.openai.test", port: undefined, pathPrefix: "" },
        endpointHost: "api.openai.com",
        endpointPort: 443,
        upstreamHostHeader: "api.openai.com",
        tls: true,
        http2: "auto",
        caFile: undefined,
        ca: undefined,
        weight: 1,
        priority: 0,
        isFallback: false,
        keys: [],
        apiKeyCacheTtlMs: 0,
        authKeys: [],
        healthCheck: undefined
      })
    })
  )

  it.effect("port defaults to 80 without tls", () =>
    Effect.gen(function* () {
      const p = yield* provider(openai("tls: false"))
      expect(p.endpointPort).toBe(80)
      expect(p.upstreamHostHeader).toBe("api.openai.com")
    })
  )

  it.effect("reads every global field", () =>
    Effect.gen(function* () {
      const c = yield* parse(
        [
          "http_port: 8080",
          "http_bind_address: '::'",
          "auth_keys: [a1, a2]",
          "health_check: {enabled: true, interval: 10, timeout: 2, unhealthy_threshold: 3, healthy_threshold: 2, cooldown: 0}",
          "graceful_shutdown_timeout: 0",
          "connect_tunnel_enabled: true",
          "max_request_body_size: 1024",
          "timeouts: {client_header: 1, connect: 2, tls_handshake: 3, response_header: 4, idle: 5}",
          "workers: 4",
          "providers: [{type: openai, host: h, endpoint: e}]"
        ].join("\n")
      )
      expect(c.http).toEqual({ port: 8080, bindAddress: "::" })
      expect(c.authKeys.map(Redacted.value)).toEqual(["a1", "a2"])
      expect(c.healthCheck).toEqual({
        enabled: true,
        intervalMs: 10_000,
        timeoutMs: 2_000,
        unhealthyThreshold: 3,
        healthyThreshold: 2,
        cooldownMs: 0
      })
      expect(c.gracefulShutdownTimeoutMs).toBe(0)
      expect(c.connectTunnelEnabled).toBe(true)
      expect(c.maxRequestBodySize).toBe(1024)
      expect(c.timeouts).toEqual({
        clientHeaderMs: 1000,
        connectMs: 2000,
        tlsHandshakeMs: 3000,
        responseHeaderMs: 4000,
        idleMs: 5000,
        firstTokenMs: 0
      })
      expect(c.workers).toBe(4)
    })
  )
})

describe("environment variables", () => {
  const env = { OPENAI_KEY: "sk-from-env", CLIENT: "client-from-env", UP: "upstream.example:8443", P: "second" }

  it.effect("substitutes ${VAR} in keys, auth_keys and endpoint", () =>
    Effect.gen(function* () {
      const c = yield* parse(
        [
          "http_port: 0",
          "auth_keys: ['${CLIENT}']",
          "providers:",
          "  - type: openai",
          "    host: a",
          "    endpoint: ${UP}",
          "    api_key: ${OPENAI_KEY}",
          "    auth_keys: ['pre-${P}']",
          "  - type: gemini",
          "    host: b",
          "    endpoint: e",
          "    api_keys: [{key: '${OPENAI_KEY}-2'}]"
        ].join("\n"),
        env
      )
      expect(c.authKeys.map(Redacted.value)).toEqual(["client-from-env"])
      const [a, b] = c.providers
      expect(a.endpointHost).toBe("upstream.example")
      expect(a.endpointPort).toBe(8443)
      expect(staticKey(a.keys[0].source)).toBe("sk-from-env")
      expect(a.authKeys.map(Redacted.value)).toEqual(["pre-second"])
      expect(staticKey(b.keys[0].source)).toBe("sk-from-env-2")
    })
  )

  it.effect("an unset variable names the field and the variable", () =>
    Effect.gen(function* () {
      const e = yield* failure(openai("api_key: ${OPENAI_KEY}"))
      expect(e.field).toBe("providers[0].api_key")
      expect(e.reason).toBe("environment variable OPENAI_KEY is not set")
      expect(e.message).toBe(`${FILE}: providers[0].api_key: environment variable OPENAI_KEY is not set`)
    })
  )

  it.effect("substitutes in cert_file and private_key_file", () =>
    Effect.gen(function* () {
      const c = yield* parseConfig(
        "https_port: 0\ncert_file: ${CERTS}/cert.pem\nprivate_key_file: ${CERTS}/key.pem\nproviders: [{type: openai, host: h, endpoint: e}]",
        path.join(dir, "config.yml"),
        { CERTS: path.join(dir, "certs") }
      )
      expect(c.https?.certFile).toBe(path.join(dir, "certs", "cert.pem"))
    })
  )
})

describe("YAML features", () => {
  it.effect("merge keys from a defaults anchor holder, x-* keys ignored", () =>
    Effect.gen(function* () {
      const c = yield* parse(
        [
          "x-foo: {anything: [1, 2]}",
          "defaults: &defaults",
          "  endpoint: 127.0.0.1:9000",
          "  tls: false",
          "  weight: 2",
          "http_port: 0",
          "providers:",
          "  - type: openai",
          "    host: localhost/openai",
          "    <<: *defaults",
          "  - type: anthropic",
          "    host: localhost/anthropic",
          "    <<: *defaults",
          "    weight: 5",
          "    api_key: k"
        ].join("\n")
      )
      expect(c.providers.map((p) => [p.endpointHost, p.endpointPort, p.tls, p.weight])).toEqual([
        ["127.0.0.1", 9000, false, 2],
        ["127.0.0.1", 9000, false, 5]
      ])
    })
  )

  it.effect("broken YAML reports line:col without the source line", () =>
    Effect.gen(function* () {
      const e = yield* failure("http_port: 0\nproviders:\n  - api_key: sk-secret-abc: x\n")
      expect(e.field).toBe("")
      expect(e.reason).toMatch(/^invalid YAML at line 3:\d+: /)
      expect(e.message).toMatch(new RegExp(`^${FILE}: invalid YAML at line 3:\\d+: `))
      expect(e.message).not.toContain("sk-secret-abc")
    })
  )

  it.effect("duplicate keys and an empty file are errors", () =>
    Effect.gen(function* () {
      expect((yield* failure("http_port: 1\nhttp_port: 2\n")).reason).toMatch(/line 2:1/)
      expect((yield* failure("")).reason).toBe("the file is empty")
      expect((yield* failure("- 1\n")).reason).toBe("the top level must be a mapping")
    })
  )
})

describe("unknown keys", () => {
  it.effect("at the top level", () =>
    Effect.gen(function* () {
      const e = yield* failure(`bogus: 1\n${openai()}`)
      expect(e.message).toBe(`${FILE}: bogus: unknown field`)
    })
  )

  it.effect("in a provider, with a suggestion", () =>
    Effect.gen(function* () {
      const e = yield* failure(openai("wieght: 2"))
      expect(e.field).toBe("providers[0].wieght")
      expect(e.reason).toMatch(/^unknown field/)
      expect(e.reason).toContain("weight")
    })
  )

  it.effect("in nested objects", () =>
    Effect.gen(function* () {
      expect((yield* failure(`timeouts: {conect: 1}\n${openai()}`)).field).toBe("timeouts.conect")
      expect((yield* failure(`health_check: {every: 1}\n${openai()}`)).field).toBe("health_check.every")
      expect((yield* failure(openai("health_check: {path: /, x: 1}"))).field).toBe("providers[0].health_check.x")
      expect((yield* failure(openai("api_keys: [{key: k, wight: 1}]"))).field).toBe("providers[0].api_keys[0].wight")
    })
  )
})

describe("weights", () => {
  for (const [name, value] of [
    ["zero", "0"],
    ["negative", "-1"],
    ["NaN", ".nan"],
    ["infinite", ".inf"],
    ["a string", "heavy"]
  ]) {
    it.effect(`${name} weight is an error`, () =>
      Effect.gen(function* () {
        const e = yield* failure(
          withProvider("type: openai", "host: h", "endpoint: e", "api_key: k0", `weight: ${value}`)
        )
        expect(e.field).toBe("providers[0].weight")
        expect(e.reason).toBe("must be a finite number greater than 0")
      })
    )
  }

  it.effect("names the index of the provider", () =>
    Effect.gen(function* () {
      const text = `${openai()}\n  - {type: openai, host: b, endpoint: e}\n  - {type: openai, host: c, endpoint: e, weight: 0}`
      expect((yield* failure(text)).field).toBe("providers[2].weight")
    })
  )

  it.effect("an api_key list shares the provider's weight", () =>
    Effect.gen(function* () {
      const p = yield* provider(openai("weight: 3", "api_key: [k1, k2, k3]"))
      expect(p.weight).toBe(3)
      expect(p.keys.map((k) => [staticKey(k.source), k.weight])).toEqual([
        ["k1", 1],
        ["k2", 1],
        ["k3", 1]
      ])
    })
  )

  it.effect("api_keys entries have their own weight, default the provider's", () =>
    Effect.gen(function* () {
      const p = yield* provider(openai("weight: 2", "api_keys: [{key: k1, weight: 5}, {key: k2}]"))
      expect(p.keys.map((k) => [staticKey(k.source), k.weight])).toEqual([
        ["k1", 5],
        ["k2", 2]
      ])
      const e = yield* failure(openai("api_keys: [{key: k1, weight: 0}]"))
      expect(e.field).toBe("providers[0].api_keys[0].weight")
      expect((yield* failure(openai("api_keys: [{weight: 1}]"))).field).toBe("providers[0].api_keys[0].key")
    })
  )
})

describe("keys", () => {
  it.effect("$(command) is a Command source with the wrapper stripped", () =>
    Effect.gen(function* () {
      const p = yield* provider(openai('api_key: "$(cat ~/.key | tr -d x)"', "api_key_cache_ttl: 30"))
      const source = p.keys[0].source
      expect(source._tag).toBe("Command")
      if (source._tag === "Command") expect(Redacted.value(source.command)).toBe("cat ~/.key | tr -d x")
      expect(p.apiKeyCacheTtlMs).toBe(30_000)
      expect((yield* failure(openai('api_key: "$( )"'))).reason).toContain("empty")
    })
  )

  it.effect("api_key and api_keys together are an error", () =>
    Effect.gen(function* () {
      const e = yield* failure(openai("api_key: a", "api_keys: [{key: b}]"))
      expect(e.field).toBe("providers[0].api_keys")
    })
  )

  it.effect("anthropic and gemini require a key", () =>
    Effect.gen(function* () {
      const e = yield* failure(withProvider("type: anthropic", "host: h", "endpoint: e"))
      expect(e.message).toBe(`${FILE}: providers[0].api_key: required for type anthropic`)
      const g = yield* failure(withProvider("type: gemini", "host: h", "endpoint: e"))
      expect(g.reason).toBe("required for type gemini")
    })
  )

  it.effect("forward takes no key and no auth_keys", () =>
    Effect.gen(function* () {
      const base = ["type: forward", "host: h", "endpoint: e"]
      expect((yield* provider(withProvider(...base))).keys).toEqual([])
      const e = yield* failure(withProvider(...base, "api_key: k"))
      expect(e.message).toBe(`${FILE}: providers[0].api_key: not used by type forward`)
      expect((yield* failure(withProvider(...base, "auth_keys: [c]"))).field).toBe("providers[0].auth_keys")
    })
  )

  it.effect("empty keys are errors", () =>
    Effect.gen(function* () {
      expect((yield* failure(openai('api_key: ""'))).message).toBe(`${FILE}: providers[0].api_key: must not be empty`)
      expect((yield* failure(openai("api_key: [a, '']"))).field).toBe("providers[0].api_key[1]")
      expect((yield* failure(`auth_keys: ['']\n${openai()}`)).field).toBe("auth_keys[0]")
      expect((yield* failure(openai("api_key: ${EMPTY}"), { EMPTY: "" })).reason).toBe("must not be empty")
      expect((yield* failure(openai("api_key: []"))).field).toBe("providers[0].api_key")
    })
  )

  it.effect("keys are Redacted", () =>
    Effect.gen(function* () {
      const c = yield* parse(`auth_keys: [client-secret]\n${openai("api_key: provider-secret")}`)
      expect(String(c.authKeys[0])).not.toContain("client-secret")
      expect(JSON.stringify(c)).not.toContain("provider-secret")
      expect(JSON.stringify(c)).not.toContain("client-secret")
    })
  )
})

describe("provider fields", () => {
  it.effect("required fields", () =>
    Effect.gen(function* () {
      expect((yield* failure(withProvider("host: h", "endpoint: e"))).field).toBe("providers[0].type")
      expect((yield* failure(withProvider("type: openai", "endpoint: e"))).field).toBe("providers[0].host")
      expect((yield* failure(withProvider("type: openai", "host: h"))).field).toBe("providers[0].endpoint")
      const t = yield* failure(withProvider("type: azure", "host: h", "endpoint: e"))
      expect(t.reason).toBe('must be one of openai, anthropic, gemini, forward (got "azure")')
      expect((yield* failure("http_port: 0")).field).toBe("providers")
      expect((yield* failure("http_port: 0\nproviders: []")).field).toBe("providers")
    })
  )

  it.effect("host parsing", () =>
    Effect.gen(function* () {
      const host = (h: string) =>
        Effect.map(provider(withProvider("type: openai", `host: "${h}"`, "endpoint: e")), (p) => p.host)
      expect(yield* host("API.OpenAI.com.")).toEqual({ name: "api.openai.com", port: undefined, pathPrefix: "" })
      expect(yield* host("api.openai.com:8443")).toEqual({ name: "api.openai.com", port: 8443, pathPrefix: "" })
      expect(yield* host("localhost/openai/")).toEqual({ name: "localhost", port: undefined, pathPrefix: "/openai" })
      expect(yield* host("localhost:8080/v1/openai")).toEqual({
        name: "localhost",
        port: 8080,
        pathPrefix: "/v1/openai"
      })
      expect(yield* host("localhost/")).toEqual({ name: "localhost", port: undefined, pathPrefix: "" })
      expect(yield* host("[::1]:8080")).toEqual({ name: "[::1]", port: 8080, pathPrefix: "" })
      expect(yield* host("[::1]/x")).toEqual({ name: "[::1]", port: undefined, pathPrefix: "/x" })
      for (const bad of ["https://api.openai.com", "api.openai.com:99999", "a:b", "[::1", "bad host", "::1:8080"]) {
        const e = yield* failure(withProvider("type: openai", `host: "${bad}"`, "endpoint: e"))
        expect(e.field).toBe("providers[0].host")
      }
    })
  )

  it.effect("endpoint with a port overrides port; upstreamHostHeader", () =>
    Effect.gen(function* () {
      const p = (...lines: ReadonlyArray<string>) => provider(withProvider("type: openai", "host: h", ...lines))
      const a = yield* p("endpoint: Upstream.Example:9000", "port: 1234")
      expect([a.endpointHost, a.endpointPort, a.upstreamHostHeader]).toEqual([
        "upstream.example",
        9000,
        "upstream.example:9000"
      ])
      const b = yield* p("endpoint: upstream.example", "port: 8443")
      expect([b.endpointPort, b.upstreamHostHeader]).toEqual([8443, "upstream.example:8443"])
      const c = yield* p("endpoint: upstream.example:443")
      expect(c.upstreamHostHeader).toBe("upstream.example")
      const d = yield* p("endpoint: upstream.example:443", "tls: false")
      expect(d.upstreamHostHeader).toBe("upstream.example:443")
      const e = yield* p('endpoint: "[::1]:9000"', "tls: false")
      expect([e.endpointHost, e.endpointPort, e.upstreamHostHeader]).toEqual(["::1", 9000, "[::1]:9000"])
      const f = yield* p('endpoint: "[::1]"')
      expect([f.endpointHost, f.endpointPort, f.upstreamHostHeader]).toEqual(["::1", 443, "[::1]"])
      const g = yield* p("endpoint: 127.0.0.1", "tls: false")
      expect(g.upstreamHostHeader).toBe("127.0.0.1")
      for (const bad of ["https://api.openai.com", "api.openai.com/v1", "e:0", "e:x", "::1", "[::1]x"]) {
        expect((yield* failure(withProvider("type: openai", "host: h", `endpoint: "${bad}"`))).field).toBe(
          "providers[0].endpoint"
        )
      }
      expect((yield* failure(withProvider("type: openai", "host: h", "endpoint: e", "port: 0"))).field).toBe(
        "providers[0].port"
      )
    })
  )

  it.effect("http2, priority, is_fallback, health_check", () =>
    Effect.gen(function* () {
      const p = yield* provider(
        openai(
          "http2: false",
          "priority: -2",
          "is_fallback: true",
          'health_check: {method: post, path: /v1/models, body: "{}", headers: ["Accept: application/json", "X-A:b:c"]}'
        )
      )
      expect(p.http2).toBe(false)
      expect(p.priority).toBe(-2)
      expect(p.isFallback).toBe(true)
      expect(p.healthCheck).toEqual({
        method: "POST",
        path: "/v1/models",
        body: "{}",
        headers: [
          ["Accept", "application/json"],
          ["X-A", "b:c"]
        ]
      })
      expect((yield* provider(openai("http2: auto"))).http2).toBe("auto")
      expect((yield* failure(openai("http2: maybe"))).field).toBe("providers[0].http2")
      expect((yield* failure(openai("priority: 1.5"))).field).toBe("providers[0].priority")
      expect((yield* failure(openai('health_check: {headers: ["A: b"]}'))).field).toBe("providers[0].health_check.path")
      expect((yield* failure(openai("health_check: {path: v1}"))).field).toBe("providers[0].health_check.path")
      const h = yield* failure(openai('health_check: {path: /, headers: ["A: b", "no colon"]}'))
      expect(h.field).toBe("providers[0].health_check.headers[1]")
    })
  )

  it.effect("ca_file is read relative to the config file", () =>
    Effect.gen(function* () {
      const file = path.join(dir, "config.yml")
      const c = yield* parseConfig(openai("ca_file: certs/ca.pem"), file, {})
      expect(c.providers[0].caFile).toBe(path.join(dir, "certs", "ca.pem"))
      expect(c.providers[0].ca).toBe(CERT)
      const e = yield* Effect.flip(parseConfig(openai("ca_file: certs/missing.pem"), file, {}))
      expect(e.field).toBe("providers[0].ca_file")
      expect(e.reason).toContain("cannot read")
    })
  )
})

describe("listeners", () => {
  it.effect("no listener is an error", () =>
    Effect.gen(function* () {
      const e = yield* failure("providers: [{type: openai, host: h, endpoint: e}]")
      expect(e.message).toBe(`${FILE}: http_port: no listener configured (set http_port and/or https_port)`)
    })
  )

  it.effect("ports and bind addresses are checked", () =>
    Effect.gen(function* () {
      expect((yield* failure(`http_port: 70000\n${openai().slice("http_port: 0\n".length)}`)).field).toBe("http_port")
      expect((yield* failure(`http_port: -1\n${openai().slice("http_port: 0\n".length)}`)).field).toBe("http_port")
      const b = yield* failure(`http_bind_address: 999.1.1.1\n${openai()}`)
      expect(b.field).toBe("http_bind_address")
      const c = yield* parse(`http_bind_address: localhost\n${openai()}`)
      expect(c.http?.bindAddress).toBe("localhost")
    })
  )

  it.effect("https reads the certificate and key", () =>
    Effect.gen(function* () {
      const text = `https_port: 8443\ncert_file: certs/cert.pem\nprivate_key_file: certs/key.pem\n${openai()}`
      const c = yield* parseConfig(text, path.join(dir, "config.yml"), {})
      expect(c.https?.port).toBe(8443)
      expect(c.https?.bindAddress).toBe("0.0.0.0")
      expect(c.https?.cert).toBe(CERT)
      expect(c.https && Redacted.value(c.https.key)).toBe(KEY)
      expect(JSON.stringify(c)).not.toContain("secretkeymaterial")
    })
  )

  it.effect("missing or unreadable certificate files", () =>
    Effect.gen(function* () {
      const file = path.join(dir, "config.yml")
      const run = (text: string) => Effect.flip(parseConfig(`https_port: 0\n${text}\n${openai()}`, file, {}))
      const missing = yield* run("cert_file: certs/nope.pem\nprivate_key_file: certs/key.pem")
      expect(missing.field).toBe("cert_file")
      expect(missing.reason).toBe(`cannot read ${path.join(dir, "certs", "nope.pem")} (ENOENT)`)
      const notPem = yield* run("cert_file: not-pem.txt\nprivate_key_file: certs/key.pem")
      expect(notPem.field).toBe("cert_file")
      expect(notPem.reason).toContain("not a PEM file")
      expect(notPem.message).not.toContain("hello")
      // A key file given as the certificate: named, contents never printed.
      const swapped = yield* run("cert_file: certs/key.pem\nprivate_key_file: certs/cert.pem")
      expect(swapped.field).toBe("cert_file")
      expect(swapped.message).not.toContain("secretkeymaterial")
      expect((yield* run("cert_file: certs/cert.pem")).field).toBe("private_key_file")
      expect((yield* run("private_key_file: certs/key.pem")).field).toBe("cert_file")
    })
  )
})

describe("numbers and durations", () => {
  it.effect("http_max_header_size is clamped", () =>
    Effect.gen(function* () {
      expect((yield* parse(`http_max_header_size: 10\n${openai()}`)).httpMaxHeaderSize).toBe(1024)
      expect((yield* parse(`http_max_header_size: 99999999\n${openai()}`)).httpMaxHeaderSize).toBe(1_048_576)
      expect((yield* parse(`http_max_header_size: 32768\n${openai()}`)).httpMaxHeaderSize).toBe(32_768)
      expect((yield* failure(`http_max_header_size: big\n${openai()}`)).field).toBe("http_max_header_size")
    })
  )

  it.effect("max_request_body_size must be > 0", () =>
    Effect.gen(function* () {
      expect((yield* failure(`max_request_body_size: 0\n${openai()}`)).field).toBe("max_request_body_size")
    })
  )

  it.effect("durations as numbers and strings", () =>
    Effect.gen(function* () {
      const c = yield* parse(
        `timeouts: {client_header: 0.5, connect: "500ms", tls_handshake: "30s", response_header: "5m", idle: "1h"}\n${openai()}`
      )
      expect(c.timeouts).toEqual({
        clientHeaderMs: 500,
        connectMs: 500,
        tlsHandshakeMs: 30_000,
        responseHeaderMs: 300_000,
        idleMs: 3_600_000,
        firstTokenMs: 0
      })
      const zero = yield* failure(`timeouts: {connect: 0}\n${openai()}`)
      expect(zero.message).toBe(`${FILE}: timeouts.connect: must be greater than 0`)
      expect((yield* failure(`timeouts: {connect: -1}\n${openai()}`)).reason).toBe("must not be negative")
      expect((yield* failure(`timeouts: {connect: soon}\n${openai()}`)).field).toBe("timeouts.connect")
      expect((yield* failure(`health_check: {interval: 0}\n${openai()}`)).field).toBe("health_check.interval")
      expect((yield* failure(`health_check: {unhealthy_threshold: 0}\n${openai()}`)).field).toBe(
        "health_check.unhealthy_threshold"
      )
    })
  )

  it.effect("health_check_interval (old form); health_check.interval wins", () =>
    Effect.gen(function* () {
      expect((yield* parse(`health_check_interval: 15\n${openai()}`)).healthCheck.intervalMs).toBe(15_000)
      const both = yield* parse(`health_check_interval: 15\nhealth_check: {interval: "2s"}\n${openai()}`)
      expect(both.healthCheck.intervalMs).toBe(2_000)
    })
  )

  it.effect("workers: auto and numbers", () =>
    Effect.gen(function* () {
      expect((yield* parse(`workers: auto\n${openai()}`)).workers).toBe(availableParallelism())
      expect((yield* parse(`workers: 3\n${openai()}`)).workers).toBe(3)
      expect((yield* failure(`workers: 0\n${openai()}`)).field).toBe("workers")
      expect((yield* failure(`workers: many\n${openai()}`)).field).toBe("workers")
    })
  )
})

describe("errors", () => {
  it.effect("are ConfigErrors with file: field: reason", () =>
    Effect.gen(function* () {
      const e = yield* failure(openai("weight: 0"))
      expect(e).toBeInstanceOf(ConfigError)
      expect(e._tag).toBe("ConfigError")
      expect(e.file).toBe(FILE)
      expect(e.message).toBe(`${FILE}: providers[0].weight: must be a finite number greater than 0`)
      expect(String(e)).toBe(`ConfigError: ${e.message}`)
      expect(Cause.pretty(Cause.fail(e))).toContain(e.message)
    })
  )

  it.effect("the first error in document order wins, top level before providers", () =>
    Effect.gen(function* () {
      const text = [
        "providers: [{type: openai, host: h, endpoint: e, weight: 0}]",
        "workers: 0",
        "http_port: 99999"
      ].join("\n")
      expect((yield* failure(text)).field).toBe("workers")
      const twoProviders = "http_port: 0\nproviders: [{type: openai, host: h, endpoint: e, weight: 0}, {type: x}]"
      expect((yield* failure(twoProviders)).field).toBe("providers[0].weight")
    })
  )

  it.effect("never contain a secret", () =>
    Effect.gen(function* () {
      const secret = "sk-live-TOPSECRET"
      const cases = [
        openai(`api_key: ${secret}`, "weight: 0"),
        openai(`api_key: ${secret}`, `api_keys: [{key: ${secret}}]`),
        openai(`api_key: [${secret}, 12345]`),
        openai(`api_key: {value: ${secret}}`),
        withProvider("type: forward", "host: h", "endpoint: e", `api_key: ${secret}`),
        withProvider("type: anthropic", "host: h", "endpoint: e", `auth_keys: [${secret}]`, "api_key: [1]"),
        `auth_keys: [${secret}, {x: 1}]\n${openai()}`,
        `auth_keys: [${secret}\n${openai()}`,
        openai(`api_key: "${secret}\\nX"`),
        openai(`api_key: "$(echo ${secret}"`, "weight: -1"),
        openai('health_check: {path: /, headers: ["Authorization Bearer sk-live-TOPSECRET"]}')
      ]
      for (const text of cases) {
        const e = yield* failure(text)
        expect(e.message).not.toContain("TOPSECRET")
        expect(JSON.stringify(e)).not.toContain("TOPSECRET")
        expect(String(e)).not.toContain("TOPSECRET")
      }
    })
  )

  it.effect("loadConfig reports an unreadable file", () =>
    Effect.gen(function* () {
      const missing = path.join(dir, "missing.yml")
      const e = yield* Effect.flip(loadConfig(missing, {}))
      expect(e.message).toBe(`${missing}: cannot read the config file (ENOENT)`)
    })
  )
})

describe("examples/config.yml", () => {
  it.effect("loads, and summarize() lists every provider without keys", () =>
    Effect.gen(function* () {
      const c = yield* loadConfig(EXAMPLE, {})
      expect(c.source).toBe(EXAMPLE)
      expect(c.http).toEqual({ port: 8080, bindAddress: "127.0.0.1" })
      expect(c.https).toBeUndefined()
      expect(c.authKeys.map(Redacted.value)).toEqual(["sk-proxy-demo"])
      expect(c.providers.map((p) => [p.type, p.hostRaw, p.endpointHost, p.endpointPort, p.tls])).toEqual([
        ["openai", "localhost/openai", "127.0.0.1", 9000, false],
        ["openai", "api.openai.local", "127.0.0.1", 9000, false],
        ["anthropic", "localhost/anthropic", "127.0.0.1", 9000, false],
        ["gemini", "localhost/gemini", "127.0.0.1", 9000, false]
      ])
      expect(c.providers.map((p) => p.keys.map((k) => staticKey(k.source)))).toEqual([
        ["sk-mock-openai"],
        ["sk-mock-openai"],
        ["sk-ant-mock"],
        ["gemini-mock-key"]
      ])
      const s = summarize(c)
      for (const p of c.providers) {
        expect(s).toContain(`[${p.index}] ${p.type}`)
        expect(s).toContain(`${p.hostRaw} -> 127.0.0.1:9000`)
      }
      expect(s).toContain("127.0.0.1:8080")
      for (const secret of ["sk-mock-openai", "sk-ant-mock", "gemini-mock-key", "sk-proxy-demo"]) {
        expect(s).not.toContain(secret)
      }
    })
  )

  it.effect("summarize() shows https, IPv6 and command keys without their text", () =>
    Effect.gen(function* () {
      const text = [
        "https_port: 8443",
        "https_bind_address: '::'",
        "cert_file: certs/cert.pem",
        "private_key_file: certs/key.pem",
        "providers:",
        "  - {type: anthropic, host: a, endpoint: '[::1]:9000', api_key: '$(secret-command)', is_fallback: true}"
      ].join("\n")
      const s = summarize(yield* parseConfig(text, path.join(dir, "config.yml"), {}))
      expect(s).toContain("[::]:8443")
      expect(s).toContain("[0] anthropic")
      expect(s).toContain("a -> [::1]:9000")
      expect(s).toContain("fallback=yes")
      expect(s).toContain("keys=1 (1 from a command)")
      expect(s).not.toContain("secret-command")
      expect(s).not.toContain("secretkeymaterial")
    })
  )
})
