// Failures on command for the mock provider (docs/retries.md, "Testing failover"): rules that make some requests
// fail the way real providers fail — a 429 with `Retry-After` and rate-limit headers, a 503, Anthropic's 529
// `overloaded_error`, a connection reset before the head, a stream that stalls after its head or is cut after its
// first event — each in the provider's own error shape, matched by the key a request presents and its path. Rules
// come from `--fail '<json>'` at start, `POST /__faults` or `mock.fail()`; requests are counted per key
// (`GET /__counts`, `mock.counts()`) so a test can check which key received what.
import http from "node:http"
import http2 from "node:http2"
import type { Duplex, Writable } from "node:stream"

export type Family = "openai" | "anthropic" | "gemini"

/** One rule; every field but the matchers is optional. A request gets the first active rule that matches. */
export interface FaultRule {
  /** Only requests presenting this provider key (in a header or the query, whichever form); default: every request. */
  readonly key?: string
  /** Only requests whose path (no query) starts with this; default: every path. */
  readonly path?: string
  /** Applies to this many matching requests, then is gone; default: every one. */
  readonly times?: number
  /** Active for this many ms after it was added; default: until cleared. */
  readonly forMs?: number
  /** Answer with this status and the provider's error body for it (after the request body is read). */
  readonly status?: number
  /** `Retry-After` value (seconds, or any string such as an HTTP-date); with 429 also the reset headers. */
  readonly retryAfter?: number | string
  /** `retry-after-ms` value. */
  readonly retryAfterMs?: number
  /** Further response headers. */
  readonly headers?: Readonly<Record<string, string>>
  /** Replaces the error body of `status`. */
  readonly body?: string
  /** Wait this long before the response head. */
  readonly delayMs?: number
  /** Close the connection (HTTP/1.1) or reset the stream (HTTP/2) before any response head. */
  readonly reset?: boolean
  /** Send the head at once, then hold the body (the first SSE event) back this long. */
  readonly stallMs?: number
  /** With `stallMs`: let this many body writes (SSE events, e.g. Anthropic's `message_start`) out first; default 0. */
  readonly stallAfter?: number
  /** After this many body writes (SSE events), close the connection / reset the stream: no clean end. */
  readonly cutAfter?: number
}

interface Active {
  readonly rule: FaultRule
  left: number
  readonly until: number
}

const FIELDS: Record<keyof FaultRule, "string" | "number" | "boolean" | "object" | "number|string"> = {
  key: "string",
  path: "string",
  times: "number",
  forMs: "number",
  status: "number",
  retryAfter: "number|string",
  retryAfterMs: "number",
  headers: "object",
  body: "string",
  delayMs: "number",
  reset: "boolean",
  stallMs: "number",
  stallAfter: "number",
  cutAfter: "number"
}

/** A rule from JSON, or the reason it is not one. */
export const parseFaultRule = (u: unknown): FaultRule | string => {
  if (u === null || typeof u !== "object" || Array.isArray(u)) return "a fault rule must be a JSON object"
  for (const [k, v] of Object.entries(u)) {
    const want = FIELDS[k as keyof FaultRule]
    if (want === undefined) return `unknown fault field ${k}`
    const ok =
      want === "number|string"
        ? typeof v === "string" || (typeof v === "number" && Number.isFinite(v) && v >= 0)
        : want === "number"
          ? typeof v === "number" && Number.isFinite(v) && v >= 0
          : want === "object"
            ? v !== null &&
              typeof v === "object" &&
              !Array.isArray(v) &&
              Object.values(v).every((x) => typeof x === "string")
            : typeof v === want
    if (!ok) return `fault field ${k} must be ${want === "object" ? "an object of strings" : `a ${want}`}`
  }
  const r = u as FaultRule
  if (r.status !== undefined && (!Number.isInteger(r.status) || r.status < 200 || r.status > 599)) {
    return "fault status must be 200..599"
  }
  return r
}

/** Rules from a JSON text: one rule or a list. */
export const parseFaultRules = (text: string): Array<FaultRule> | string => {
  let u: unknown
  try {
    u = JSON.parse(text)
  } catch {
    return "faults must be JSON"
  }
  const list = Array.isArray(u) ? u : [u]
  const out: Array<FaultRule> = []
  for (const item of list) {
    const r = parseFaultRule(item)
    if (typeof r === "string") return r
    out.push(r)
  }
  return out
}

