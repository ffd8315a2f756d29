// Validation of one `providers[]` entry into a `ProviderConfig` (SPEC §2, per-provider table).
// Every field documents its default where the snapshot is assembled, at the end of `parseProvider`.
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import { parseEndpoint, parseHost, upstreamHostHeader } from "./address.js"
import {
  boolean,
  type Context,
  checkSecret,
  duration,
  type Env,
  envString,
  fields,
  filePath,
  type Invalid,
  integer,
  invalid,
  join,
  list,
  mapping,
  oneOf,
  port,
  positiveNumber,
  readPem,
  secretList,
  string,
  substitute
} from "./fields.js"
import type { KeySource, ProviderConfig, ProviderHealthCheck, ProviderKey, ProviderType } from "./types.js"

const TYPES: ReadonlyArray<ProviderType> = ["openai", "anthropic", "gemini", "forward"]

const COMMAND = /^\$\(([\s\S]*)\)$/

/**
 * One `api_key` value. `$(command)` becomes a Command source whose inner text goes to `sh -c` as
 * written (the shell expands its own variables); anything else is a static key with `${VAR}` expanded.
 */
const keySource = (field: string, u: unknown, env: Env): Effect.Effect<KeySource, Invalid> =>
  Effect.gen(function* () {
    const s = yield* string(field, u)
    const command = COMMAND.exec(s.trim())
    if (command !== null) {
      const inner = command[1].trim()
      if (inner === "") return yield* invalid(field, "the command in $(...) is empty")
      return { _tag: "Command", command: Redacted.make(inner) } as const
    }
    const value = yield* checkSecret(field, yield* substitute(field, s, env))
    return { _tag: "Static", value } as const
  })

/** `api_key`: one key, or a list of keys sharing the provider's weight equally. */
const apiKey = (field: string, u: unknown, env: Env): Effect.Effect<ReadonlyArray<KeySource>, Invalid> =>
  Array.isArray(u)
    ? u.length === 0
      ? invalid(field, "must not be an empty list")
      : Effect.forEach(u, (item, i) => keySource(`${field}[${i}]`, item, env))
    : Effect.map(keySource(field, u, env), (k) => [k])

interface WeightedKey {
  readonly source: KeySource
  readonly weight: number | undefined
}

/** `api_keys`: `[{key, weight}]`, each key its own upstream identity. */
const apiKeys = (field: string, u: unknown, env: Env): Effect.Effect<ReadonlyArray<WeightedKey>, Invalid> =>
  Effect.gen(function* () {
    const items = yield* list(field, u)
    if (items.length === 0) return yield* invalid(field, "must not be an empty list")
    return yield* Effect.forEach(items, (item, i) =>
      Effect.gen(function* () {
        const at = `${field}[${i}]`
        const entry = yield* fields(yield* mapping(at, item), at, {
          key: (v, f) => keySource(f, v, env),
          weight: (v, f) => positiveNumber(f, v)
        })
        if (entry.key === undefined) return yield* invalid(join(at, "key"), "required")
        return { source: entry.key, weight: entry.weight }
      })
    )
  })

// An HTTP token (RFC 9110): what a method or a header name may consist of.
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/
// biome-ignore lint/suspicious/noControlCharactersInRegex: a header value must not carry control characters
const CONTROL = /[\u0000-\u0008\u000a-\u001f\u007f]/

const headerLine = (field: string, u: unknown): Effect.Effect<readonly [string, string], Invalid> =>
  Effect.flatMap(string(field, u), (line) => {
    const colon = line.indexOf(":")
    const name = colon < 0 ? "" : line.slice(0, colon).trim()
    const value = line.slice(colon + 1).trim()
    if (!TOKEN.test(name)) return invalid(field, 'must be a header line "Name: value"')
    if (CONTROL.test(value)) return invalid(field, "header value must not contain control characters")
    return Effect.succeed([name, value] as const)
  })

/** A provider's active `health_check`: `{method (GET), path (required), body, headers: ["Name: value"]}`. */
const healthCheck = (field: string, u: unknown): Effect.Effect<ProviderHealthCheck, Invalid> =>
  Effect.gen(function* () {
    const hc = yield* fields(yield* mapping(field, u), field, {
      method: (v, f) =>
        Effect.flatMap(string(f, v), (m) =>
          TOKEN.test(m) ? Effect.succeed(m.toUpperCase()) : invalid(f, "must be an HTTP method like GET or POST")
        ),
      path: (v, f) =>
        Effect.flatMap(string(f, v), (p) =>
          p.startsWith("/") && !/\s/.test(p) ? Effect.succeed(p) : invalid(f, 'must start with "/" (no spaces)')
        ),
      body: (v, f) => string(f, v),
      headers: (v, f) =>
        Effect.flatMap(list(f, v), (lines) => Effect.forEach(lines, (l, i) => headerLine(`${f}[${i}]`, l)))
    })
    if (hc.path === undefined) return yield* invalid(join(field, "path"), 'required (a request path starting with "/")')
    return { method: hc.method ?? "GET", path: hc.path, body: hc.body, headers: hc.headers ?? [] }
  })

