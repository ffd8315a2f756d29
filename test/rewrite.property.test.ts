// Property tests (fast-check) of the request header rewrite (SPEC §4; issue 10): for any mix of client credentials
// (any letter case, repeated, padded with spaces, in every place §4 lists: Authorization, Proxy-Authorization,
// x-api-key, x-goog-api-key, the `key` query parameter) and any other headers, the upstream request carries the
// provider credential exactly once and no client credential, and no header value with CR, LF or NUL reaches the
// upstream. The pure functions get thousands of cases; a few hundred also go through the proxy over real sockets.
import * as net from "node:net"
import * as Redacted from "effect/Redacted"
import fc from "fast-check"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { ProviderType } from "../src/config/types.js"
import {
  ANTHROPIC_BETA_DROP,
  clientKeyFor,
  providerCredentialHeaders,
  stripKeyParam
} from "../src/domain/credentials.js"
import { buildUpstreamHeaders, scanRequestHeaders } from "../src/proxy/headers.js"
import { type RunningProxy, startProxy, tempDir } from "./support/proxy.js"

const CREDENTIAL_NAMES = ["authorization", "proxy-authorization", "x-api-key", "x-goog-api-key"]
const HOP_BY_HOP = [
  "connection",
  "keep-alive",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "http2-settings",
  "host",
  "expect"
]

const isCredential = (name: string) => CREDENTIAL_NAMES.includes(name.toLowerCase())
/** Client key material is marked `ck…` (and nothing else may look like it) so it is recognised anywhere. */
const hasClientToken = (value: string) => /ck[A-Za-z0-9._~-]/.test(value)

/** A name in any letter case. */
const anyCase = (name: string) =>
  fc
    .array(fc.boolean(), { minLength: name.length, maxLength: name.length })
    .map((upper) => [...name].map((c, i) => (upper[i] ? c.toUpperCase() : c)).join(""))

/** Optional spaces/tabs around a value (Node trims them from real requests; the pure functions must not care). */
const padded = (v: fc.Arbitrary<string>) =>
  fc.tuple(fc.constantFrom("", " ", "  ", "\t"), v, fc.constantFrom("", " ", "\t")).map(([a, b, c]) => a + b + c)

/** Client key material: marked so that it can be recognised anywhere in the output. */
const clientToken = fc.stringMatching(/^[A-Za-z0-9._~-]{1,24}$/).map((s) => `ck${s}`)

/** A client credential header: any of the four names, any case, Bearer/Basic/raw form. */
const credentialHeader = fc
  .tuple(
    fc.constantFrom(...CREDENTIAL_NAMES).chain(anyCase),
    fc.constantFrom("Bearer ", "bearer ", "BEARER ", "Basic ", ""),
    clientToken
  )
  .chain(([name, scheme, token]) => padded(fc.constant(scheme + token)).map((value) => [name, value] as const))

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,20}$/
/** Any other header (not a credential, hop-by-hop or pseudo header), with a visible-ASCII value. */
const otherHeader = fc
  .tuple(
    fc.stringMatching(TOKEN).filter((n) => ![...CREDENTIAL_NAMES, ...HOP_BY_HOP].includes(n.toLowerCase())),
    fc.stringMatching(/^[\x20-\x7e]{0,40}$/).filter((v) => !hasClientToken(v))
  )
  .map(([n, v]) => [n, v.trim()] as const)

const headerMix = fc
  .array(fc.oneof({ weight: 1, arbitrary: credentialHeader }, { weight: 2, arbitrary: otherHeader }), {
    maxLength: 24
  })
  .map((pairs) => pairs.flat())

/** A provider key as config or a `$(command)` would give it: header-safe. */
const providerKey = fc
  .stringMatching(/^[\x21-\x7e]{1,60}$/)
  .map((s) => `pk${s}`)
  .filter((k) => !hasClientToken(k))