export interface Counts {
  /** Provider API requests and WebSocket handshakes received (control endpoints aside). */
  readonly requests: number
  /** The same, per presented provider key ("" for none). */
  readonly keys: Record<string, number>
}

/** The fault rules and request counts of one mock instance. */
export class Faults {
  private rules: Array<Active> = []
  private requests = 0
  private perKey = new Map<string, number>()

  add(rules: ReadonlyArray<FaultRule>, now = Date.now()): void {
    for (const rule of rules) {
      this.rules.push({
        rule,
        left: rule.times ?? Number.POSITIVE_INFINITY,
        until: rule.forMs === undefined ? Number.POSITIVE_INFINITY : now + rule.forMs
      })
    }
  }

  clear(): void {
    this.rules = []
  }

  /** The rules still active, with the uses left (`times`) and ms left (`forMs`). */
  list(now = Date.now()): Array<FaultRule & { readonly timesLeft?: number; readonly msLeft?: number }> {
    this.expire(now)
    return this.rules.map((a) => ({
      ...a.rule,
      ...(a.left === Number.POSITIVE_INFINITY ? {} : { timesLeft: a.left }),
      ...(a.until === Number.POSITIVE_INFINITY ? {} : { msLeft: a.until - now })
    }))
  }

  /** Counts one request presenting `key`. */
  count(key: string | undefined): void {
    this.requests++
    const k = key ?? ""
    this.perKey.set(k, (this.perKey.get(k) ?? 0) + 1)
  }

  counts(): Counts {
    return { requests: this.requests, keys: Object.fromEntries(this.perKey) }
  }

  resetCounts(): void {
    this.requests = 0
    this.perKey = new Map()
  }

  /**
   * The first active rule matching a request for `url` (a query is ignored) presenting `key`, used up by one.
   * Undefined, and no work, when there are no rules.
   */
  take(url: string, key: string | undefined, now = Date.now()): FaultRule | undefined {
    if (this.rules.length === 0) return undefined
    this.expire(now)
    const qi = url.indexOf("?")
    const path = qi < 0 ? url : url.slice(0, qi)
    for (const a of this.rules) {
      const r = a.rule
      if (r.key !== undefined && r.key !== key) continue
      if (r.path !== undefined && !path.startsWith(r.path)) continue
      a.left--
      if (a.left <= 0) this.rules = this.rules.filter((x) => x !== a)
      return r
    }
    return undefined
  }

  private expire(now: number): void {
    if (this.rules.some((a) => a.until <= now)) this.rules = this.rules.filter((a) => a.until > now)
  }
}

// ---------- what a fault looks like on the wire ----------

const OPENAI_MESSAGES: Record<number, [string, string | null, string]> = {
  429: ["Rate limit reached for requests (mock).", "rate_limit_exceeded", "requests"],
  500: ["The server had an error while processing your request. Sorry about that!", null, "server_error"],
  502: ["Bad gateway.", null, "server_error"],
  503: ["The engine is currently overloaded, please try again later", null, "server_error"],
  504: ["Gateway timeout.", null, "server_error"]
}

const ANTHROPIC_TYPES: Record<number, [string, string]> = {
  400: ["invalid_request_error", "invalid request (mock)"],
  401: ["authentication_error", "invalid x-api-key"],
  403: ["permission_error", "permission denied (mock)"],
  404: ["not_found_error", "not found (mock)"],
  413: ["request_too_large", "Request exceeds the maximum allowed number of bytes."],
  429: ["rate_limit_error", "Number of requests has exceeded your rate limit (mock)."],
  500: ["api_error", "Internal server error"],
  529: ["overloaded_error", "Overloaded"]
}

const GEMINI_STATUS: Record<number, [string, string]> = {
  400: ["INVALID_ARGUMENT", "Request contains an invalid argument."],
  403: ["PERMISSION_DENIED", "Permission denied."],
  404: ["NOT_FOUND", "Not found."],
  429: ["RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota)."],
  500: ["INTERNAL", "An internal error has occurred."],
  503: ["UNAVAILABLE", "The model is overloaded. Please try again later."],
  504: ["DEADLINE_EXCEEDED", "Deadline exceeded."]
}

