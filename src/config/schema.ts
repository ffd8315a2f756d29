// The top level of the config file (SPEC §2, §8) as Schema: one definition per field, with its 2.x YAML name,
// its value schema, its default and what it is for. `Settings` is the part that goes into the snapshot as it is
// (types.ts derives `ConfigSnapshot` from it); the listener fields and `providers` are assembled in load.ts.
//
// A new section is a struct and one line in `Settings`, like `Retry` (SPEC §11):
//   export const Retry = Schema.Struct({
//     attempts: withDefault("attempts", int(0, 10), 2, "Extra attempts after the first, ..."),
//     ...
//   })
//   retry: section("retry", Retry, "Retries and failover (§11)."),   // in Settings
// and `c.retry.attempts` is then in every snapshot, typed, with its default.
import { availableParallelism } from "node:os"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import { bindAddress } from "./address.js"
import { ClientKeyList } from "./clientKeys.js"
import { optional, required, section, withDefault } from "./fields.js"
import { limitsSection } from "./limits.js"
import { Bool, checkInt, duration, FilePath, int, no, ok, port, Secret, value } from "./values.js"

/** `health_check.interval` when neither it nor the 2.x top-level `health_check_interval` is set. */
export const DEFAULT_HEALTH_CHECK_INTERVAL_MS = 60_000

/** A duration where 0, `off` or `false` means none (`timeouts.first_token`). */
const OffOrDuration = value("duration or off", (u) => {
  if (u === false || (typeof u === "string" && u.trim().toLowerCase() === "off")) return ok(0)
  return Schema.decodeUnknownEither(duration(false))(u).pipe(
    Either.mapLeft(() => 'must be a duration (like 30, "500ms", "30s") or off')
  )
})

/** Health checks (SPEC §6); `health_check:` at the top level. */
export const HealthCheck = Schema.Struct({
  enabled: withDefault("enabled", Bool, false, "Active probes on (also --enable-health-check)."),
  // No default value here: the 2.x top-level `health_check_interval` applies when this is absent (load.ts),
  // then DEFAULT_HEALTH_CHECK_INTERVAL_MS (60s).
  intervalMs: optional("interval", duration(true), "Between two probes of a provider; default 60s."),
  timeoutMs: withDefault("timeout", duration(true), 5_000, "Per probe."),
  unhealthyThreshold: withDefault("unhealthy_threshold", int(1), 1, "Failed probes before a provider is ejected."),
  healthyThreshold: withDefault("healthy_threshold", int(1), 1, "Passing probes before it is taken back."),
  cooldownMs: withDefault("cooldown", duration(false), 30_000, "Passive ejection after a connect failure; 0: off.")
})

/** Time-outs (SPEC §8); `timeouts:` at the top level. */
export const Timeouts = Schema.Struct({
  clientHeaderMs: withDefault(
    "client_header",
    duration(true),
    30_000,
    "From accept (or the end of the previous request) to the end of the next request head (slowloris)."
  ),
  connectMs: withDefault("connect", duration(true), 10_000, "TCP connect to an upstream."),
  tlsHandshakeMs: withDefault("tls_handshake", duration(true), 10_000, "TLS handshake, client or upstream side."),
  responseHeaderMs: withDefault("response_header", duration(true), 600_000, "Upstream response head (LLMs are slow)."),
  idleMs: withDefault("idle", duration(true), 300_000, "No byte in either direction on a body, stream or tunnel."),
  firstTokenMs: withDefault("first_token", OffOrDuration, 0, "A stream's first content event (§11); 0 or off: none.")
})

// ----- Retries and failover (SPEC §11) -----

/** The statuses retried by default: rate limited, server errors and Anthropic's 529 overloaded. */
export const DEFAULT_RETRY_ON_STATUS: ReadonlyArray<number> = [429, 500, 502, 503, 504, 529]

/** `retry:` at the top level. Connect errors, TLS errors and resets before the head are always retried. */
export const Retry = Schema.Struct({
  attempts: withDefault(
    "attempts",
    int(0, 10),
    2,
    "Extra attempts after the first, before any byte reached the client."
  ),
  onStatus: withDefault("on_status", Schema.Array(int(100, 599)), DEFAULT_RETRY_ON_STATUS, "Retried statuses."),
  maxBodyBytes: withDefault("max_body_bytes", int(0), 1_048_576, "Larger request bodies are streamed, never replayed."),
  maxWaitMs: withDefault("max_wait", duration(false), 0, "Wait for a cooling identity when all of a route's are."),
  maxCooldownMs: withDefault("max_cooldown", duration(false), 60_000, "Cap on a cool-down named by a provider.")
})

const HEADER_SIZE_MIN = 1024
const HEADER_SIZE_MAX = 1_048_576

/** Clamped, not refused: an out-of-range size is a tuning mistake, not a broken config. */
const HeaderSize = value("header size", (u) => {
  const n = checkInt(u, Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER)
  return n._tag === "Left" ? n : ok(Math.min(HEADER_SIZE_MAX, Math.max(HEADER_SIZE_MIN, n.right)))
})

