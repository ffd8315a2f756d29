// Header rules of SPEC §4: hop-by-hop stripping (both directions), client-credential removal and the
// provider-credential injection. Works on Node's flat `rawHeaders` arrays ([name, value, name, value, ...])
// so header order and letter case reach the other side as sent, and nothing is copied twice.

/** Hop-by-hop headers (RFC 9110 §7.6.1), never relayed in either direction (framing is Node's to recompute). */
const RESPONSE_HOP_BY_HOP: ReadonlySet<string> = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "http2-settings"
])

/** On requests also `host` (set to the upstream's) and `expect` (the proxy answers 100-continue itself). */
const HOP_BY_HOP: ReadonlySet<string> = new Set([...RESPONSE_HOP_BY_HOP, "host", "expect"])

/** Every place a client can put a credential; removed before forwarding to openai/anthropic/gemini. */
const CLIENT_CREDENTIALS = new Set(["authorization", "proxy-authorization", "x-api-key", "x-goog-api-key"])

/** What a first pass over the request's raw headers learns, before routing. */
export interface RequestHeadInfo {
  hostCount: number
  authorization: string | undefined
  proxyAuthorization: string | undefined
  xApiKey: string | undefined
  xGoogApiKey: string | undefined
  /** Lower-cased header names listed in `Connection` (hop-by-hop by declaration). */
  connectionTokens: ReadonlyArray<string> | undefined
  transferEncoding: string | undefined
  contentLengths: number
  /** First `Host` and `Content-Length` values: read here so `req.headers` (built lazily by Node) is never needed. */
  host: string | undefined
  contentLength: string | undefined
  anthropicBeta: string | undefined
  /** The client's `x-request-id` (SPEC §10); "" when it sent several (none is trusted then). */
  requestId: string | undefined
}

const lower = (s: string): string => {
  // Fast path: most header names arrive already lower-case (HTTP/2 always).
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c >= 65 && c <= 90) return s.toLowerCase()
  }
  return s
}

/** One pass over the raw headers: counts and the credential candidates (first occurrence wins). */
export const scanRequestHeaders = (raw: ReadonlyArray<string>): RequestHeadInfo => {
  const info: RequestHeadInfo = {
    hostCount: 0,
    authorization: undefined,
    proxyAuthorization: undefined,
    xApiKey: undefined,
    xGoogApiKey: undefined,
    connectionTokens: undefined,
    transferEncoding: undefined,
    contentLengths: 0,
    host: undefined,
    contentLength: undefined,
    anthropicBeta: undefined,
    requestId: undefined
  }
  for (let i = 0; i < raw.length; i += 2) {
    const name = lower(raw[i])
    const value = raw[i + 1]
    switch (name) {
      case "host":
        info.hostCount++
        info.host ??= value
        break
      case "authorization":
        info.authorization ??= value
        break
      case "proxy-authorization":
        info.proxyAuthorization ??= value
        break
      case "x-api-key":
        info.xApiKey ??= value
        break
      case "x-goog-api-key":
        info.xGoogApiKey ??= value
        break
      case "connection": {
        const tokens = value
          .split(",")
          .map((t) => t.trim().toLowerCase())
          .filter((t) => t.length > 0)
        info.connectionTokens = info.connectionTokens ? [...info.connectionTokens, ...tokens] : tokens
        break
      }
      case "transfer-encoding":
        info.transferEncoding = info.transferEncoding === undefined ? value : `${info.transferEncoding}, ${value}`
        break
      case "content-length":
        info.contentLengths++
        info.contentLength ??= value
        break
      case "anthropic-beta":
        info.anthropicBeta = info.anthropicBeta === undefined ? value : `${info.anthropicBeta},${value}`
        break
      case "x-request-id":
        info.requestId = info.requestId === undefined ? value : ""
        break
    }
  }
  return info
}

/**
 * Builds the upstream request headers as a flat array: the client's headers minus hop-by-hop ones (and those
 * named in `Connection`), minus pseudo-headers, minus client credentials when `stripCredentials`, minus
 * `Proxy-Authorization` always; then `host` and the `extra` pairs (the provider credential) appended once.
 */
export const buildUpstreamHeaders = (
  raw: ReadonlyArray<string>,
  info: RequestHeadInfo,
  stripCredentials: boolean,
  hostHeader: string,
  extra: ReadonlyArray<string>,
  dropNames?: ReadonlySet<string>
): Array<string> => {
  const out: Array<string> = []
  const named = info.connectionTokens
  for (let i = 0; i < raw.length; i += 2) {
    const original = raw[i]
    if (original.charCodeAt(0) === 58 /* ":" */) continue
    const name = lower(original)
    if (HOP_BY_HOP.has(name)) continue
    if (name === "proxy-authorization") continue
    if (stripCredentials && CLIENT_CREDENTIALS.has(name)) continue
    if (named?.includes(name)) continue
    if (dropNames?.has(name)) continue
    out.push(original, raw[i + 1])
  }
  out.push("host", hostHeader)
  for (let i = 0; i < extra.length; i++) out.push(extra[i])
  return out
}