const http2 = (field: string, u: unknown): Effect.Effect<"auto" | boolean, Invalid> =>
  u === "auto"
    ? Effect.succeed("auto")
    : typeof u === "boolean"
      ? Effect.succeed(u)
      : invalid(field, "must be auto, true or false")

export const parseProvider = (u: unknown, index: number, ctx: Context): Effect.Effect<ProviderConfig, Invalid> =>
  Effect.gen(function* () {
    const base = `providers[${index}]`
    const p = yield* fields(yield* mapping(base, u), base, {
      type: (v, f) => oneOf(f, v, TYPES),
      host: (v, f) =>
        Effect.flatMap(string(f, v), (raw) =>
          Effect.map(parseHost(f, raw), (matcher) => ({ raw: raw.trim(), matcher }))
        ),
      endpoint: (v, f) => Effect.flatMap(envString(f, v, ctx.env), (s) => parseEndpoint(f, s)),
      port: (v, f) => port(f, v, false),
      tls: (v, f) => boolean(f, v),
      http2: (v, f) => http2(f, v),
      ca_file: (v, f) =>
        Effect.flatMap(filePath(f, v, ctx), (file) =>
          Effect.map(readPem(f, file, "CERTIFICATE"), (ca) => ({ file, ca }))
        ),
      weight: (v, f) => positiveNumber(f, v),
      priority: (v, f) => integer(f, v),
      is_fallback: (v, f) => boolean(f, v),
      api_key: (v, f) => apiKey(f, v, ctx.env),
      api_keys: (v, f) => apiKeys(f, v, ctx.env),
      api_key_cache_ttl: (v, f) => duration(f, v, false),
      auth_keys: (v, f) => secretList(f, v, ctx.env),
      health_check: (v, f) => healthCheck(f, v)
    })

    if (p.type === undefined) return yield* invalid(`${base}.type`, `required (one of ${TYPES.join(", ")})`)
    if (p.host === undefined) return yield* invalid(`${base}.host`, "required (name[:port][/path-prefix])")
    if (p.endpoint === undefined) return yield* invalid(`${base}.endpoint`, "required (upstream name[:port])")
    if (p.api_key !== undefined && p.api_keys !== undefined) {
      return yield* invalid(`${base}.api_keys`, "cannot be used together with api_key")
    }
    if (p.type === "forward") {
      // forward is transparent: the client's own credential goes upstream and no client key is checked.
      for (const key of ["api_key", "api_keys", "auth_keys"] as const) {
        if (p[key] !== undefined) return yield* invalid(`${base}.${key}`, "not used by type forward")
      }
    } else if (p.type !== "openai" && p.api_key === undefined && p.api_keys === undefined) {
      return yield* invalid(`${base}.api_key`, `required for type ${p.type}`)
    }

    const tls = p.tls ?? true // default: TLS to the upstream
    const weight = p.weight ?? 1 // default 1.0
    // default port: 443 with TLS, else 80; a port in `endpoint` wins over `port`.
    const endpointPort = p.endpoint.port ?? p.port ?? (tls ? 443 : 80)
    const single = p.api_key
    const keys: ReadonlyArray<ProviderKey> =
      single !== undefined
        ? single.map((source) => ({ source, weight: weight / single.length }))
        : (p.api_keys ?? []).map((k) => ({ source: k.source, weight: k.weight ?? weight }))
    return {
      index,
      type: p.type,
      hostRaw: p.host.raw,
      host: p.host.matcher,
      endpointHost: p.endpoint.name,
      endpointPort,
      upstreamHostHeader: upstreamHostHeader(p.endpoint.name, endpointPort, tls),
      tls,
      http2: p.http2 ?? "auto", // default auto: h2 when ALPN offers it
      caFile: p.ca_file?.file,
      ca: p.ca_file?.ca,
      weight,
      priority: p.priority ?? 0, // default 0
      isFallback: p.is_fallback ?? false, // default false
      keys,
      apiKeyCacheTtlMs: p.api_key_cache_ttl ?? 0, // default 0: run a $(command) per request
      authKeys: p.auth_keys ?? [], // default none (the global auth_keys still apply)
      healthCheck: p.health_check // default none: a TCP/TLS connect is the probe
    }
  })
