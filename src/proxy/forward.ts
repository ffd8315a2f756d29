// The HTTP request path: route → authenticate → swap credentials → stream to the upstream through undici →
// stream the answer back, with backpressure both ways. Plain callbacks, no Effect per request: Effect owns
// the lifecycle around it (listeners, pools, config), never the bytes (ARCHITECTURE "Keep bytes out of Effect").
import type * as http from "node:http"
import { STATUS_CODES } from "node:http"
import type * as http2 from "node:http2"
import { type Readable, Transform, type TransformCallback } from "node:stream"
import type * as Redacted from "effect/Redacted"
import type { Dispatcher } from "undici"
import type { ProviderType } from "../config/types.js"
import {
  ANTHROPIC_BETA_DROP,
  clientKeyFor,
  mayHoldKey,
  providerCredentialHeaders,
  splitPath,
  stripKeyParam
} from "../domain/credentials.js"
import type { Identity, Router } from "../domain/router.js"
import type { ProxyContext } from "./context.js"
import {
  buildUpstreamHeaders,
  type RequestHeadInfo,
  responseHeadersFromRaw,
  scanRequestHeaders,
  trailersForClient
} from "./headers.js"
import {
  abortClient,
  type ClientResponse,
  classifyUpstreamError,
  type ErrorKind,
  isStaleConnectionError,
  sendError
} from "./respond.js"
import type { ConnectionAware, TrackedClient, Upstream, UpstreamConnection } from "./upstreams.js"

export type ClientRequest = http.IncomingMessage | http2.Http2ServerRequest

/** Bodies up to this size are gathered into one Buffer before dispatch: cheaper, and replayable on a retry. */
const GATHER_LIMIT = 64 * 1024
const MAX_ATTEMPTS = 3
const IDEMPOTENT: ReadonlySet<string> = new Set(["GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"])

let requestSeq = 0
const nextRequestId = (): string => (++requestSeq).toString(36)

/** A Host port: digits only (RFC 9110 `port = *DIGIT`), at most 65535; empty means the default. */
const parsePort = (s: string, defaultPort: number): number | undefined => {
  if (s.length === 0) return defaultPort
  if (s.length > 5 || !/^\d+$/.test(s)) return undefined
  const n = Number(s)
  return n <= 65535 ? n : undefined
}

/** The last Host value parsed and its result: nearly every request of a deployment carries the same one. */
let lastHost: { value: string; defaultPort: number; parsed: { name: string; port: number } | undefined } | undefined

/** Host header value → lower-cased name without trailing dot, and port (listener default when absent). */
export const parseHost = (value: string, defaultPort: number): { name: string; port: number } | undefined => {
  const last = lastHost
  if (last !== undefined && last.value === value && last.defaultPort === defaultPort) return last.parsed
  const parsed = parseHostUncached(value, defaultPort)
  lastHost = { value, defaultPort, parsed: parsed === undefined ? undefined : Object.freeze(parsed) }
  return parsed
}

const parseHostUncached = (value: string, defaultPort: number): { name: string; port: number } | undefined => {
  let name: string
  let port = defaultPort
  if (value.charCodeAt(0) === 91 /* [ */) {
    const end = value.indexOf("]")
    if (end === -1) return undefined
    name = value.slice(0, end + 1)
    const rest = value.slice(end + 1)
    if (rest.length > 0) {
      if (rest.charCodeAt(0) !== 58) return undefined
      const p = parsePort(rest.slice(1), defaultPort)
      if (p === undefined) return undefined
      port = p
    }
  } else {
    const colon = value.lastIndexOf(":")
    if (colon === -1) name = value
    else {
      name = value.slice(0, colon)
      const p = parsePort(value.slice(colon + 1), defaultPort)
      if (p === undefined) return undefined
      port = p
    }
  }
  name = name.toLowerCase()
  if (name.endsWith(".")) name = name.slice(0, -1)
  if (name.length === 0) return undefined
  return { name, port }
}

