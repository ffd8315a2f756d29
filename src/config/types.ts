// The validated, immutable configuration snapshot the rest of openproxy reads.
// Produced by `loadConfig` (src/config/load.ts) from an OpenProxy 2.x compatible YAML file.
// Every duration is in milliseconds here (the YAML uses seconds); every secret is `Redacted`.
// The plain settings are derived from their Schema definitions (schema.ts, provider.ts): a field and its
// default are written once, there; what is assembled from several fields is written out here.
import type * as Redacted from "effect/Redacted"
import type * as Schema from "effect/Schema"
import type { LimitSpec } from "../limits/types.js"
import type { ClientKey } from "./clientKeys.js"
import type { PROVIDER_TYPES, Provider } from "./provider.js"
import type { Settings } from "./schema.js"

/** `openai`, `anthropic`, `gemini`, `forward` (provider.ts). */
export type ProviderType = (typeof PROVIDER_TYPES)[number]

/** A provider's fields as written, defaults applied (provider.ts). */
type ProviderFields = Schema.Schema.Type<typeof Provider>

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

/** A provider's active probe: `method` (upper-cased), `path`, `body`, `headers` parsed from "Name: value". */
export type ProviderHealthCheck = NonNullable<Schema.Schema.Type<typeof Provider>["healthCheck"]>

/** A provider's settings (`tls`, `weight`, ... as defined in provider.ts) plus what is derived from them. */
export interface ProviderConfig
  extends Pick<ProviderFields, "type" | "tls" | "http2" | "weight" | "priority" | "isFallback" | "apiKeyCacheTtlMs"> {
  /** Position in `providers[]`; also used in log lines and error paths. */
  readonly index: number
  /** The `host` string as written (for summaries and logs). */
  readonly hostRaw: string
  readonly host: HostMatcher
  /** Upstream host name or IP (brackets removed from IPv6) used for connect, SNI and the upstream `Host`. */
  readonly endpointHost: string
  readonly endpointPort: number
  /** Value sent as the upstream `Host` (name, plus `:port` when not the scheme default). */
  readonly upstreamHostHeader: string
  readonly caFile: string | undefined
  /** Contents of `ca_file`, read at load time so a missing file is a config error. */
  readonly ca: string | undefined
  /** Empty when the provider has no key (allowed for openai and forward only). */
  readonly keys: ReadonlyArray<ProviderKey>
  /** Provider-level client keys (added to the global ones). */
  readonly authKeys: ReadonlyArray<Redacted.Redacted<string>>
  readonly healthCheck: ProviderHealthCheck | undefined
}

type SettingsFields = Schema.Schema.Type<typeof Settings>

/** `health_check:` (schema.ts); `intervalMs` is resolved with the 2.x `health_check_interval`. */
export type HealthCheckSettings = Required<SettingsFields["healthCheck"]>

/** `admin:` (schema.ts); undefined when the admin listener is off. */
export type AdminConfig = NonNullable<SettingsFields["admin"]>

export type { ClientKey } from "./clientKeys.js"

/** `timeouts:` (schema.ts). */
export type Timeouts = SettingsFields["timeouts"]

/** `retry:` (schema.ts, SPEC §11). */
export type RetrySettings = SettingsFields["retry"]

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

/** The top-level settings of schema.ts (`maxConnections`, `timeouts`, ...) plus what is assembled. */
export interface ConfigSnapshot extends Omit<SettingsFields, "healthCheck" | "authKeys"> {
  /** The global client keys (`auth_keys`). */
  readonly authKeys: ReadonlyArray<Redacted.Redacted<string>>
  /**
   * Every client key of the file once, global and provider-level, with its name (SPEC §10): what the router
   * reports for a request, and what `/keys` lists (names only).
   */
  readonly clientKeys: ReadonlyArray<ClientKey>
  /** Each key name's limits (its own or `limits.defaults`, SPEC §12); names without any are absent. */
  readonly keyLimits: ReadonlyMap<string, LimitSpec>
  /** Absolute path of the file this snapshot came from. */
  readonly source: string
  readonly https: TlsListenerConfig | undefined
  readonly http: PlainListenerConfig | undefined
  readonly healthCheck: HealthCheckSettings
  readonly providers: ReadonlyArray<ProviderConfig>
}
