// The `Metrics` service (SPEC §10): every Prometheus metric openproxy exposes, in one prom-client Registry per
// process. The request path calls `record(end)` once per request (after it ended) with plain fields and the
// `live` gauges' methods as requests, connections, streams and WebSockets open and close; none of it allocates
// once a label set has been seen (families.ts). Values read at scrape time (open connections, provider health)
// come from `sources`, set by whoever owns them. Label values are bounded (observability/labels.ts).
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { Gauge, type Metric, Registry } from "prom-client"
import type { ProviderConfig } from "../config/types.js"
import { type Buckets, type Count, CounterFamily, HistogramFamily } from "../observability/families.js"
import { genAiProviderName, makeModelLabel, providerLabel } from "../observability/labels.js"

/** How the client reached us (the access log's `protocol`). */
export type Protocol = "http/1.1" | "h2" | "h2c" | "ws" | "tunnel"

/** Tokens of one request by type (SPEC §10): input, cache_read, cache_write and output are disjoint. */
export interface TokenUsage {
  readonly input: number
  readonly output: number
  readonly cacheRead: number
  readonly cacheWrite: number
  /** Part of `output`, reported again. */
  readonly reasoning: number
}

/** What the request path knows when a request (or WebSocket, or tunnel) has ended. */
export interface RequestEnd {
  /** The provider that served it; undefined when refused before one was chosen (404, 401, 503). */
  readonly provider: ProviderConfig | undefined
  /** The accepted client key's name; undefined when no key was checked. */
  readonly keyName: string | undefined
  /** The status the client received. */
  readonly status: number
  readonly protocol: Protocol
  readonly durationMs: number
  /** Upstream time to first byte of the response head; negative when none arrived. */
  readonly ttfbMs: number
  /** Time to the first content event of a stream; negative when not a stream or none came. */
  readonly ttftMs: number
  /** The model the client asked for, as sent (bounded here). */
  readonly model: string | undefined
  /** The model the provider says answered. */
  readonly responseModel: string | undefined
  readonly usage: TokenUsage | undefined
}

/** What `recordEnd` reads from an ended exchange (src/proxy/exchange.ts's Exchange has these fields). */
export interface EndSource {
  readonly identity: { readonly provider: ProviderConfig } | undefined
  readonly keyName: string | undefined
  readonly status: number
  readonly protocol: Protocol
  readonly ttfbMs: number
  readonly ttftMs: number
  readonly model: string | undefined
  readonly responseModel: string | undefined
  readonly usage: TokenUsage | undefined
}

/** Why an attempt was retried (SPEC §11). */
export type RetryReason = "connect" | "status" | "reset" | "first_token"

/** Values read when scraped, from the services that own them. */
export interface Sources {
  /** The Listener's set of open client connections (the request path does not count them again). */
  readonly openConnections?: () => number
  /** Each provider of the live config and whether it may be selected now. */
  readonly providerHealth?: () => ReadonlyArray<{ readonly provider: ProviderConfig; readonly healthy: boolean }>
  /** Whether the limits store answers (SPEC §12); undefined when no store is open. */
  readonly limitsStoreUp?: () => boolean | undefined
}

/** Gauges of what is open now that only the request path knows; it calls these in pairs. */
export class LiveGauges {
  inflight = 0
  streams = 0
  websockets = 0
  requestStarted(): void {
    this.inflight++
  }
  requestEnded(): void {
    this.inflight--
  }
  streamOpened(): void {
    this.streams++
  }
  streamClosed(): void {
    this.streams--
  }
  websocketOpened(): void {
    this.websockets++
  }
  websocketClosed(): void {
    this.websockets--
  }
}

export interface MetricsService {
  readonly registry: Registry
  readonly live: LiveGauges
  readonly record: (end: RequestEnd) => void
  /** The same as `record` for what an ended exchange holds (the request path's way: no RequestEnd per request). */
  readonly recordEnd: (ex: EndSource, durationMs: number) => void
  /** Called by the HealthChecker's reporter, where every upstream connect failure is already reported. */
  readonly connectError: (provider: ProviderConfig) => void
  readonly retry: (provider: ProviderConfig, reason: RetryReason) => void
  /** A provider key put into cool-down by a rate-limit answer (SPEC §11). */
  readonly cooldown: (provider: ProviderConfig) => void
  readonly rateLimited: (keyName: string, limit: string) => void
  /** A limits store call that failed (time-out, unreachable), by operation (SPEC §12). */
  readonly limitsStoreError: (op: string) => void
  readonly configReload: (ok: boolean) => void
  /** Sets (merges) the scrape-time sources. */
  readonly setSources: (s: Sources) => void
}

export class Metrics extends Context.Tag("openproxy/Metrics")<Metrics, MetricsService>() {}