/** The body a provider of `family` sends with `status` (plain text outside the provider APIs). */
export const faultBody = (family: Family | undefined, status: number): { type: string; body: string } => {
  switch (family) {
    case "openai": {
      const [message, code, type] = OPENAI_MESSAGES[status] ?? [`mock fault ${status}`, null, "mock_fault"]
      return { type: "application/json", body: JSON.stringify({ error: { message, type, param: null, code } }) }
    }
    case "anthropic": {
      const [type, message] = ANTHROPIC_TYPES[status] ?? ["api_error", `mock fault ${status}`]
      return { type: "application/json", body: JSON.stringify({ type: "error", error: { type, message } }) }
    }
    case "gemini": {
      const [s, message] = GEMINI_STATUS[status] ?? ["UNKNOWN", `mock fault ${status}`]
      return { type: "application/json", body: JSON.stringify({ error: { code: status, message, status: s } }) }
    }
    default:
      return { type: "text/plain; charset=utf-8", body: `status ${status}\n` }
  }
}

/** The headers of a fault answer: `Retry-After`, `retry-after-ms`, the family's rate-limit headers, extras. */
export const faultHeaders = (family: Family | undefined, r: FaultRule, now = Date.now()): Record<string, string> => {
  const h: Record<string, string> = {}
  if (r.retryAfter !== undefined) h["retry-after"] = String(r.retryAfter)
  if (r.retryAfterMs !== undefined) h["retry-after-ms"] = String(r.retryAfterMs)
  const seconds = typeof r.retryAfter === "number" ? r.retryAfter : undefined
  if (r.status === 429) {
    if (family === "openai") {
      h["x-ratelimit-limit-requests"] = "60"
      h["x-ratelimit-remaining-requests"] = "0"
      if (seconds !== undefined) h["x-ratelimit-reset-requests"] = `${seconds}s`
    } else if (family === "anthropic") {
      h["anthropic-ratelimit-requests-limit"] = "60"
      h["anthropic-ratelimit-requests-remaining"] = "0"
      if (seconds !== undefined) {
        h["anthropic-ratelimit-requests-reset"] = new Date(now + seconds * 1000).toISOString().replace(/\.\d+Z$/, "Z")
      }
    }
  }
  if (family === "openai") h["x-request-id"] = "req_mock_fault"
  else if (family === "anthropic") h["request-id"] = "req_mock_fault"
  return { ...h, ...r.headers }
}

type Res = Writable & {
  writeHead(statusCode: number, headers?: http.OutgoingHttpHeaders): unknown
  readonly headersSent?: boolean
}

/** Closes the connection (HTTP/1.1) or resets the stream (HTTP/2) of `res`: the client sees no clean end. */
export const abort = (res: Res): void => {
  if (res instanceof http2.Http2ServerResponse) res.stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR)
  else if (res instanceof http.ServerResponse) res.socket?.destroy()
  else res.destroy()
}

/** Answers with the rule's status (after `delayMs`); the request body must have been read or be discarded. */
const answer = (family: Family | undefined, r: FaultRule, res: Res): void => {
  const status = r.status ?? 500
  const b = faultBody(family, status)
  const body = Buffer.from(r.body ?? b.body)
  res.writeHead(status, {
    "content-type": b.type,
    "content-length": String(body.length),
    ...faultHeaders(family, r)
  })
  res.end(body)
}

const later = (ms: number | undefined, res: Res, go: () => void): void => {
  if (ms === undefined || ms <= 0) {
    go()
    return
  }
  const t = setTimeout(go, ms)
  res.on("close", () => clearTimeout(t))
}

/**
 * Applies `r` to a request that matched it. Returns true when the fault answers the request itself (`status`,
 * `reset`): the caller must not. Otherwise it only wraps `res` (`delayMs`, `stallMs`, `cutAfter`) and the normal
 * handler answers through it.
 */