/** Counts a body of unknown length on its way upstream and fails it past the limit. */
class BodyLimit extends Transform {
  private seen = 0
  exceeded = false
  constructor(private readonly limit: number) {
    super()
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.seen += chunk.length
    if (this.seen > this.limit) {
      this.exceeded = true
      cb(new Error("request body too large"))
      return
    }
    cb(null, chunk)
  }
}

interface RetryInfo {
  /** The router (and so the snapshot) the request started with: a retry never reads a newer one. */
  readonly router: Router
  readonly hostName: string
  readonly port: number
  readonly url: string
  readonly keyFor: (type: ProviderType) => string | undefined
  readonly digest: (key: string) => Buffer
}

interface Attempt {
  readonly identity: Identity
  readonly key: Redacted.Redacted<string> | undefined
}

/** Handles one request. `defaultPort` is the listener's (80 or 443) for requests whose host has no port. */
export const handleRequest = (
  ctx: ProxyContext,
  defaultPort: number,
  req: ClientRequest,
  res: ClientResponse,
  expectContinue = false
): void => {
  const router = ctx.router()
  const snapshot = router.snapshot
  const isH2 = req.httpVersionMajor === 2
  const raw = req.rawHeaders
  const info = scanRequestHeaders(raw)

  // Framing (SPEC §5): refuse what an upstream could read differently, before anything reaches it.
  if (info.transferEncoding !== undefined && !isH2) {
    if (info.transferEncoding.trim().toLowerCase() !== "chunked") return sendError(res, "unsupportedEncoding", true)
    if (info.contentLengths > 0) return sendError(res, "badFraming", true)
  }
  if (info.contentLengths > 1) return sendError(res, "badFraming", true)

  let hostValue: string | undefined
  if (isH2) {
    const h = req.headers[":authority"] ?? req.headers.host
    hostValue = typeof h === "string" ? h : undefined
  } else {
    if (info.hostCount > 1) return sendError(res, "multipleHost", true)
    hostValue = info.host
  }
  if (hostValue === undefined || hostValue.length === 0) return sendError(res, "missingHost")
  const host = parseHost(hostValue, defaultPort)
  if (host === undefined) return sendError(res, "badRequest")

  let url = req.url ?? "/"
  if (url.charCodeAt(0) !== 47 /* / */) {
    // absolute-form (`GET http://host/path`): route by Host as always, forward the path only
    const m = /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i.exec(url)
    if (m === null) return sendError(res, "badRequest")
    url = url.slice(m[0].length) || "/"
    if (url.charCodeAt(0) === 63 /* ? */) url = "/" + url
  }

  const { query } = splitPath(url)
  const keyFor = (type: ProviderType) => clientKeyFor(type, info, query)
  const connection: object = isH2 ? ((req as http2.Http2ServerRequest).stream.session ?? req) : req.socket
  const digest = (key: string) => ctx.digests.of(connection, key)
  const routed = router.route(host.name, host.port, url, keyFor, undefined, digest)
  switch (routed._tag) {
    case "NotFound":
      return sendError(res, "noProvider")
    case "Unauthorized":
      return sendError(res, "unauthorized")
    case "Unavailable":
      return sendError(res, "noHealthy")
  }

  const lengthHeader = isH2 ? req.headers["content-length"] : info.contentLength
  const contentLength = lengthHeader === undefined ? -1 : Number(lengthHeader)
  if (contentLength > snapshot.maxRequestBodySize) return sendError(res, "tooLarge", true)
  if (expectContinue) (res as http.ServerResponse).writeContinue()

  const requestId = nextRequestId()
  const hasBody = isH2
    ? !(req as http2.Http2ServerRequest).stream.endAfterHeaders
    : contentLength > 0 || info.transferEncoding !== undefined

  const exchange = new Exchange(ctx, req, res, isH2, info, requestId, routed.path)
  exchange.retry = { router, hostName: host.name, port: host.port, url, keyFor, digest }
  if (!hasBody) return exchange.start(routed.identity, null)
  if (contentLength > GATHER_LIMIT) return exchange.start(routed.identity, req)
  // Small bodies (and bodies of unknown length, until they prove large) are gathered into one Buffer:
  // one write upstream, and a request that can be replayed on a fresh connection.
  const chunks: Array<Buffer> = []
  let size = 0
  const onData = (c: Buffer) => {
    chunks.push(c)
    size += c.length
    if (size > snapshot.maxRequestBodySize) {
      req.removeListener("data", onData)
      req.removeListener("end", onEnd)
      chunks.length = 0
      return sendError(res, "tooLarge", true)
    }
    if (size <= GATHER_LIMIT || contentLength >= 0) return
    // Larger than a small body and of unknown length: stream it, counted against the limit.
    req.removeListener("data", onData)
    req.removeListener("end", onEnd)
    req.pause()
    const limited = new BodyLimit(snapshot.maxRequestBodySize)
    req.on("error", (e) => limited.destroy(e))
    req.once("aborted", () => limited.destroy(new Error("client aborted")))
    for (const chunk of chunks) limited.write(chunk)
    req.pipe(limited)
    exchange.limit = limited
    exchange.start(routed.identity, limited)
  }
  const onEnd = () => {
    // HTTP/2 emits 'end' after an abort too: a body the client never finished must not go upstream as complete
    if (exchange.clientGone || (req as { aborted?: boolean }).aborted) return abortClient(res)
    exchange.start(routed.identity, chunks.length === 1 ? chunks[0] : Buffer.concat(chunks))
  }
  req.on("data", onData)
  req.on("end", onEnd)
  req.on("error", () => abortClient(res))
}