describe("request header rewrite (properties)", () => {
  it("openai/anthropic/gemini: the provider credential exactly once, no client credential, other headers kept", () => {
    fc.assert(
      fc.property(
        headerMix,
        fc.constantFrom<ProviderType>("openai", "anthropic", "gemini"),
        providerKey,
        fc.boolean(),
        (raw, type, key, fromCommand) => {
          const info = scanRequestHeaders(raw)
          const command = fromCommand && type === "anthropic"
          const extra = providerCredentialHeaders(type, Redacted.make(key), command, info)
          const out = buildUpstreamHeaders(
            raw,
            info,
            true,
            "up.example",
            extra,
            command ? ANTHROPIC_BETA_DROP : undefined
          )
          const names = out.filter((_, i) => i % 2 === 0)
          const values = out.filter((_, i) => i % 2 === 1)
          // exactly one credential header, carrying the provider key
          const creds = names.flatMap((n, i) => (isCredential(n) ? [values[i]!] : []))
          expect(creds).toHaveLength(1)
          expect([key, `Bearer ${key}`]).toContain(creds[0])
          // no client credential anywhere upstream
          for (const v of values) expect(hasClientToken(v), v).toBe(false)
          // Host exactly once, set to the upstream
          expect(names.filter((n) => n.toLowerCase() === "host")).toHaveLength(1)
          // every other header kept, in order, as sent
          const kept: Array<string> = []
          for (let i = 0; i < raw.length; i += 2) {
            const n = raw[i]!.toLowerCase()
            if (isCredential(n) || (command && n === "anthropic-beta")) continue
            kept.push(raw[i]!, raw[i + 1]!)
          }
          const rest: Array<string> = []
          for (let i = 0; i < out.length; i += 2) {
            const n = out[i]!.toLowerCase()
            if (isCredential(n) || n === "host" || (command && n === "anthropic-beta")) continue
            rest.push(out[i]!, out[i + 1]!)
          }
          expect(rest).toEqual(kept)
        }
      ),
      { numRuns: 3_000 }
    )
  })

  it("the client key is found wherever the client put it, and what the route reads is never forwarded", () => {
    fc.assert(
      fc.property(headerMix, fc.constantFrom<ProviderType>("openai", "anthropic", "gemini"), (raw, type) => {
        const info = scanRequestHeaders(raw)
        const k = clientKeyFor(type, info, undefined)
        if (k === undefined) return
        const out = buildUpstreamHeaders(raw, info, true, "up.example", [], undefined)
        for (const v of out) expect(v.includes(k)).toBe(false)
      }),
      { numRuns: 2_000 }
    )
  })

  it("forward: the client's own headers pass (Authorization included), Proxy-Authorization never", () => {
    fc.assert(
      fc.property(headerMix, (raw) => {
        const info = scanRequestHeaders(raw)
        const out = buildUpstreamHeaders(raw, info, false, "up.example", [], undefined)
        const names = out.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase())
        expect(names).not.toContain("proxy-authorization")
        const sentAuth = raw.filter((n, i) => i % 2 === 0 && n.toLowerCase() === "authorization").length
        expect(names.filter((n) => n === "authorization")).toHaveLength(sentAuth)
      }),
      { numRuns: 1_000 }
    )
  })

  it("the rewrite never adds a CR, LF or NUL: only what the client sent (which Node's parser refuses) could carry one", () => {
    const anyValue = fc.string({ unit: fc.constantFrom("a", " ", "\r", "\n", "\0", "\t", "x"), maxLength: 12 })
    fc.assert(
      fc.property(
        fc.array(
          fc.tuple(fc.oneof(fc.constantFrom(...CREDENTIAL_NAMES).chain(anyCase), fc.stringMatching(TOKEN)), anyValue),
          {
            maxLength: 12
          }
        ),
        providerKey,
        (pairs, key) => {
          const raw: Array<string> = pairs.flat()
          const info = scanRequestHeaders(raw)
          const extra = providerCredentialHeaders("openai", Redacted.make(key), false, info)
          const out = buildUpstreamHeaders(raw, info, true, "up.example", extra, undefined)
          const sent = new Set(raw.filter((_, i) => i % 2 === 1))
          for (let i = 1; i < out.length; i += 2) {
            if (/[\r\n\0]/.test(out[i]!)) expect(sent.has(out[i]!)).toBe(true)
          }
        }
      ),
      { numRuns: 2_000 }
    )
  })

  it("the `key` query parameter: every spelling is removed, every other parameter kept byte for byte", () => {
    const keyName = fc.oneof(anyCase("key"), fc.constantFrom("%6Bey", "k%65y", "%4B%45%59", "ke%79", "%6b%65%79"))
    const param = fc.oneof(
      keyName.chain((n) =>
        fc.oneof(
          fc.constant(n),
          clientToken.map((t) => `${n}=${t}`)
        )
      ),
      fc
        .tuple(fc.stringMatching(/^[a-jl-z][a-z0-9_]{0,8}$/), fc.stringMatching(/^[A-Za-z0-9%._-]{0,12}$/))
        .map(([n, v]) => `${n}=${v}`)
    )
    fc.assert(
      fc.property(fc.array(param, { minLength: 1, maxLength: 10 }), (params) => {
        const q = stripKeyParam(params.join("&"))
        const others = params.filter((p) => {
          const name = decodeURIComponent(p.split("=")[0]!).toLowerCase()
          return name !== "key"
        })
        expect(q).toBe(others.length === 0 ? undefined : others.join("&"))
      }),
      { numRuns: 2_000 }
    )
  })
})