/** A number of processes, or `auto`: one per core. */
const Workers = value("workers", (u) =>
  u === "auto"
    ? ok(availableParallelism())
    : typeof u === "number" && Number.isInteger(u) && u >= 1
      ? ok(u)
      : no("must be an integer of at least 1, or auto")
)

const BindAddress = value("bind address", bindAddress)

/** The admin listener (SPEC §10): `/metrics`, `/healthz`, `/readyz`, `/providers`, `/keys`; off when absent. */
export const Admin = Schema.Struct({
  port: required("port", port(true), "required (a port for the admin listener)", "Admin listener port."),
  bindAddress: withDefault("bind_address", BindAddress, "127.0.0.1", "Loopback unless said otherwise."),
  authKey: optional("auth_key", Secret, "Bearer key for every admin request but /healthz and /readyz; none: open.")
})

/** Token usage accounting (SPEC §10); `usage:` at the top level. */
export const Usage = Schema.Struct({
  injectOpenaiStreamUsage: withDefault(
    "inject_openai_stream_usage",
    Bool,
    true,
    "Ask OpenAI chat streams for their usage chunk and strip it when the client did not ask for it."
  )
})

/** The top-level fields that go into the snapshot unchanged. */
export const Settings = Schema.Struct({
  authKeys: withDefault(
    "auth_keys",
    ClientKeyList,
    [],
    "Client keys for every authenticating provider: a string (named key-<sha256 8 hex>) or {name, key, limits}; " +
      "none (and no provider keys): no client auth."
  ),
  healthCheck: section("health_check", HealthCheck, "Active and passive health checks (§6)."),
  gracefulShutdownTimeoutMs: withDefault(
    "graceful_shutdown_timeout",
    duration(false),
    5_000,
    "How long shutdown, upgrade and reload wait for in-flight work; 0: do not wait."
  ),
  connectTunnelEnabled: withDefault("connect_tunnel_enabled", Bool, false, "Allow HTTP CONNECT (§4)."),
  httpMaxHeaderSize: withDefault(
    "http_max_header_size",
    HeaderSize,
    16_384,
    "Largest request head in bytes (HTTP/1.1 and HTTP/2), clamped to [1024, 1 MiB]; over it: 431."
  ),
  maxRequestBodySize: withDefault("max_request_body_size", int(1), 100 * 1024 * 1024, "Over it: 413 (bytes)."),
  timeouts: section("timeouts", Timeouts, "Time-outs (§8)."),
  workers: withDefault("workers", Workers, 1, "Proxy processes sharing the listeners; auto: one per core."),
  reusePort: withDefault(
    "reuse_port",
    Bool,
    false,
    "With workers > 1: each worker listens on its own SO_REUSEPORT socket (Node ≥ 22.12, Linux), else round-robin."
  ),
  maxConnections: withDefault(
    "max_connections",
    int(1),
    10_000,
    "Open client connections per process; over it new connections are closed at once (§8)."
  ),
  http2MaxConcurrentStreams: withDefault(
    "http2_max_concurrent_streams",
    int(1, 2 ** 31 - 1),
    256,
    "Concurrent streams per HTTP/2 session (§8)."
  ),
  retry: section("retry", Retry, "Retries and failover (§11)."),
  httpMaxHeadersCount: withDefault(
    "http_max_headers_count",
    int(1, 65_535),
    256,
    "Request header fields accepted; over it: 431, never a silently truncated list (§8)."
  ),
  admin: optional("admin", Admin, "Admin listener (§10); off when absent."),
  accessLog: withDefault("access_log", Bool, true, "One line per request, WebSocket and tunnel on stdout (§10)."),
  usage: section("usage", Usage, "Token usage accounting (§10)."),
  limits: limitsSection("Limits and budgets per client key (§12).")
})

/** The whole top level: listeners and `providers` (assembled by load.ts) beside the `Settings`. */
export const Top = Schema.Struct({
  https_port: optional("https_port", port(true), "TLS listener (ALPN h2, http/1.1); none by default."),
  https_bind_address: withDefault("https_bind_address", BindAddress, "0.0.0.0", "IPv4/IPv6 literal or localhost."),
  cert_file: optional("cert_file", FilePath, "PEM chain; required with https_port. Relative to the config file."),
  private_key_file: optional("private_key_file", FilePath, "PEM key; required with https_port."),
  http_port: optional("http_port", port(true), "Plain listener (HTTP/1.1 and h2c); none by default."),
  http_bind_address: withDefault("http_bind_address", BindAddress, "0.0.0.0", "IPv4/IPv6 literal or localhost."),
  health_check_interval: optional("health_check_interval", duration(true), "2.x spelling of health_check.interval."),
  providers: optional("providers", Schema.Array(Schema.Unknown), "Required; each entry is checked by provider.ts."),
  ...Settings.fields
})