/**
 * One client request and its upstream attempts (a retry only ever happens before any response byte).
 * It is itself the undici dispatch handler, in undici's core callback form (`onConnect`/`onHeaders`/`onData`/
 * `onComplete`/`onError`): that form gets raw header buffers and a pause signal through return values, without a
 * wrapper object or a parsed header copy per request.
 */
class Exchange implements Dispatcher.DispatchHandler, ConnectionAware {
  limit: BodyLimit | undefined
  /** The client undici handed the current attempt to (set by TrackedClient.dispatch). */
  via: TrackedClient | undefined = undefined
  /** What routing this request again (fail-over to another provider) needs. */
  retry: RetryInfo | undefined
  private abortUpstream: ((err?: Error) => void) | undefined
  private attempts = 0
  private responded = false
  private finished = false
  private excluded: Set<string> | undefined
  private body: Buffer | Readable | null = null
  private current: Attempt | undefined
  private upstream: Upstream | undefined
  private resume: (() => void) | undefined
  /** The connection the current attempt was written on (undefined: not written, nothing reached the upstream). */
  private conn: UpstreamConnection | undefined
  /** Whether `conn` had served responses before this attempt was written on it. */
  private reused = false
  /** `conn.socket.bytesRead` when the attempt was written: any byte past it is a response byte (HTTP/1.1). */
  private readAtWrite = 0
  /** The upstream sent something for this attempt (a head, even an interim 1xx one). */
  private answered = false
  /** The client went away (HTTP/2 responses have no `destroyed`, so this is the one signal for both). */
  clientGone = false

  constructor(
    private readonly ctx: ProxyContext,
    private readonly req: ClientRequest,
    private readonly res: ClientResponse,
    private readonly isH2: boolean,
    private readonly info: RequestHeadInfo,
    private readonly requestId: string,
    /** The path the chosen provider gets (its prefix removed); a fail-over may pick another prefix. */
    private path: string
  ) {
    res.on("close", () => {
      if (this.finished) return
      this.clientGone = true
      this.abortUpstream?.(new Error("client closed"))
    })
  }

  start(identity: Identity, body: Buffer | Readable | null): void {
    this.body = body
    this.attempt(identity)
  }

  private attempt(identity: Identity): void {
    this.attempts++
    const source = identity.key?.source
    if (source === undefined) return this.dispatch({ identity, key: undefined })
    const resolved = this.ctx.keys.resolve(source, identity.provider.apiKeyCacheTtlMs)
    if (!("then" in resolved)) return this.dispatch({ identity, key: resolved })
    resolved.then(
      (key) => this.dispatch({ identity, key }),
      (err: Error) => {
        this.ctx.log.log("warn", "api_key command failed", {
          request: this.requestId,
          provider: identity.provider.index,
          reason: err.message
        })
        sendError(this.res, "upstreamAuth")
      }
    )
  }

