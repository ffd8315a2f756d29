// Parsing of the address-like config strings: a provider's routing `host` (`name[:port][/prefix]`),
// its upstream `endpoint` (`name[:port]`), listener bind addresses, and the upstream `Host` header value.
import { isIP, isIPv6 } from "node:net"
import * as Either from "effect/Either"
import type { HostMatcher } from "./types.js"

/** A parsed value, or the reason it was refused (the config loader attaches the YAML path). */
type Parsed<A> = Either.Either<A, string>

export interface HostPort {
  /** Lower-cased, without a trailing dot; IPv6 without brackets. */
  readonly name: string
  readonly ipv6: boolean
  readonly port: number | undefined
}

// Host names as they appear in DNS and in `Host` headers (underscores occur in internal names).
const NAME = /^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*$/

/** Splits `name`, `name:port`, `[v6]` or `[v6]:port`; returns a reason on failure. */
const splitHostPort = (s: string): HostPort | string => {
  let name: string
  let portText: string | undefined
  let ipv6 = false
  if (s.startsWith("[")) {
    const close = s.indexOf("]")
    if (close < 0) return "has an unclosed [ in an IPv6 address"
    name = s.slice(1, close)
    if (!isIPv6(name)) return "has an invalid IPv6 address in [...]"
    ipv6 = true
    const rest = s.slice(close + 1)
    if (rest !== "") {
      if (!rest.startsWith(":")) return "has unexpected text after ]"
      portText = rest.slice(1)
    }
  } else {
    const colons = s.split(":").length - 1
    // `::1:8080` is itself a valid IPv6 address, so without brackets a port could not be told apart.
    if (colons > 1) return "must write an IPv6 address in brackets ([::1] or [::1]:8080)"
    if (colons === 1) {
      const at = s.indexOf(":")
      name = s.slice(0, at)
      portText = s.slice(at + 1)
    } else {
      name = s
    }
  }
  name = name.toLowerCase()
  if (!ipv6) {
    if (name.endsWith(".")) name = name.slice(0, -1)
    if (name === "") return "has an empty host name"
    if (!NAME.test(name)) return "has an invalid host name"
  }
  let port: number | undefined
  if (portText !== undefined) {
    port = /^\d{1,5}$/.test(portText) ? Number(portText) : Number.NaN
    if (!(port >= 1 && port <= 65535)) return "has an invalid port (must be an integer from 1 to 65535)"
  }
  return { name, ipv6, port }
}

const SCHEME = /^[a-z][a-z0-9+.-]*:\/\//i

/** A provider `host`: `name[:port][/path-prefix]`, §3. */
export const parseHost = (raw: string): Parsed<HostMatcher> => {
  const s = raw.trim()
  if (s === "") return Either.left("must not be empty")
  if (SCHEME.test(s)) return Either.left("must be name[:port][/path-prefix], without a scheme")
  const slash = s.indexOf("/")
  const authority = slash < 0 ? s : s.slice(0, slash)
  const prefix = slash < 0 ? "" : s.slice(slash)
  const hp = splitHostPort(authority)
  if (typeof hp === "string") return Either.left(hp)
  if (/[\s?#]/.test(prefix)) return Either.left("path prefix must not contain spaces, ? or #")
  return Either.right({
    name: hp.ipv6 ? `[${hp.name}]` : hp.name,
    port: hp.port,
    // `/openai/` and `/openai` are the same prefix; `/` alone means none.
    pathPrefix: prefix.replace(/\/+$/, "")
  })
}

/** A provider `endpoint`: `name` or `name:port` (IPv6 in brackets), no scheme and no path. */
export const parseEndpoint = (raw: string): Parsed<HostPort> => {
  const s = raw.trim()
  if (s === "") return Either.left("must not be empty")
  if (SCHEME.test(s) || s.includes("/")) {
    return Either.left("must be a host name or IP address, optionally with :port (no scheme, no path)")
  }
  const hp = splitHostPort(s)
  return typeof hp === "string" ? Either.left(hp) : Either.right(hp)
}

/** The upstream `Host`: the endpoint (IPv6 re-bracketed) plus `:port` unless it is the scheme's default. */
export const upstreamHostHeader = (endpointHost: string, port: number, tls: boolean): string => {
  const host = isIPv6(endpointHost) ? `[${endpointHost}]` : endpointHost
  return port === (tls ? 443 : 80) ? host : `${host}:${port}`
}

/** A listener bind address: an IPv4 or IPv6 literal (brackets allowed) or `localhost`. */
export const bindAddress = (u: unknown): Parsed<string> => {
  if (typeof u !== "string") return Either.left("must be an IPv4 or IPv6 address (or localhost)")
  const s = u.trim().replace(/^\[(.*)\]$/, "$1")
  if (s.toLowerCase() === "localhost") return Either.right("localhost")
  if (isIP(s) === 0) return Either.left(`must be an IPv4 or IPv6 address or localhost (got ${JSON.stringify(u)})`)
  return Either.right(s)
}
