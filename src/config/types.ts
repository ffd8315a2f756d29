// The validated, immutable configuration snapshot the rest of openproxy reads.
// Produced by `loadConfig` (src/config/load.ts) from an OpenProxy 2.x compatible YAML file.
// Every duration is in milliseconds here (the YAML uses seconds); every secret is `Redacted`.
import type * as Redacted from "effect/Redacted"

export type ProviderType = "openai" | "anthropic" | "gemini" | "forward"

/** Where a provider key comes from. */
export type KeySource =
  | { readonly _tag: "Static"; readonly value: Redacted.Redacted<string> }
  /** `$(command)`: run with `sh -c`, trimmed stdout is the key (SPEC §2). The command text is secret too. */
  | { readonly _tag: "Command"; readonly command: Redacted.Redacted<string> }

/** One upstream identity of a provider: a key and its selection weight (SPEC §2 `api_key`, `api_keys`). */
export interface ProviderKey {
  readonly source: KeySource
  readonly weight: number
}

/** The routing key `name[:port][/path-prefix]` of a provider (SPEC §3). */
export interface HostMatcher {
  /** Lower-cased, without a trailing dot. IPv6 literals keep their brackets (`[::1]`). */
  readonly name: string
  /** Only this port matches when set; any port when undefined. */
  readonly port: number | undefined
  /** "" when none; otherwise starts with "/" and has no trailing "/". */
  readonly pathPrefix: string
}

export interface ProviderHealthCheck {
  /** Default GET. */
  readonly method: string
  readonly path: string
  readonly body: string | undefined
  /** Parsed from `"Name: value"` strings. */
  readonly headers: ReadonlyArray<readonly [string, string]>
}

export interface ProviderConfig {
  /** Position in `providers[]`; also used in log lines and error paths. */
  readonly index: number
  readonly type: ProviderType
  /** The `host` string as written (for summaries and logs). */
  readonly hostRaw: string
  readonly host: HostMatcher
  /** Upstream host name or IP (brackets removed from IPv6) used for connect, SNI and the upstream `Host`. */
  readonly endpointHost: string
  readonly endpointPort: number
  /** Value sent as the upstream `Host` (name, plus `:port` when not the scheme default). */
  readonly upstreamHostHeader: string
  readonly tls: boolean
  readonly http2: "auto" | boolean
  readonly caFile: string | undefined
  /** Contents of `ca_file`, read at load time so a missing file is a config error. */
  readonly ca: string | undefined
  readonly weight: number
  readonly priority: number
  readonly isFallback: boolean
  /** Empty when the provider has no key (allowed for openai and forward only). */
  readonly keys: ReadonlyArray<ProviderKey>
  readonly apiKeyCacheTtlMs: number
  /** Provider-level client keys (added to the global ones). */
  readonly authKeys: ReadonlyArray<Redacted.Redacted<string>>
  readonly healthCheck: ProviderHealthCheck | undefined
}

export interface HealthCheckSettings {
  readonly enabled: boolean
  readonly intervalMs: number
  readonly timeoutMs: number
  readonly unhealthyThreshold: number
  readonly healthyThreshold: number
  readonly cooldownMs: number
}

export interface Timeouts {
  readonly clientHeaderMs: number
  readonly connectMs: number
  readonly tlsHandshakeMs: number
  readonly responseHeaderMs: number
  readonly idleMs: number
}

export interface TlsListenerConfig {
  readonly port: number
  readonly bindAddress: string
  readonly certFile: string
  readonly privateKeyFile: string
  /** PEM contents, read at load time. */
  readonly cert: string
  readonly key: Redacted.Redacted<string>
}

export interface PlainListenerConfig {
  readonly port: number
  readonly bindAddress: string
}

export interface ConfigSnapshot {
  /** Absolute path of the file this snapshot came from. */
  readonly source: string
  readonly https: TlsListenerConfig | undefined
  readonly http: PlainListenerConfig | undefined
  readonly authKeys: ReadonlyArray<Redacted.Redacted<string>>
  readonly healthCheck: HealthCheckSettings
  readonly gracefulShutdownTimeoutMs: number
  readonly connectTunnelEnabled: boolean
  /** Clamped to [1024, 1 MiB]. */
  readonly httpMaxHeaderSize: number
  readonly maxRequestBodySize: number
  /** Client connections per process (SPEC §8); over it new connections are closed at once. Default 10000. */
  readonly maxConnections: number
  /** Concurrent streams per HTTP/2 session (SETTINGS_MAX_CONCURRENT_STREAMS). Default 256. */
  readonly http2MaxConcurrentStreams: number
  /** Request header fields (HTTP/1.1 and HTTP/2); over it 431. Default 256. */
  readonly httpMaxHeadersCount: number
  readonly timeouts: Timeouts
  /** Resolved: `auto` becomes the number of cores. */
  readonly workers: number
  readonly providers: ReadonlyArray<ProviderConfig>
}