  private dispatch(a: Attempt): void {
    if (this.clientGone) return
    this.current = a
    const p = a.identity.provider
    // The snapshot the request started with, on every attempt (SPEC §7: a request finishes on its config).
    const snapshot = this.retry!.router.snapshot
    const strip = p.type !== "forward"
    const fromCommand = a.identity.key?.source._tag === "Command"
    const extra = providerCredentialHeaders(p.type, a.key, fromCommand, this.info)
    const headers = buildUpstreamHeaders(
      this.req.rawHeaders,
      this.info,
      strip,
      p.upstreamHostHeader,
      extra,
      p.type === "anthropic" && fromCommand ? ANTHROPIC_BETA_DROP : undefined
    )
    let path = this.path
    if (strip && mayHoldKey(path)) {
      const { path: pathname, query } = splitPath(path)
      const q = stripKeyParam(query)
      path = q === undefined ? pathname : `${pathname}?${q}`
    }
    const upstream = this.ctx.pools.get(p, snapshot.timeouts)
    this.upstream = upstream
    upstream.inflight++
    this.via = undefined
    this.conn = undefined
    this.answered = false
    try {
      upstream.dispatcher.dispatch(
        {
          path,
          method: this.req.method as Dispatcher.HttpMethod,
          headers,
          body: this.body,
          idempotent: false,
          blocking: true
        },
        this
      )
    } catch (err) {
      this.onError(err as Error)
    }
  }

  private done(): void {
    if (this.upstream !== undefined) {
      this.upstream.inflight--
      this.upstream = undefined
    }
  }

  // ---- undici handler callbacks

  onConnect(abort: (err?: Error) => void): void {
    this.abortUpstream = abort
    // Called by undici just before it writes the request: from here on, the upstream may have seen it.
    const conn = this.via?.conn
    if (conn !== undefined) {
      this.conn = conn
      this.reused = conn.served > 0
      this.readAtWrite = conn.socket.bytesRead
    }
    // the client may have gone while the upstream connection was being made
    if (this.clientGone) abort(new Error("client closed"))
  }

  onHeaders(status: number, raw: Array<Buffer>, resume: () => void, statusText: string): boolean {
    if (!this.answered) {
      this.answered = true
      if (this.conn !== undefined) this.conn.served++
    }
    if (status < 200) return true
    this.responded = true
    this.ctx.health.connected(this.current!.identity.providerId)
    const res = this.res
    if (this.clientGone) {
      this.abortUpstream?.(new Error("client closed"))
      return false
    }
    this.resume = resume
    const headers = responseHeadersFromRaw(raw, this.upstream?.protocol ?? "http/1.1", this.isH2)
    try {
      if (this.isH2) (res as http2.Http2ServerResponse).writeHead(status, headers as http2.OutgoingHttpHeaders)
      else {
        const h1 = res as http.ServerResponse
        h1.sendDate = false
        // undici decodes the reason phrase as UTF-8; relay it only when it is plain ASCII (Node's own phrase for
        // the status, the usual case, needs no check)
        if (statusText === STATUS_CODES[status]) h1.writeHead(status, headers as Array<string>)
        else if (statusText && /^[\t\x20-\x7e]*$/.test(statusText))
          h1.writeHead(status, statusText, headers as Array<string>)
        else h1.writeHead(status, headers as Array<string>)
      }
    } catch (err) {
      // a head Node refuses to write: answer 502 rather than an empty reply
      this.responded = false
      this.ctx.log.log("warn", "upstream response head refused", {
        request: this.requestId,
        error: (err as Error).name
      })
      this.finished = true
      this.abortUpstream?.(new Error("invalid response head"))
      sendError(res, "badGateway")
      return false
    }
    return true
  }

  onData(chunk: Buffer): boolean {
    if ((this.res as NodeJS.WritableStream).write(chunk)) return true
    this.res.once("drain", this.onDrain)
    return false
  }

