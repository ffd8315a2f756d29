// One `providers[]` entry (SPEC §2, per-provider table): its fields as Schema (2.x names, defaults, what each
// is for), then the rules between fields and the values derived from them (ports, keys, the upstream Host)
// that make a `ProviderConfig`.
import * as Either from "effect/Either"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { parseEndpoint, parseHost, upstreamHostHeader } from "./address.js"
import { ClientKeyList } from "./clientKeys.js"
import { optional, required, withDefault } from "./fields.js"
import type { KeySource, ProviderConfig, ProviderKey } from "./types.js"
import {
  andThen,
  Bool,
  type Checked,
  type ConfigInput,
  checkEnvString,
  checkFilePath,
  checkSecret,
  duration,
  int,
  kind,
  no,
  nonEmptyList,
  ok,
  oneOf,
  oneOrMany,
  PositiveNumber,
  port,
  readPem,
  Str,
  substitute,
  value
} from "./values.js"

export const PROVIDER_TYPES = ["openai", "anthropic", "gemini", "forward"] as const

const COMMAND = /^\$\(([\s\S]*)\)$/

/**
 * One `api_key` value. `$(command)` becomes a Command source whose inner text goes to `sh -c` as
 * written (the shell expands its own variables); anything else is a static key with `${VAR}` expanded.
 */
const Key = value("key", (u): Checked<KeySource, ConfigInput> => {
  if (typeof u !== "string") return no(`must be a string (got ${kind(u)})`)
  const command = COMMAND.exec(u.trim())
  if (command === null) {
    return andThen(andThen(substitute(u), checkSecret), (secret) => ok({ _tag: "Static", value: secret }))
  }
  const inner = command[1].trim()
  return inner === "" ? no("the command in $(...) is empty") : ok({ _tag: "Command", command: Redacted.make(inner) })
})

/** `api_keys` entries: each key its own upstream identity. */
const WeightedKey = Schema.Struct({
  key: required("key", Key, "required", "A key or $(command)."),
  weight: optional("weight", PositiveNumber, "Replaces the provider's weight for this key; default the provider's.")
})

// An HTTP token (RFC 9110): what a method or a header name may consist of.
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/
// biome-ignore lint/suspicious/noControlCharactersInRegex: a header value must not carry control characters
const CONTROL = /[\u0000-\u0008\u000a-\u001f\u007f]/

const stringThen = <A>(u: unknown, f: (s: string) => Checked<A>): Checked<A> =>
  typeof u === "string" ? f(u) : no(`must be a string (got ${kind(u)})`)

const HeaderLine = value("header line", (u) =>
  stringThen(u, (line): Checked<readonly [string, string]> => {
    const colon = line.indexOf(":")
    const name = colon < 0 ? "" : line.slice(0, colon).trim()
    const text = line.slice(colon + 1).trim()
    if (!TOKEN.test(name)) return no('must be a header line "Name: value"')
    if (CONTROL.test(text)) return no("header value must not contain control characters")
    return ok([name, text] as const)
  })
)

/** A provider's active probe (SPEC §6). */
const ProviderHealthCheck = Schema.Struct({
  method: withDefault(
    "method",
    value("method", (u) =>
      stringThen(u, (m) => (TOKEN.test(m) ? ok(m.toUpperCase()) : no("must be an HTTP method like GET or POST")))
    ),
    "GET",
    "Probe request method."
  ),
  path: required(
    "path",
    value("path", (u) =>
      stringThen(u, (p) => (p.startsWith("/") && !/\s/.test(p) ? ok(p) : no('must start with "/" (no spaces)')))
    ),
    'required (a request path starting with "/")',
    "Probe request path; a 2xx answer is healthy."
  ),
  body: optional("body", Str, "Probe request body; none by default."),
  headers: withDefault("headers", Schema.Array(HeaderLine), [], 'Probe request headers, "Name: value".')
})

const Http2 = value(
  "http2",
  (u): Checked<"auto" | boolean> => (u === "auto" || typeof u === "boolean" ? ok(u) : no("must be auto, true or false"))
)

