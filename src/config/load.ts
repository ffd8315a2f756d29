// The config loader (SPEC §2): reads an OpenProxy 2.x compatible YAML file, validates it and builds the
// immutable `ConfigSnapshot`. The first problem found (top-level fields in document order, then the
// listener checks, then providers in order) becomes a `ConfigError` naming the file, the YAML path and
// the reason; an error never carries a secret. Certificate, key and CA files are read here (async fs),
// relative to the config file's directory, so an unreadable file is a config error, not a runtime one.
import { readFile } from "node:fs/promises"
import { availableParallelism } from "node:os"
import * as path from "node:path"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import { LineCounter, parseDocument } from "yaml"
import { bindAddress } from "./address.js"
import {
  boolean,
  type Context,
  duration,
  fields,
  filePath,
  type Invalid,
  integer,
  invalid,
  isRecord,
  list,
  mapping,
  port,
  readPem,
  secretList
} from "./fields.js"
import { parseProvider } from "./provider.js"
import type { ConfigSnapshot, HealthCheckSettings, Timeouts, TlsListenerConfig } from "./types.js"

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

/** Defaults of SPEC §2 and §8; durations in milliseconds. */
const DEFAULT_BIND_ADDRESS = "0.0.0.0"
const DEFAULT_HEALTH_CHECK: HealthCheckSettings = {
  enabled: false,
  intervalMs: 60_000,
  timeoutMs: 5_000,
  unhealthyThreshold: 1,
  healthyThreshold: 1,
  cooldownMs: 30_000
}
const DEFAULT_GRACEFUL_SHUTDOWN_TIMEOUT_MS = 5_000
const DEFAULT_HTTP_MAX_HEADER_SIZE = 16_384
const HEADER_SIZE_MIN = 1024
const HEADER_SIZE_MAX = 1_048_576
const DEFAULT_MAX_REQUEST_BODY_SIZE = 100 * 1024 * 1024
/** SPEC §8 resource limits. */
const DEFAULT_MAX_CONNECTIONS = 10_000
const DEFAULT_HTTP2_MAX_CONCURRENT_STREAMS = 256
const DEFAULT_HTTP_MAX_HEADERS_COUNT = 256
const DEFAULT_TIMEOUTS: Timeouts = {
  clientHeaderMs: 30_000,
  connectMs: 10_000,
  tlsHandshakeMs: 10_000,
  responseHeaderMs: 600_000,
  idleMs: 300_000
}
const DEFAULT_WORKERS = 1

const healthCheck = (field: string, u: unknown) =>
  Effect.flatMap(mapping(field, u), (obj) =>
    fields(obj, field, {
      enabled: (v, f) => boolean(f, v),
      interval: (v, f) => duration(f, v, true),
      timeout: (v, f) => duration(f, v, true),
      unhealthy_threshold: (v, f) => integer(f, v, 1),
      healthy_threshold: (v, f) => integer(f, v, 1),
      // 0 turns passive ejection off.
      cooldown: (v, f) => duration(f, v, false)
    })
  )

const timeouts = (field: string, u: unknown): Effect.Effect<Timeouts, Invalid> =>
  Effect.gen(function* () {
    const t = yield* fields(yield* mapping(field, u), field, {
      client_header: (v, f) => duration(f, v, true),
      connect: (v, f) => duration(f, v, true),
      tls_handshake: (v, f) => duration(f, v, true),
      response_header: (v, f) => duration(f, v, true),
      idle: (v, f) => duration(f, v, true)
    })
    return {
      clientHeaderMs: t.client_header ?? DEFAULT_TIMEOUTS.clientHeaderMs,
      connectMs: t.connect ?? DEFAULT_TIMEOUTS.connectMs,
      tlsHandshakeMs: t.tls_handshake ?? DEFAULT_TIMEOUTS.tlsHandshakeMs,
      responseHeaderMs: t.response_header ?? DEFAULT_TIMEOUTS.responseHeaderMs,
      idleMs: t.idle ?? DEFAULT_TIMEOUTS.idleMs
    }
  })

const workers = (field: string, u: unknown): Effect.Effect<number, Invalid> =>
  u === "auto"
    ? Effect.succeed(availableParallelism())
    : typeof u === "number" && Number.isInteger(u) && u >= 1
      ? Effect.succeed(u)
      : invalid(field, "must be an integer of at least 1, or auto")

/** Clamped, not refused: an out-of-range size is a tuning mistake, not a broken config. */
const headerSize = (field: string, u: unknown): Effect.Effect<number, Invalid> =>
  Effect.map(integer(field, u), (n) => Math.min(HEADER_SIZE_MAX, Math.max(HEADER_SIZE_MIN, n)))

const WILDCARDS = new Set(["0.0.0.0", "::"])