/** Lengths of the names in RESPONSE_HOP_BY_HOP (te, trailer/upgrade, connection/keep-alive, ...). */
const HOP_BY_HOP_LENGTHS: ReadonlySet<number> = new Set([...RESPONSE_HOP_BY_HOP].map((n) => n.length))

/** False when `name` cannot be a hop-by-hop header (nor `Connection`) by its length alone. */
const mayBeHopByHop = (name: string): boolean => HOP_BY_HOP_LENGTHS.has(name.length) || name.charCodeAt(0) === 58

/**
 * Header bytes as a string Node writes back byte for byte: both its HTTP/1.1 writer (when the body goes out as
 * Buffers, as here) and its HTTP/2 writer encode header strings as latin1, one byte per character.
 */
const headerString = (b: Buffer | string): string => (typeof b === "string" ? b : b.toString("latin1"))

/**
 * Converts undici's raw response headers (Buffers or strings, flat pairs) into what the client gets:
 * a flat array for HTTP/1.1 (letter case kept) or a header object for HTTP/2 (lower-case names, repeated
 * headers as arrays). Hop-by-hop headers, including those the upstream named in `Connection`, are dropped.
 * `requestId` is added as `x-request-id` (SPEC §10: ours on every response); a provider's own `x-request-id`
 * (which its SDK shows and its support asks for) is relayed as `x-upstream-request-id` (docs/architecture.md
 * "Request ids").
 */
export const responseHeadersFromRaw = (
  raw: ReadonlyArray<Buffer | string>,
  protocolTag: string,
  forHttp2: boolean,
  requestId?: string
): Array<string> | Record<string, string | Array<string>> => {
  const pairs: Array<string> = []
  let named: Array<string> | undefined
  for (let i = 0; i < raw.length; i += 2) {
    const name = headerString(raw[i])
    const value = headerString(raw[i + 1])
    if (requestId !== undefined && name.length === 12 && lower(name) === "x-request-id") {
      pairs.push("x-upstream-request-id", value)
      continue
    }
    if (!forHttp2 && !mayBeHopByHop(name)) {
      // HTTP/1.1 out, a name of no hop-by-hop length (most of them): relayed as is, no lower-casing.
      pairs.push(name, value)
      continue
    }
    const lname = lower(name)
    if (lname === "connection") {
      // Usually `keep-alive` or `close`: nothing more to drop then (keep-alive is hop-by-hop already).
      for (const token of value.split(",")) {
        const t = token.trim().toLowerCase()
        if (t.length === 0 || t === "close" || RESPONSE_HOP_BY_HOP.has(t)) continue
        named ??= []
        named.push(t)
      }
      continue
    }
    if (RESPONSE_HOP_BY_HOP.has(lname) || lname.charCodeAt(0) === 58) continue
    pairs.push(forHttp2 ? lname : name, value)
  }
  if (named !== undefined) {
    const drop = named
    for (let i = pairs.length - 2; i >= 0; i -= 2) {
      if (drop.includes(lower(pairs[i]))) pairs.splice(i, 2)
    }
  }
  pairs.push("x-upstream-protocol", protocolTag)
  if (requestId !== undefined) pairs.push("x-request-id", requestId)
  if (!forHttp2) return pairs
  const obj: Record<string, string | Array<string>> = {}
  for (let i = 0; i < pairs.length; i += 2) {
    const name = pairs[i]
    const prev = obj[name]
    if (prev === undefined) obj[name] = pairs[i + 1]
    else if (Array.isArray(prev)) prev.push(pairs[i + 1])
    else obj[name] = [prev, pairs[i + 1]]
  }
  return obj
}

/** Trailers from undici (object form) filtered for relaying to an HTTP/2 client. */
export const trailersForClient = (
  trailers: Record<string, string | Array<string> | undefined> | null | undefined
): Record<string, string | Array<string>> | undefined => {
  if (!trailers) return undefined
  let out: Record<string, string | Array<string>> | undefined
  for (const k in trailers) {
    const v = trailers[k]
    if (v === undefined || RESPONSE_HOP_BY_HOP.has(k) || k.charCodeAt(0) === 58) continue
    out ??= {}
    out[k] = v
  }
  return out
}
