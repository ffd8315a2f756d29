// The config loader (SPEC §2): reads an OpenProxy 2.x compatible YAML file, validates it and builds the
// immutable `ConfigSnapshot`. The first problem found (top-level fields in document order, then the
// listener checks, then providers in order) becomes a `ConfigError` naming the file, the YAML path and
// the reason; an error never carries a secret. Certificate, key and CA files are read here (async fs),
// relative to the config file's directory, so an unreadable file is a config error, not a runtime one.
import { readFile } from "node:fs/promises"
import * as path from "node:path"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Redacted from "effect/Redacted"
import type * as Schema from "effect/Schema"
import { LineCounter, parseDocument } from "yaml"
import { checkNames, distinctKeys, type KeyAt } from "./clientKeys.js"
import { firstProblem, formatPath } from "./issues.js"
import { keyLimitsOf } from "./limits.js"
import { Provider, toProvider } from "./provider.js"
import { DEFAULT_HEALTH_CHECK_INTERVAL_MS, Top } from "./schema.js"
import type { ConfigSnapshot, TlsListenerConfig } from "./types.js"
import { ConfigInput, type Env, readPem } from "./values.js"

export { summarize } from "./summary.js"

export class ConfigError extends Data.TaggedError("ConfigError")<{
  readonly file: string
  /** YAML path such as `providers[3].weight`; "" for whole-file problems (unreadable, broken YAML). */
  readonly field: string
  readonly reason: string
}> {
  override get message(): string {
    return this.field === "" ? `${this.file}: ${this.reason}` : `${this.file}: ${this.field}: ${this.reason}`
  }
}

/** A problem before the file name is attached: the YAML path and the reason. */
class Invalid extends Data.TaggedError("Invalid")<{ readonly field: string; readonly reason: string }> {}

const invalid = (field: string, reason: string): Effect.Effect<never, Invalid> =>
  Effect.fail(new Invalid({ field, reason }))

const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

/**
 * An empty value (`key:` with nothing) counts as absent, in every mapping: it becomes `undefined`, which the
 * field definitions take as absent (the key stays, so an unknown key is refused even when empty). List items
 * are kept (a null item is an error of its own).
 */
const emptyToAbsent = (u: unknown): unknown => {
  if (Array.isArray(u)) return u.map(emptyToAbsent)
  if (!isRecord(u)) return u
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(u)) out[k] = v === null ? undefined : emptyToAbsent(v)
  return out
}

/** Decodes `raw` with `schema`; a failure becomes the first problem in document order, under `base`. */
const decode = <A, I, R>(schema: Schema.Schema<A, I, R>, raw: unknown, base: string): Effect.Effect<A, Invalid, R> =>
  ParseResult.decodeUnknown(schema, { errors: "all", onExcessProperty: "error" })(raw).pipe(
    Effect.mapError((issue) => {
      const p = firstProblem(raw, issue)
      return new Invalid({ field: formatPath(base, p.path), reason: p.reason })
    })
  )

const WILDCARDS = new Set(["0.0.0.0", "::"])