const snapshot = (root: unknown, ctx: Context, source: string): Effect.Effect<ConfigSnapshot, Invalid> =>
  Effect.gen(function* () {
    if (root === null || root === undefined) return yield* invalid("", "the file is empty")
    if (!isRecord(root)) return yield* invalid("", "the top level must be a mapping")
    const top = yield* fields(
      root,
      "",
      {
        https_port: (v, f) => port(f, v, true),
        https_bind_address: (v, f) => bindAddress(f, v),
        cert_file: (v, f) => filePath(f, v, ctx),
        private_key_file: (v, f) => filePath(f, v, ctx),
        http_port: (v, f) => port(f, v, true),
        http_bind_address: (v, f) => bindAddress(f, v),
        auth_keys: (v, f) => secretList(f, v, ctx.env),
        health_check: (v, f) => healthCheck(f, v),
        health_check_interval: (v, f) => duration(f, v, true), // the 2.x spelling of health_check.interval
        graceful_shutdown_timeout: (v, f) => duration(f, v, false), // 0: do not wait for in-flight work
        connect_tunnel_enabled: (v, f) => boolean(f, v),
        http_max_header_size: (v, f) => headerSize(f, v),
        max_request_body_size: (v, f) => integer(f, v, 1),
        max_connections: (v, f) => integer(f, v, 1),
        http2_max_concurrent_streams: (v, f) => integer(f, v, 1, 2 ** 31 - 1),
        http_max_headers_count: (v, f) => integer(f, v, 1, 65_535),
        timeouts: (v, f) => timeouts(f, v),
        workers: (v, f) => workers(f, v),
        providers: (v, f) => list(f, v)
      },
      // `defaults` and `x-*` exist to hold YAML anchors for merge keys.
      (key) => key === "defaults" || key.startsWith("x-")
    )

    if (top.http_port === undefined && top.https_port === undefined) {
      return yield* invalid("http_port", "no listener configured (set http_port and/or https_port)")
    }
    const http =
      top.http_port === undefined
        ? undefined
        : { port: top.http_port, bindAddress: top.http_bind_address ?? DEFAULT_BIND_ADDRESS }
    let https: TlsListenerConfig | undefined
    if (top.https_port !== undefined) {
      const bind = top.https_bind_address ?? DEFAULT_BIND_ADDRESS
      if (
        http !== undefined &&
        http.port !== 0 &&
        http.port === top.https_port &&
        (http.bindAddress === bind || WILDCARDS.has(http.bindAddress) || WILDCARDS.has(bind))
      ) {
        return yield* invalid("https_port", "is the same port as http_port")
      }
      if (top.cert_file === undefined) return yield* invalid("cert_file", "required when https_port is set")
      if (top.private_key_file === undefined) {
        return yield* invalid("private_key_file", "required when https_port is set")
      }
      const cert = yield* readPem("cert_file", top.cert_file, "CERTIFICATE")
      const key = yield* readPem("private_key_file", top.private_key_file, "PRIVATE KEY")
      https = {
        port: top.https_port,
        bindAddress: bind,
        certFile: top.cert_file,
        privateKeyFile: top.private_key_file,
        cert,
        key: Redacted.make(key)
      }
    }

    if (top.providers === undefined) return yield* invalid("providers", "required (a list of at least one provider)")
    if (top.providers.length === 0) return yield* invalid("providers", "must list at least one provider")
    const providers = yield* Effect.forEach(top.providers, (p, i) => parseProvider(p, i, ctx))

    const hc = top.health_check ?? {}
    return {
      source,
      https,
      http,
      authKeys: top.auth_keys ?? [], // default []: no client auth unless a provider has its own keys
      healthCheck: {
        enabled: hc.enabled ?? DEFAULT_HEALTH_CHECK.enabled,
        // An explicit health_check.interval wins over the old top-level health_check_interval.
        intervalMs: hc.interval ?? top.health_check_interval ?? DEFAULT_HEALTH_CHECK.intervalMs,
        timeoutMs: hc.timeout ?? DEFAULT_HEALTH_CHECK.timeoutMs,
        unhealthyThreshold: hc.unhealthy_threshold ?? DEFAULT_HEALTH_CHECK.unhealthyThreshold,
        healthyThreshold: hc.healthy_threshold ?? DEFAULT_HEALTH_CHECK.healthyThreshold,
        cooldownMs: hc.cooldown ?? DEFAULT_HEALTH_CHECK.cooldownMs
      },
      gracefulShutdownTimeoutMs: top.graceful_shutdown_timeout ?? DEFAULT_GRACEFUL_SHUTDOWN_TIMEOUT_MS,
      connectTunnelEnabled: top.connect_tunnel_enabled ?? false,
      httpMaxHeaderSize: top.http_max_header_size ?? DEFAULT_HTTP_MAX_HEADER_SIZE,
      maxRequestBodySize: top.max_request_body_size ?? DEFAULT_MAX_REQUEST_BODY_SIZE,
      maxConnections: top.max_connections ?? DEFAULT_MAX_CONNECTIONS,
      http2MaxConcurrentStreams: top.http2_max_concurrent_streams ?? DEFAULT_HTTP2_MAX_CONCURRENT_STREAMS,
      httpMaxHeadersCount: top.http_max_headers_count ?? DEFAULT_HTTP_MAX_HEADERS_COUNT,
      timeouts: top.timeouts ?? DEFAULT_TIMEOUTS,
      workers: top.workers ?? DEFAULT_WORKERS,
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
  env: Record<string, string | undefined> = process.env
): Effect.Effect<ConfigSnapshot, ConfigError> =>
  Effect.gen(function* () {
    const root = yield* parseYaml(text, file)
    const source = path.resolve(file)
    const ctx: Context = { env, baseDir: path.dirname(source) }
    return yield* snapshot(root, ctx, source).pipe(
      Effect.mapError((e) => new ConfigError({ file, field: e.field, reason: e.reason }))
    )
  })

/** Reads (async) and validates a config file. */
export const loadConfig = (
  file: string,
  env: Record<string, string | undefined> = process.env
): Effect.Effect<ConfigSnapshot, ConfigError> =>
  Effect.tryPromise({
    try: () => readFile(file, "utf8"),
    catch: (e) => {
      const code = isRecord(e) && typeof e.code === "string" ? ` (${e.code})` : ""
      return new ConfigError({ file, field: "", reason: `cannot read the config file${code}` })
    }
  }).pipe(Effect.flatMap((text) => parseConfig(text, file, env)))
