// The human-readable summary `openproxy check` prints: listeners, global settings and one line per
// provider. It counts keys and names their kind, and never prints a key, a command or a client key.

import { describeRedisUrl } from "../limits/redis.js"
import type { LimitSpec } from "../limits/types.js"
import type { ConfigSnapshot, ProviderConfig } from "./types.js"

const seconds = (ms: number): string => `${ms / 1000}s`

const address = (host: string, port: number): string => (host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`)

const keysText = (p: ProviderConfig): string => {
  if (p.keys.length === 0) return "keys=0"
  const commands = p.keys.filter((k) => k.source._tag === "Command").length
  return commands === 0 ? `keys=${p.keys.length}` : `keys=${p.keys.length} (${commands} from a command)`
}

const providerLine = (p: ProviderConfig): string =>
  [
    `  [${p.index}] ${p.type.padEnd(9)}`,
    `${p.hostRaw} -> ${address(p.endpointHost, p.endpointPort)}`,
    `tls=${p.tls ? "on" : "off"}`,
    `http2=${p.http2}`,
    `weight=${p.weight}`,
    `priority=${p.priority}`,
    `fallback=${p.isFallback ? "yes" : "no"}`,
    keysText(p),
    `auth_keys=${p.authKeys.length}`,
    p.healthCheck === undefined ? "health_check=connect" : `health_check=${p.healthCheck.method} ${p.healthCheck.path}`
  ].join(" ")

const specText = (s: LimitSpec): string =>
  [
    s.requestsPerMinute === undefined ? "" : `requests_per_minute=${s.requestsPerMinute}`,
    s.tokensPerMinute === undefined ? "" : `tokens_per_minute=${s.tokensPerMinute}`,
    s.concurrentRequests === undefined ? "" : `concurrent_requests=${s.concurrentRequests}`,
    s.tokensPerDay === undefined ? "" : `tokens_per_day=${s.tokensPerDay}`,
    s.tokensPerMonth === undefined ? "" : `tokens_per_month=${s.tokensPerMonth}`
  ]
    .filter((t) => t !== "")
    .join(" ")

/** The `limits:` section and each limited key name (SPEC §12); the Redis URL without user or password. */
const limitsLines = (c: ConfigSnapshot): Array<string> => {
  const l = c.limits
  const store = l.store === "redis" && l.redisUrl !== undefined ? `redis ${describeRedisUrl(l.redisUrl)}` : l.store
  return [
    `key limits: store ${store}, redis_timeout ${seconds(l.redisTimeoutMs)}, on_store_error ${l.onStoreError}, ` +
      `default_output_tokens ${l.defaultOutputTokens}, defaults ${l.defaults === undefined ? "none" : specText(l.defaults) || "none"}`,
    ...[...c.keyLimits].map(([name, spec]) => `  ${name}: ${specText(spec)}`)
  ]
}

export const summarize = (c: ConfigSnapshot): string => {
  const hc = c.healthCheck
  const t = c.timeouts
  const r = c.retry
  const lines = [
    `config: ${c.source}`,
    "listeners:",
    ...(c.http === undefined ? [] : [`  http   ${address(c.http.bindAddress, c.http.port)}`]),
    ...(c.https === undefined
      ? []
      : [`  https  ${address(c.https.bindAddress, c.https.port)} cert ${c.https.certFile}`]),
    `client auth: ${c.authKeys.length} global key(s)${
      c.clientKeys.length === 0 ? "" : `; names: ${c.clientKeys.map((k) => k.name).join(", ")}`
    }`,
    `observability: admin ${
      c.admin === undefined
        ? "off"
        : `${address(c.admin.bindAddress, c.admin.port)}${c.admin.authKey === undefined ? " (no auth_key)" : " (auth_key set)"}`
    }, access_log ${c.accessLog ? "on" : "off"}, inject_openai_stream_usage ${c.usage.injectOpenaiStreamUsage ? "on" : "off"}`,
    `health checks: ${hc.enabled ? "enabled" : "disabled"} (interval ${seconds(hc.intervalMs)}, timeout ${seconds(hc.timeoutMs)}, ` +
      `unhealthy after ${hc.unhealthyThreshold}, healthy after ${hc.healthyThreshold}, cooldown ${seconds(hc.cooldownMs)})`,
    `timeouts: client_header ${seconds(t.clientHeaderMs)}, connect ${seconds(t.connectMs)}, ` +
      `tls_handshake ${seconds(t.tlsHandshakeMs)}, response_header ${seconds(t.responseHeaderMs)}, idle ${seconds(t.idleMs)}, ` +
      `first_token ${t.firstTokenMs === 0 ? "off" : seconds(t.firstTokenMs)}`,
    `retry: attempts ${r.attempts} on ${r.onStatus.length === 0 ? "no status" : r.onStatus.join(",")}, ` +
      `max_body_bytes ${r.maxBodyBytes}, max_wait ${seconds(r.maxWaitMs)}, max_cooldown ${seconds(r.maxCooldownMs)}`,
    `limits: http_max_header_size ${c.httpMaxHeaderSize} bytes, http_max_headers_count ${c.httpMaxHeadersCount}, ` +
      `max_request_body_size ${c.maxRequestBodySize} bytes`,
    `connections: max_connections ${c.maxConnections} per process, ` +
      `http2_max_concurrent_streams ${c.http2MaxConcurrentStreams} per session`,
    ...limitsLines(c),
    `workers: ${c.workers}, graceful_shutdown_timeout ${seconds(c.gracefulShutdownTimeoutMs)}, ` +
      `connect tunnel ${c.connectTunnelEnabled ? "enabled" : "disabled"}`,
    `providers (${c.providers.length}):`,
    ...c.providers.map(providerLine)
  ]
  return lines.join("\n")
}