const snapshot = (input: unknown, source: string): Effect.Effect<ConfigSnapshot, Invalid, ConfigInput> =>
  Effect.gen(function* () {
    if (input === null || input === undefined) return yield* invalid("", "the file is empty")
    if (!isRecord(input)) return yield* invalid("", "the top level must be a mapping")
    // `defaults` and `x-*` exist to hold YAML anchors for merge keys.
    const root = emptyToAbsent(
      Object.fromEntries(Object.entries(input).filter(([k]) => k !== "defaults" && !k.startsWith("x-")))
    )
    const {
      https_port,
      https_bind_address,
      cert_file,
      private_key_file,
      http_port,
      http_bind_address,
      health_check_interval,
      providers: entries,
      ...settings
    } = yield* decode(Top, root, "")

    if (http_port === undefined && https_port === undefined) {
      return yield* invalid("http_port", "no listener configured (set http_port and/or https_port)")
    }
    const http = http_port === undefined ? undefined : { port: http_port, bindAddress: http_bind_address }
    let https: TlsListenerConfig | undefined
    if (https_port !== undefined) {
      const bind = https_bind_address
      if (
        http !== undefined &&
        http.port !== 0 &&
        http.port === https_port &&
        (http.bindAddress === bind || WILDCARDS.has(http.bindAddress) || WILDCARDS.has(bind))
      ) {
        return yield* invalid("https_port", "is the same port as http_port")
      }
      if (cert_file === undefined) return yield* invalid("cert_file", "required when https_port is set")
      if (private_key_file === undefined) return yield* invalid("private_key_file", "required when https_port is set")
      const pem = (field: string, file: string, marker: string) =>
        Effect.mapError(readPem(file, marker), (reason) => new Invalid({ field, reason }))
      const cert = yield* pem("cert_file", cert_file, "CERTIFICATE")
      const key = yield* pem("private_key_file", private_key_file, "PRIVATE KEY")
      const listener = { port: https_port, bindAddress: bind, certFile: cert_file, privateKeyFile: private_key_file }
      https = { ...listener, cert, key: Redacted.make(key) }
    }

    if (entries === undefined) return yield* invalid("providers", "required (a list of at least one provider)")
    if (entries.length === 0) return yield* invalid("providers", "must list at least one provider")
    const keysAt: Array<KeyAt> = settings.authKeys.map((key, i) => ({ path: `auth_keys[${i}]`, key }))
    const providers = yield* Effect.forEach(entries, (entry, index) => {
      const base = `providers[${index}]`
      return decode(Provider, entry, base).pipe(
        Effect.tap((fields) => {
          for (const [i, key] of (fields.authKeys ?? []).entries())
            keysAt.push({ path: `${base}.auth_keys[${i}]`, key })
        }),
        Effect.flatMap((fields) =>
          Either.mapLeft(
            toProvider(fields, index),
            (r) => new Invalid({ field: `${base}.${r.field}`, reason: r.reason })
          )
        )
      )
    })
    const clash = checkNames(keysAt)
    if (clash !== undefined) return yield* invalid(clash.field, clash.reason)
    if (settings.limits.store === "redis" && settings.limits.redisUrl === undefined) {
      return yield* invalid("limits.redis_url", "required when limits.store is redis")
    }
    const keyLimits = keyLimitsOf(keysAt, settings.limits.defaults)
    if ("field" in keyLimits) return yield* invalid(keyLimits.field, keyLimits.reason)

    const hc = settings.healthCheck
    return {
      source,
      https,
      http,
      ...settings,
      authKeys: settings.authKeys.map((k) => k.key),
      clientKeys: distinctKeys(keysAt),
      keyLimits,
      // An explicit health_check.interval wins over the old top-level health_check_interval.
      healthCheck: { ...hc, intervalMs: hc.intervalMs ?? health_check_interval ?? DEFAULT_HEALTH_CHECK_INTERVAL_MS },
      providers
    }
  })

const firstLine = (s: string): string => s.split("\n")[0].trim()

/**
 * YAML text → plain data, merge keys applied. Errors give `line:col` and the parser's one-line message,
 * never the source excerpt the parser would otherwise add (the offending line may hold a key).
 */
const parseYaml = (text: string, file: string): Effect.Effect<unknown, ConfigError> => {
  const lineCounter = new LineCounter()
  const doc = parseDocument(text, { merge: true, prettyErrors: false, uniqueKeys: true, lineCounter })
  const error = doc.errors[0]
  if (error !== undefined) {
    const { line, col } = lineCounter.linePos(error.pos[0])
    const reason = `invalid YAML at line ${line}:${col}: ${firstLine(error.message)}`
    return Effect.fail(new ConfigError({ file, field: "", reason }))
  }
  return Effect.try({
    try: () => doc.toJS(),
    catch: (e) =>
      new ConfigError({
        file,
        field: "",
        reason: `invalid YAML: ${e instanceof Error ? firstLine(e.message) : "unusable"}`
      })
  })
}

/** Parses and validates config text; `file` names it in errors and is the base for relative file paths. */
export const parseConfig = (
  text: string,
  file: string,
  env: Env = process.env
): Effect.Effect<ConfigSnapshot, ConfigError> =>
  Effect.gen(function* () {
    const root = yield* parseYaml(text, file)
    const source = path.resolve(file)
    return yield* snapshot(root, source).pipe(
      Effect.provideService(ConfigInput, { env, baseDir: path.dirname(source) }),
      Effect.mapError((e) => new ConfigError({ file, field: e.field, reason: e.reason }))
    )
  })

/** Reads (async) and validates a config file. */
export const loadConfig = (file: string, env: Env = process.env): Effect.Effect<ConfigSnapshot, ConfigError> =>
  Effect.tryPromise({
    try: () => readFile(file, "utf8"),
    catch: (e) => {
      const code = isRecord(e) && typeof e.code === "string" ? ` (${e.code})` : ""
      return new ConfigError({ file, field: "", reason: `cannot read the config file${code}` })
    }
  }).pipe(Effect.flatMap((text) => parseConfig(text, file, env)))