/** The provider fields as written; `toProvider` turns them into a `ProviderConfig`. */
export const Provider = Schema.Struct({
  type: required("type", oneOf(PROVIDER_TYPES), `required (one of ${PROVIDER_TYPES.join(", ")})`, "API family."),
  host: required(
    "host",
    value("host", (u) =>
      stringThen(u, (raw) => Either.map(parseHost(raw), (matcher) => ({ raw: raw.trim(), matcher })))
    ),
    "required (name[:port][/path-prefix])",
    "Routing key name[:port][/path-prefix] (§3)."
  ),
  endpoint: required(
    "endpoint",
    value("endpoint", (u) => andThen(checkEnvString(u), parseEndpoint)),
    "required (upstream name[:port])",
    "Upstream name or IP, optionally :port: connect, SNI and the upstream Host."
  ),
  port: optional("port", port(false), "Upstream port when endpoint has none; default 443 with tls, else 80."),
  tls: withDefault("tls", Bool, true, "TLS to the upstream, verified against Node's roots plus ca_file."),
  http2: withDefault("http2", Http2, "auto", "auto: h2 when ALPN offers it; true: h2 (h2c without TLS); false: 1.1."),
  caFile: optional(
    "ca_file",
    value("ca file", (u) =>
      andThen(checkFilePath(u), (file) => andThen(readPem(file, "CERTIFICATE"), (ca) => ok({ file, ca })))
    ),
    "Extra PEM roots for this upstream, read at load time; none by default."
  ),
  weight: withDefault("weight", PositiveNumber, 1, "Share within the selected tier."),
  priority: withDefault("priority", int(), 0, "Higher tier wins."),
  isFallback: withDefault("is_fallback", Bool, false, "Used only when no healthy non-fallback provider matches."),
  apiKey: optional(
    "api_key",
    oneOrMany(Key, { isOne: (u) => !Array.isArray(u), allowEmpty: false }),
    "A key, a list of keys sharing the weight, or $(command)."
  ),
  apiKeys: optional("api_keys", nonEmptyList(WeightedKey), "[{key, weight}]: one upstream identity per key."),
  apiKeyCacheTtlMs: withDefault("api_key_cache_ttl", duration(false), 0, "Reuse of a $(command) key; 0: per request."),
  // No default value: type forward refuses the field even when empty; absent means none (global keys apply).
  authKeys: optional(
    "auth_keys",
    ClientKeyList,
    "Extra client keys for this provider only (a string or {name, key}); none by default."
  ),
  healthCheck: optional("health_check", ProviderHealthCheck, "Active probe; none: a TCP/TLS connect is the probe.")
})

/** A rule between fields was broken: `field` is relative to the provider (`api_keys`). */
export interface Refusal {
  readonly field: string
  readonly reason: string
}

/** The rules between a provider's fields, then the values derived from them. */
export const toProvider = (
  p: Schema.Schema.Type<typeof Provider>,
  index: number
): Either.Either<ProviderConfig, Refusal> => {
  const refuse = (field: string, reason: string) => Either.left({ field, reason })
  if (p.apiKey !== undefined && p.apiKeys !== undefined)
    return refuse("api_keys", "cannot be used together with api_key")
  if (p.type === "forward") {
    // forward is transparent: the client's own credential goes upstream and no client key is checked.
    const given = { api_key: p.apiKey, api_keys: p.apiKeys, auth_keys: p.authKeys }
    for (const [key, v] of Object.entries(given)) if (v !== undefined) return refuse(key, "not used by type forward")
  } else if (p.type !== "openai" && p.apiKey === undefined && p.apiKeys === undefined) {
    return refuse("api_key", `required for type ${p.type}`)
  }
  // A port in `endpoint` wins over `port`, which defaults to the scheme's.
  const endpointPort = p.endpoint.port ?? p.port ?? (p.tls ? 443 : 80)
  const single = p.apiKey
  const keys: ReadonlyArray<ProviderKey> =
    single !== undefined
      ? single.map((source) => ({ source, weight: p.weight / single.length }))
      : (p.apiKeys ?? []).map((k) => ({ source: k.key, weight: k.weight ?? p.weight }))
  return Either.right({
    index,
    type: p.type,
    hostRaw: p.host.raw,
    host: p.host.matcher,
    endpointHost: p.endpoint.name,
    endpointPort,
    upstreamHostHeader: upstreamHostHeader(p.endpoint.name, endpointPort, p.tls),
    tls: p.tls,
    http2: p.http2,
    caFile: p.caFile?.file,
    ca: p.caFile?.ca,
    weight: p.weight,
    priority: p.priority,
    isFallback: p.isFallback,
    keys,
    apiKeyCacheTtlMs: p.apiKeyCacheTtlMs,
    authKeys: (p.authKeys ?? []).map((k) => k.key),
    healthCheck: p.healthCheck
  })
}
