// Providers as the rest of the proxy sees them: a provider's identity for health bookkeeping (stable across
// reloads while its routing-relevant settings are unchanged, SPEC §6), its upstream origin, the TLS options every
// upstream connection to it uses (pools, tunnels, WebSocket upgrades and health probes alike), and the passive
// health reporting interface the request path calls.
import { createHash } from "node:crypto"
import * as net from "node:net"
import * as tls from "node:tls"
import * as Redacted from "effect/Redacted"
import type { ProviderConfig } from "../config/types.js"

/** Identity of a provider for health bookkeeping: same type, host, endpoint, port, TLS settings and keys. */
export const providerIdOf = (p: ProviderConfig): string => {
  const h = createHash("sha256")
  h.update(
    JSON.stringify([p.type, p.hostRaw, p.endpointHost, p.endpointPort, p.tls, p.http2, p.caFile ?? "", p.ca ?? ""])
  )
  for (const k of p.keys) {
    h.update(k.source._tag === "Static" ? Redacted.value(k.source.value) : `$(${Redacted.value(k.source.command)})`)
    h.update("\0")
  }
  return `${p.index}:${p.type}:${h.digest("hex").slice(0, 16)}`
}

/** `http(s)://host:port` of the provider's upstream (an IPv6 endpoint in brackets). */
export const originOf = (p: ProviderConfig): string => {
  const host = p.endpointHost.includes(":") ? `[${p.endpointHost}]` : p.endpointHost
  return `${p.tls ? "https" : "http"}://${host}:${p.endpointPort}`
}

/** The TLS options of a connection to the provider's upstream (only the parts every caller shares). */
export interface UpstreamTls {
  /** SNI: the endpoint's name; absent for an IP endpoint (RFC 6066 forbids IP literals in SNI). */
  readonly servername?: string
  /** Node's roots plus the provider's extra CA (passing `ca` alone would replace the roots). */
  readonly ca?: Array<string>
}

/**
 * SNI and trust for a provider: the one definition the connection pools (once per pool), the tunnel and WebSocket
 * sockets and the health probes all use, so they agree on one IP check (`net.isIP`).
 */
export const upstreamTls = (p: ProviderConfig): UpstreamTls =>
  Object.freeze({
    ...(net.isIP(p.endpointHost) === 0 ? { servername: p.endpointHost } : {}),
    ...(p.ca !== undefined ? { ca: [...tls.rootCertificates, p.ca] } : {})
  })

/** Passive health reporting (SPEC §6): connect failures count against a provider, successes reset it. */
export interface HealthReporter {
  readonly connectFailed: (providerId: string) => void
  readonly connected: (providerId: string) => void
}