export const applyFault = (
  r: FaultRule,
  family: Family | undefined,
  req: { resume(): unknown; on(e: "end", f: () => void): unknown; readableEnded: boolean },
  res: Res
): boolean => {
  if (r.reset === true || r.status !== undefined) {
    // Like a provider: the whole request is read before the answer (so the proxy's upload completes).
    const go = () =>
      later(r.delayMs, res, () => {
        if (r.reset === true) abort(res)
        else answer(family, r, res)
      })
    if (req.readableEnded) go()
    else req.on("end", go)
    req.resume()
    return true
  }
  if (r.delayMs !== undefined || r.stallMs !== undefined || r.cutAfter !== undefined) wrap(r, res)
  return false
}

type Call = () => void

/** Holds the head (`delayMs`), then the body (`stallMs`), and cuts after `cutAfter` writes. */
const wrap = (r: FaultRule, res: Res): void => {
  const writeHead = res.writeHead.bind(res)
  const write = res.write.bind(res) as (chunk: unknown, cb?: (err?: Error | null) => void) => boolean
  const end = res.end.bind(res) as (chunk?: unknown) => unknown
  let queue: Array<Call> | undefined = r.delayMs !== undefined && r.delayMs > 0 ? [] : undefined
  let writes = 0
  let cut = false
  const run = (call: Call): void => {
    if (queue !== undefined) queue.push(call)
    else call()
  }
  const flush = (): void => {
    const q = queue ?? []
    queue = undefined
    for (let i = 0; i < q.length; i++) {
      // A call that starts a stall makes a new queue: the calls after it wait in that one.
      const next = queue as Array<Call> | undefined
      if (next !== undefined) {
        next.push(...q.slice(i))
        return
      }
      q[i]()
    }
  }
  const stall = (): void => {
    queue = []
    later(r.stallMs, res, flush)
  }
  const stallAfter = r.stallMs !== undefined && r.stallMs > 0 ? (r.stallAfter ?? 0) : -1
  if (queue !== undefined) later(r.delayMs, res, flush)
  res.writeHead = (status: number, headers?: http.OutgoingHttpHeaders) => {
    run(() => {
      writeHead(status, headers)
      if (stallAfter === 0) {
        // The head goes out now; everything after it waits.
        if (res instanceof http.ServerResponse) res.flushHeaders()
        stall()
      }
    })
    return res
  }
  res.write = ((chunk: unknown, ...rest: Array<unknown>) => {
    run(() => {
      if (cut) return
      writes++
      if (r.cutAfter !== undefined && writes >= r.cutAfter) {
        cut = true
        // Once this write has reached the socket, drop the connection / stream without an end.
        write(chunk, () => setImmediate(() => abort(res)))
        return
      }
      write(chunk, ...(rest as []))
      if (writes === stallAfter) stall()
    })
    return true
  }) as typeof res.write
  res.end = ((chunk?: unknown) => {
    run(() => {
      if (cut) return
      if (r.cutAfter !== undefined) {
        // Fewer writes than `cutAfter`: cut before the end instead, with what was written.
        cut = true
        if (chunk !== undefined && typeof chunk !== "function") write(chunk, () => setImmediate(() => abort(res)))
        else if (res.headersSent) setImmediate(() => abort(res))
        else abort(res)
        return
      }
      end(chunk)
    })
    return res
  }) as typeof res.end
}

/** Answers a WebSocket handshake with the rule (status or reset); false when the rule does not apply to one. */
export const applyUpgradeFault = (r: FaultRule, family: Family | undefined, socket: Duplex): boolean => {
  if (r.reset === true) {
    later(r.delayMs, socket as unknown as Res, () => socket.destroy())
    return true
  }
  if (r.status === undefined) return false
  const b = faultBody(family, r.status)
  const body = Buffer.from(r.body ?? b.body)
  const headers = { "content-type": b.type, "content-length": String(body.length), ...faultHeaders(family, r) }
  const lines = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`)
  const reason = http.STATUS_CODES[r.status] ?? "Unknown"
  later(r.delayMs, socket as unknown as Res, () => {
    socket.write(`HTTP/1.1 ${r.status} ${reason}\r\n${lines.join("")}connection: close\r\n\r\n`)
    socket.end(body)
  })
  return true
}
