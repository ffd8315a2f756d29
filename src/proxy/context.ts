// What the request path needs from the running proxy, handed over once when a listener is built: the services'
// parts (router of the live snapshot, pools, the process's KeyResolver, passive health, log) plus the state that
// belongs to one request path rather than to a module (request ids, per-connection key digests), so two proxies
// embedded in one process share nothing.
import type { ConfigSnapshot, ProviderConfig } from "../config/types.js"
import { ConnectionKeyDigests } from "../domain/credentials.js"
import type { KeyResolver } from "../domain/keys.js"
import type { HealthReporter } from "../domain/providers.js"
import { CooldownRegistry, type RetryReason } from "../domain/retry/index.js"
import type { Router } from "../domain/router.js"
import type { Logger } from "../log.js"
import { makeRequestIds, type RequestIds } from "../observability/requestId.js"
import type { Exchange } from "./exchange.js"
import { HostMemo } from "./host.js"
import type { LimitsControl } from "./phases/admit.js"
import type { UpstreamPools } from "./upstreams.js"

/** The services' side: each field is read once per request. */
export interface ProxyServices {
  readonly router: () => Router
  readonly pools: UpstreamPools
  readonly keys: KeyResolver
  readonly health: HealthReporter
  readonly log: Logger
  /** Called once per ended exchange (the log phase): access log, metrics, limit settlement. */
  readonly onEnd?: (ex: Exchange) => void
  /**
   * Whether an exchange started on this snapshot is timed: it reads the clock at its start and at its response
   * head (`startedAt`, `ttfbMs`, and the log phase's duration, `ttftMs` from them). An exchange nobody times reads
   * no clock (~50 ns a read) and measures nothing (`startedAt` 0, `ttfbMs` 0 once a head arrived, `ttftMs`
   * meaningless). Absent: timed whenever `onEnd` is set, so an embedder's sink
   * always gets them. The services' request path (services/RequestPath.ts) times exactly when its access log or
   * metrics will read them. The limits' settlement needs no clock: `ttfbMs >= 0` (a head arrived) holds either way.
   */
  readonly timed?: (snapshot: ConfigSnapshot) => boolean
  /** Live gauges (SPEC §10 in-flight requests, open streams and WebSockets), called in pairs. */
  readonly gauges?: RequestGauges
  /** Per-key limits (SPEC §12): the admit phase's Limiter; absent: nothing is limited. */
  readonly limits?: LimitsControl
  /** Counts (SPEC §11, `openproxy_retries_total` / `openproxy_cooldowns_total`): a retried attempt, a cool-down. */
  readonly onRetry?: (provider: ProviderConfig, reason: RetryReason) => void
  readonly onCooldown?: (provider: ProviderConfig) => void
}

/** What the request path counts while it happens (the Metrics service's LiveGauges). */
export interface RequestGauges {
  requestStarted(): void
  requestEnded(): void
  websocketOpened(): void
  websocketClosed(): void
  /** Responses being streamed (text/event-stream), SPEC §10 `openproxy_open_streams`. */
  streamOpened(): void
  streamClosed(): void
}

export interface ProxyContext extends ProxyServices {
  readonly timed: (snapshot: ConfigSnapshot) => boolean
  /** Request ids unique across workers and processes (SPEC §10). */
  readonly requestIds: RequestIds
  readonly digests: ConnectionKeyDigests
  /** Provider keys cooling down after a rate limit (SPEC §11); one per request path, so it outlives reloads. */
  readonly cooldowns: CooldownRegistry
  /** The last Host value parsed (phases/route.ts). */
  readonly hosts: HostMemo
}

const always = (): boolean => true
const never = (): boolean => false

/** The request path's context over the services (one per Listener). */
export const makeRequestPath = (services: ProxyServices): ProxyContext => ({
  ...services,
  timed: services.timed ?? (services.onEnd !== undefined ? always : never),
  requestIds: makeRequestIds(),
  digests: new ConnectionKeyDigests(),
  cooldowns: new CooldownRegistry(),
  hosts: new HostMemo()
})