describe("request header rewrite over real sockets", () => {
  let proxy: RunningProxy
  let upstream: net.Server
  const heads: Array<Buffer> = []
  beforeAll(async () => {
    // A raw upstream: records each request head byte for byte and answers 200.
    upstream = net.createServer((socket) => {
      socket.on("error", () => undefined)
      let buf = Buffer.alloc(0)
      socket.on("data", (c: Buffer) => {
        buf = Buffer.concat([buf, c])
        for (;;) {
          const end = buf.indexOf("\r\n\r\n")
          if (end === -1) return
          heads.push(buf.subarray(0, end))
          buf = buf.subarray(end + 4)
          socket.write("HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
        }
      })
    })
    await new Promise<void>((r) => upstream.listen(0, "127.0.0.1", r))
    const port = (upstream.address() as net.AddressInfo).port
    proxy = await startProxy(
      `
http_port: 0
http_bind_address: 127.0.0.1
providers:
  - { type: openai, host: "o.test", endpoint: "127.0.0.1:${port}", tls: false, api_key: "pk-provider" }
  - { type: gemini, host: "g.test", endpoint: "127.0.0.1:${port}", tls: false, api_key: "pk-provider" }
`,
      await tempDir("openproxy-prop-")
    )
  })
  afterAll(async () => {
    await proxy?.close()
    upstream?.close()
  })

  /** One raw HTTP/1.1 request; resolves with the status code (0 when the connection closed without one). */
  const send = (head: string) =>
    new Promise<number>((resolve) => {
      const s = net.connect(proxy.httpPort!, "127.0.0.1")
      let got = ""
      s.on("data", (c: Buffer) => {
        got += c.toString("latin1")
        const m = /^HTTP\/1\.1 (\d{3})/.exec(got)
        if (m !== null) {
          resolve(Number(m[1]))
          s.destroy()
        }
      })
      s.on("error", () => resolve(0))
      s.on("close", () => resolve(0))
      s.write(head, "latin1")
    })

  it("a few hundred generated requests: upstream heads carry one provider credential, no client one, no CR/LF/NUL", async () => {
    // Values may hold a NUL, a bare CR or LF, or an obs-fold: Node's parser must refuse those (400) before routing.
    let forwarded = 0
    let refused = 0
    // mostly clean values, so that both outcomes occur often whatever the seed (about 60 % of requests are clean)
    const hostile = fc.oneof(
      { weight: 12, arbitrary: fc.constant("") },
      { weight: 1, arbitrary: fc.constantFrom("\0", "\r", "\n ", "\n") }
    )
    const header = fc
      .tuple(fc.oneof(credentialHeader, otherHeader), hostile)
      .map(([[n, v], bad]) => `${n}: ${bad === "" ? v : v + bad + "x"}`)
    await fc.assert(
      fc.asyncProperty(
        fc.array(header, { maxLength: 12 }),
        fc.constantFrom("o.test", "g.test"),
        fc.oneof(
          fc.constant(""),
          clientToken.map((t) => `?KeY=${t}&a=1`)
        ),
        async (lines, host, query) => {
          const before = heads.length
          const status = await send(
            `GET /v1/x${query} HTTP/1.1\r\nHost: ${host}\r\n${lines.map((l) => `${l}\r\n`).join("")}\r\n`
          )
          if (status !== 200) {
            refused++
            expect([400, 431]).toContain(status)
            expect(heads.length).toBe(before)
            return
          }
          expect(heads.length).toBe(before + 1)
          forwarded++
          const head = heads[heads.length - 1]!
          expect(head.includes(0)).toBe(false)
          const [requestLine, ...fields] = head.toString("latin1").split("\r\n")
          expect(hasClientToken(requestLine!)).toBe(false)
          const creds: Array<string> = []
          for (const f of fields) {
            expect(f).toMatch(/^[^\r\n:]+: ?[^\r\n]*$/)
            const colon = f.indexOf(":")
            const name = f.slice(0, colon)
            const value = f.slice(colon + 1).trim()
            expect(hasClientToken(value), f).toBe(false)
            if (isCredential(name)) creds.push(value)
          }
          expect(creds).toEqual([host === "o.test" ? "Bearer pk-provider" : "pk-provider"])
        }
      ),
      { numRuns: 300 }
    )
    // both kinds were generated: forwarded requests, and requests with a hostile value that never left the proxy
    expect(forwarded).toBeGreaterThan(50)
    expect(refused).toBeGreaterThan(10)
  })
})