/** Seconds: LLM calls take from milliseconds (an error, a cache hit) to many minutes (long generations). */
export const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600]
/** Tokens per request: the OpenTelemetry GenAI advice for `gen_ai.client.token.usage`. */
export const TOKEN_BUCKETS = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864]

const CODES: Array<string> = Array.from({ length: 600 }, (_, i) => String(i))
const codeLabel = (status: number): string => (status >= 100 && status < 600 ? CODES[status] : "0")

/** Builds the metrics of one process (a worker's or the only one). */
export const makeMetrics = (): MetricsService => {
  const registry = new Registry()
  const modelLabel = makeModelLabel()
  const reg = <M extends Metric<string>>(m: M): M => {
    registry.registerMetric(m)
    return m
  }
  const requests = reg(
    new CounterFamily("openproxy_requests_total", "Requests by provider, client key name, status and protocol.", [
      "provider",
      "key",
      "code",
      "protocol"
    ])
  )
  const duration = reg(
    new HistogramFamily(
      "openproxy_request_duration_seconds",
      "From the request head to the end of the response.",
      ["provider", "protocol"],
      LATENCY_BUCKETS
    )
  )
  const ttfb = reg(
    new HistogramFamily(
      "openproxy_upstream_ttfb_seconds",
      "From sending the request upstream to its response head.",
      ["provider"],
      LATENCY_BUCKETS
    )
  )
  const ttft = reg(
    new HistogramFamily(
      "gen_ai_server_time_to_first_token_seconds",
      "Time to the first content event of a streamed response.",
      ["provider", "gen_ai_provider_name", "gen_ai_request_model"],
      LATENCY_BUCKETS
    )
  )
  const tokenUsage = reg(
    new HistogramFamily(
      "gen_ai_client_token_usage",
      "Tokens per request (OpenTelemetry GenAI): input and output.",
      ["gen_ai_token_type", "gen_ai_provider_name", "gen_ai_request_model", "gen_ai_response_model"],
      TOKEN_BUCKETS
    )
  )
  const tokens = reg(
    new CounterFamily("openproxy_tokens_total", "Tokens by client key name, provider, model and type.", [
      "key",
      "provider",
      "model",
      "type"
    ])
  )
  const connectErrors = reg(
    new CounterFamily("openproxy_upstream_connect_errors_total", "Failed upstream connections (TCP, TLS).", [
      "provider"
    ])
  )
  const reloads = reg(new CounterFamily("openproxy_config_reloads_total", "Config reloads by result.", ["result"]))
  reloads.at("ok")
  reloads.at("error")
  const retries = reg(new CounterFamily("openproxy_retries_total", "Retried attempts.", ["provider", "reason"]))
  const cooldowns = reg(
    new CounterFamily("openproxy_cooldowns_total", "Provider keys put into cool-down by a rate limit.", ["provider"])
  )
  const ratelimited = reg(new CounterFamily("openproxy_ratelimited_total", "Refused by a limit.", ["key", "limit"]))
  const storeErrors = reg(
    new CounterFamily("openproxy_limits_store_errors_total", "Failed limits store calls (§12).", ["op"])
  )

  const live = new LiveGauges()
  let sources: Sources = {}
  const gauge = (name: string, help: string, read: () => number) =>
    reg(
      new Gauge({
        name,
        help,
        registers: [],
        collect() {
          this.set(read())
        }
      })
    )
  gauge("openproxy_inflight_requests", "Requests in flight.", () => live.inflight)
  gauge("openproxy_open_connections", "Open client connections.", () => sources.openConnections?.() ?? 0)
  gauge("openproxy_open_streams", "Streamed responses (text/event-stream) in progress.", () => live.streams)
  gauge("openproxy_open_websockets", "Open WebSockets.", () => live.websockets)
  reg(
    new Gauge({
      name: "openproxy_limits_store_up",
      help: "1 while the limits store answers, 0 while it fails (absent: no store open); with workers, the lowest.",
      registers: [],
      aggregator: "min",
      collect() {
        this.reset()
        const up = sources.limitsStoreUp?.()
        if (up !== undefined) this.set(up ? 1 : 0)
      }
    })
  )
  reg(
    new Gauge({
      name: "openproxy_provider_healthy",
      help: "1 when the provider may be selected (active and passive health); with workers, the lowest of theirs.",
      labelNames: ["provider"],
      registers: [],
      // With several workers each has its own view: the admin port reports a provider healthy only if all agree.
      aggregator: "min",
      collect() {
        this.reset()
        for (const { provider, healthy } of sources.providerHealth?.() ?? []) {
          this.set({ provider: providerLabel(provider) }, healthy ? 1 : 0)
        }
      }
    })
  )

  // The cells of the last request's label values: consecutive requests mostly share them (provider, key, status,
  // protocol; model names), so a request finds its ~8 cells with a few `===` instead of ~25 nested-Map lookups.
  // A label value never changes meaning (a model's label is fixed once seen), so reused cells are the same cells.
  let reqProvider: ProviderConfig | undefined | null = null
  let reqKey = ""
  let reqStatus = -1
  let reqProtocol = ""
  let cRequests: Count = { value: 0 }
  let cDuration: Buckets | undefined
  let cTtfb: Buckets | undefined
  let tokProvider: ProviderConfig | null = null
  let tokKey = ""
  let tokModel: string | undefined | null = null
  let tokResponse: string | undefined | null = null
  let system = ""
  let model = ""
  let responseModel = ""
  let cTtft: Buckets | undefined
  let cUsageIn: Buckets | undefined
  let cUsageOut: Buckets | undefined
  let cTokIn: Count | undefined
  let cTokOut: Count | undefined

  const recordValues = (
    p: ProviderConfig | undefined,
    key: string,
    status: number,
    protocol: Protocol,
    durationMs: number,
    ttfbMs: number,
    ttftMs: number,
    requestModel: string | undefined,
    answeredModel: string | undefined,
    u: TokenUsage | undefined
  ): void => {
    if (p !== reqProvider || key !== reqKey || status !== reqStatus || protocol !== reqProtocol) {
      reqProvider = p
      reqKey = key
      reqStatus = status
      reqProtocol = protocol
      const provider = p === undefined ? "" : providerLabel(p)
      cRequests = requests.at(provider, key, codeLabel(status), protocol)
      cDuration = duration.at(provider, protocol)
      cTtfb = ttfb.at(provider)
    }
    cRequests.value++
    cDuration!.observe(durationMs / 1000)
    if (ttfbMs >= 0) cTtfb!.observe(ttfbMs / 1000)
    if (p === undefined) return
    if (p !== tokProvider || key !== tokKey || requestModel !== tokModel || answeredModel !== tokResponse) {
      tokProvider = p
      tokKey = key
      tokModel = requestModel
      tokResponse = answeredModel
      const provider = providerLabel(p)
      system = genAiProviderName(p.type)
      model = modelLabel(requestModel)
      responseModel = answeredModel === undefined ? model : modelLabel(answeredModel)
      cTtft = ttft.at(provider, system, model)
      cUsageIn = tokenUsage.at("input", system, model, responseModel)
      cUsageOut = tokenUsage.at("output", system, model, responseModel)
      cTokIn = tokens.at(key, provider, model, "input")
      cTokOut = tokens.at(key, provider, model, "output")
    }
    if (ttftMs >= 0) cTtft!.observe(ttftMs / 1000)
    if (u === undefined) return
    cUsageIn!.observe(u.input + u.cacheRead + u.cacheWrite)
    cUsageOut!.observe(u.output)
    cTokIn!.value += u.input
    cTokOut!.value += u.output
    if (u.cacheRead > 0 || u.cacheWrite > 0 || u.reasoning > 0) {
      const provider = providerLabel(p)
      if (u.cacheRead > 0) tokens.at(key, provider, model, "cache_read").value += u.cacheRead
      if (u.cacheWrite > 0) tokens.at(key, provider, model, "cache_write").value += u.cacheWrite
      if (u.reasoning > 0) tokens.at(key, provider, model, "reasoning").value += u.reasoning
    }
  }

  const record = (end: RequestEnd): void =>
    recordValues(
      end.provider,
      end.keyName ?? "",
      end.status,
      end.protocol,
      end.durationMs,
      end.ttfbMs,
      end.ttftMs,
      end.model,
      end.responseModel,
      end.usage
    )

  const recordEnd = (ex: EndSource, durationMs: number): void =>
    recordValues(
      ex.identity?.provider,
      ex.keyName ?? "",
      ex.status,
      ex.protocol,
      durationMs,
      ex.ttfbMs,
      ex.ttftMs,
      ex.model,
      ex.responseModel,
      ex.usage
    )

  return {
    registry,
    live,
    record,
    recordEnd,
    connectError: (p) => {
      connectErrors.at(providerLabel(p)).value++
    },
    retry: (p, reason) => {
      retries.at(providerLabel(p), reason).value++
    },
    cooldown: (p) => {
      cooldowns.at(providerLabel(p)).value++
    },
    rateLimited: (keyName, limit) => {
      ratelimited.at(keyName, limit).value++
    },
    limitsStoreError: (op) => {
      storeErrors.at(op).value++
    },
    configReload: (ok) => {
      reloads.at(ok ? "ok" : "error").value++
    },
    setSources: (s) => {
      sources = { ...sources, ...s }
    }
  }
}

export const layer: Layer.Layer<Metrics> = Layer.sync(Metrics, makeMetrics)

/** The metrics of this process when the layer is present (it is optional for embedding apps and unit tests). */
export const optional = Effect.serviceOption(Metrics)
