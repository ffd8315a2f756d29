// The request's host and target as routing reads them (SPEC §3.1): a `Host`/`:authority` value into a lower-cased
// name without trailing dot and a port (the listener's default when absent), and a request target into the
// origin form the upstream gets (absolute-form `GET http://host/path` keeps only its path and query).

/** Where a parsed host goes: the exchange itself, so parsing allocates nothing but the name. */
export interface HostTarget {
  hostName: string
  port: number
}

/** A Host port: digits only (RFC 9110 `port = *DIGIT`), at most 65535; empty means the default. */
const parsePort = (s: string, defaultPort: number): number | undefined => {
  if (s.length === 0) return defaultPort
  if (s.length > 5 || !/^\d+$/.test(s)) return undefined
  const n = Number(s)
  return n <= 65535 ? n : undefined
}

/**
 * The last Host value a request path parsed and its result (held by the request path's context, one per listener
 * service: nearly every request of a deployment carries the same Host, and parsing it costs a slice, a regex and a
 * lower-casing, ~90 ns; the memo ~5 ns). `name` undefined: the value was invalid.
 */
export class HostMemo {
  private value: string | undefined = undefined
  private defaultPort = 0
  private name: string | undefined = undefined
  private port = 0

  /** `parseHostInto`, answered from the memo when the value and default port are the last ones. */
  parseInto(into: HostTarget, value: string, defaultPort: number): boolean {
    if (value !== this.value || defaultPort !== this.defaultPort) {
      this.name = parseHostInto(into, value, defaultPort) ? into.hostName : undefined
      this.port = into.port
      this.value = value
      this.defaultPort = defaultPort
      return this.name !== undefined
    }
    if (this.name === undefined) return false
    into.hostName = this.name
    into.port = this.port
    return true
  }
}

/** Parses a Host value into `into`; false when it is not a valid host (400). */
export const parseHostInto = (into: HostTarget, value: string, defaultPort: number): boolean => {
  let name: string
  let port = defaultPort
  if (value.charCodeAt(0) === 91 /* [ */) {
    const end = value.indexOf("]")
    if (end === -1) return false
    name = value.slice(0, end + 1)
    const rest = value.slice(end + 1)
    if (rest.length > 0) {
      if (rest.charCodeAt(0) !== 58) return false
      const p = parsePort(rest.slice(1), defaultPort)
      if (p === undefined) return false
      port = p
    }
  } else {
    const colon = value.lastIndexOf(":")
    if (colon === -1) name = value
    else {
      name = value.slice(0, colon)
      const p = parsePort(value.slice(colon + 1), defaultPort)
      if (p === undefined) return false
      port = p
    }
  }
  name = name.toLowerCase()
  if (name.endsWith(".")) name = name.slice(0, -1)
  if (name.length === 0) return false
  into.hostName = name
  into.port = port
  return true
}

const ABSOLUTE = /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i

/**
 * The origin form of a request target: as it is when it starts with `/`; an absolute-form target
 * (`http://host/path?q`) routed by Host as always, its path and query forwarded; undefined when it is neither.
 */
export const originForm = (target: string): string | undefined => {
  if (target.charCodeAt(0) === 47 /* / */) return target
  const m = ABSOLUTE.exec(target)
  if (m === null) return undefined
  const url = target.slice(m[0].length) || "/"
  return url.charCodeAt(0) === 63 /* ? */ ? "/" + url : url
}