  private readonly onDrain = (): void => this.resume?.()

  /** Trailers: raw pairs on HTTP/1.1 (typed so by undici), an object on HTTP/2 (what undici really passes). */
  onComplete(trailers: Array<string> | null): void {
    this.done()
    this.finished = true
    if (this.isH2 && trailers !== null && !Array.isArray(trailers)) {
      const t = trailersForClient(trailers as Record<string, string | Array<string> | undefined>)
      if (t !== undefined) (this.res as http2.Http2ServerResponse).addTrailers(t)
    }
    this.res.end()
  }

  onError(err: Error): void {
    this.done()
    const a = this.current!
    if (this.responded && this.clientGone) {
      // The client left mid-response (a cancelled generation, a closed tab): the upstream request was aborted on
      // purpose. Not an upstream failure, so not a warning (and no stderr write per cancelled stream).
      this.ctx.log.log("debug", "client closed mid-response", {
        request: this.requestId,
        provider: a.identity.provider.index
      })
      return
    }
    if (this.responded) {
      // The response has begun: abort it so a truncated answer never looks complete (SPEC §5).
      this.ctx.log.log("warn", "upstream failed mid-response", {
        request: this.requestId,
        provider: a.identity.provider.index,
        code: classifyUpstreamError(err).code
      })
      abortClient(this.res)
      return
    }
    if (this.clientGone || this.finished) return
    if (this.limit?.exceeded) return sendError(this.res, "tooLarge", true)
    const c = classifyUpstreamError(err)
    const written = this.conn !== undefined
    // A TLS error on a connection that carried the request is not a failure to connect.
    const connectFailure = c.connectFailure && !written
    if (connectFailure) this.ctx.health.connectFailed(a.identity.providerId)
    const replayable = this.body === null || Buffer.isBuffer(this.body)
    if (replayable && this.attempts < MAX_ATTEMPTS && (connectFailure || this.safeToReplay(err))) {
      // A stale pooled connection is retried on a fresh one; a provider that cannot be reached fails over.
      let next: Identity = a.identity
      if (connectFailure) {
        this.excluded ??= new Set()
        this.excluded.add(a.identity.providerId)
        const alt = this.routeAgain(this.excluded)
        if (alt === undefined) return this.fail(c.kind, err)
        next = alt
      }
      // On the next turn: undici is still unwinding the failed connection inside this callback.
      setImmediate(() => this.attempt(next))
      return
    }
    this.fail(c.kind, err)
  }

  /**
   * Whether a request whose connection failed may be sent again, on another connection (the rule Go's
   * net/http Transport follows): when it was never written; when the method is idempotent (once); or when the
   * connection had served earlier requests and failed before any response byte, the textbook stale keep-alive
   * connection the upstream closed as the request went out. Never on elapsed time: an upstream that read a POST
   * on a fresh connection and then reset may have acted on it, and a replay would run it twice.
   */
  private safeToReplay(err: Error): boolean {
    if (!isStaleConnectionError(err)) return false
    const conn = this.conn
    if (conn === undefined) return true
    if (IDEMPOTENT.has(this.req.method ?? "")) return this.attempts === 1
    // HTTP/2 multiplexes: bytes read on the session belong to other streams too, so only this stream's head counts.
    const noResponseByte = !this.answered && (conn.h2 || conn.socket.bytesRead === this.readAtWrite)
    return this.reused && noResponseByte
  }

  private routeAgain(excluded: ReadonlySet<string>): Identity | undefined {
    const r = this.retry
    if (r === undefined) return undefined
    const routed = r.router.route(r.hostName, r.port, r.url, r.keyFor, excluded, r.digest)
    if (routed._tag !== "Ok") return undefined
    this.path = routed.path
    return routed.identity
  }

  private fail(kind: ErrorKind, err: Error): void {
    this.ctx.log.log("warn", "upstream request failed", {
      request: this.requestId,
      provider: this.current!.identity.provider.index,
      code: classifyUpstreamError(err).code,
      error: err.message
    })
    sendError(this.res, kind)
  }
}
