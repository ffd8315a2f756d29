// Node servers behind one listening port. The TLS port picks HTTP/2 or HTTP/1.1 by ALPN; the plain port tells
// HTTP/1.1 from h2c prior knowledge by the first bytes. Either way the socket is handed to an `http.Server`
// (HTTP/1.1) or an `http2.Server`, so all HTTP parsing stays in Node.
//
// This module also gives every state of a connection a deadline from `timeouts:` (SPEC §8, docs/hardening.md):
// before the first request and between keep-alive requests `client_header`; a body, a response, an HTTP/2
// session or stream without a byte `idle`; waiting for the upstream's head is left to `response_header` (the
// upstream side). And it holds the limits Node does not enforce as configured: header count (HTTP/1.1 and /2)
// and header list size (HTTP/2), and the rapid-reset defence (CVE-2023-44487).
import * as http from "node:http"
import * as http2 from "node:http2"
import type * as net from "node:net"
import type * as tls from "node:tls"
import * as Redacted from "effect/Redacted"
import type { ConfigSnapshot, TlsListenerConfig } from "../config/types.js"
import type { Logger } from "../log.js"
import { type ClientResponse, sendError } from "./respond.js"

const H2_PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
const { NGHTTP2_CANCEL, NGHTTP2_ENHANCE_YOUR_CALM, NGHTTP2_NO_ERROR } = http2.constants

/**
 * Rapid reset (CVE-2023-44487): once a session has opened this many streams, it is closed with GOAWAY
 * ENHANCE_YOUR_CALM when more than half of them were reset before any response (Envoy's "premature reset" rule,
 * with a lower floor). nghttp2's own limit (a burst of 1000 resets) stays below it.
 */
const RESET_MIN_STREAMS = 100
/** Header pairs HTTP/2 may carry beyond `http_max_headers_count` (pseudo-headers, plus one to detect "over"). */
const H2_PSEUDO_SLACK = 8

export type RequestHandler = (
  req: http.IncomingMessage | http2.Http2ServerRequest,
  res: http.ServerResponse | http2.Http2ServerResponse,
  expectContinue: boolean
) => void

/** Handlers for what is not a plain request: upgrades (WebSocket) and CONNECT, on HTTP/1.1 and HTTP/2. */
export interface ExtraHandlers {
  readonly upgrade?: (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => void
  readonly connect?: (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => void
  /** HTTP/2 CONNECT, including RFC 8441 extended CONNECT (`:protocol`). */
  readonly h2Connect?: (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void
}

/** The pair of protocol servers a listening port feeds. */
export interface ProtocolServers {
  readonly h1: http.Server
  readonly h2: http2.Http2Server
  /** Applies the settings of a new snapshot (time-outs, header limits) from now on, also to kept connections. */
  readonly configure: (c: ConfigSnapshot) => void
  /** Closes idle HTTP/1.1 keep-alive connections and sends GOAWAY on HTTP/2 sessions. */
  readonly closeIdle: () => void
  /** Destroys every connection at once (end of the grace period). */
  readonly destroyAll: () => void
  /** Destroys every connection and releases the servers themselves (Node's connection-check interval). */
  readonly release: () => void
  /** Hands a plain or TLS socket to the HTTP/1.1 server with its deadlines. */
  readonly attachH1: (socket: net.Socket) => void
  /** Hands a plain or TLS socket to the HTTP/2 server. */
  readonly attachH2: (socket: net.Socket) => void
  /** `client_header` now: how long the plain port waits for a new connection's first bytes. */
  readonly clientHeaderMs: () => number
}

/** The settings read per connection or request; replaced as a whole on reload. */
interface Limits {
  readonly clientHeaderMs: number
  readonly idleMs: number
  readonly maxHeaderSize: number
  readonly maxHeadersCount: number
}

const limitsOf = (c: ConfigSnapshot): Limits => ({
  clientHeaderMs: c.timeouts.clientHeaderMs,
  idleMs: c.timeouts.idleMs,
  maxHeaderSize: c.httpMaxHeaderSize,
  maxHeadersCount: c.httpMaxHeadersCount
})

const rejectRawRequest = (socket: net.Socket, status: number, reason: string): void => {
  if (!socket.writable) {
    socket.destroy()
    return
  }
  socket.end(`HTTP/1.1 ${status} ${reason}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`)
}

/**
 * The one `'timeout'` policy of an HTTP/1.1 socket (Node's own handler is removed: it destroys in every state).
 * The socket's inactivity timer runs with `client_header` before the first request and (as Node's keep-alive
 * timer) between requests, and with `idle` during a request. A request whose head and body are in and whose
 * response has not begun is waiting for the upstream, which `response_header` bounds on the upstream side: kept.
 * Anything else (silent connection, stalled upload, a client that stopped reading) is closed.
 */
function onH1Timeout(this: net.Socket): void {
  const res = (this as net.Socket & { _httpMessage?: http.ServerResponse | null })._httpMessage
  if (res != null && !res.headersSent && res.req.complete) return
  this.destroy()
}

/** Node's handler for `'timeout'` on a socket its HTTP server took (same name on Node 20, 22 and 24). */
const dropNodeTimeoutHandler = (socket: net.Socket): void => {
  for (const l of socket.listeners("timeout")) {
    if ((l as { name?: string }).name === "socketOnTimeout") socket.removeListener("timeout", l as () => void)
  }
}

/** An HTTP/2 stream without a byte for `idle`: reset, unless it is waiting for the upstream's head. */
function onH2StreamTimeout(this: http2.ServerHttp2Stream): void {
  if (this.destroyed) return
  if (!this.headersSent && this.state.remoteClose === 1) return
  this.close(NGHTTP2_CANCEL)
}

/**
 * An HTTP/2 session without a byte for `client_header` before its first stream, `idle` after: GOAWAY; streams still
 * waiting for their upstream finish first.
 */
function onH2SessionTimeout(this: http2.ServerHttp2Session): void {
  if (!this.closed && !this.destroyed) this.close()
}

/** The HTTP/2 header list size as SETTINGS_MAX_HEADER_LIST_SIZE counts it (RFC 9113 §6.5.2): 32 per field. */
const headerListSize = (raw: ReadonlyArray<string>): number => {
  let n = 0
  for (let i = 0; i < raw.length; i++) n += raw[i].length
  return n + (raw.length >> 1) * 32
}

/** Sets a private option Node reads per connection and offers no setter for (looked up by symbol name). */
const setBySymbol = (target: object, description: string, f: (current: unknown) => unknown): void => {
  for (const s of Object.getOwnPropertySymbols(target)) {
    if (s.description === description) {
      const t = target as Record<symbol, unknown>
      t[s] = f(t[s])
      return
    }
  }
}

export const makeProtocolServers = (
  c: ConfigSnapshot,
  onRequest: RequestHandler,
  extra: ExtraHandlers,
  logger: Logger
): ProtocolServers => {
  let limits = limitsOf(c)

  const h1 = http.createServer({
    maxHeaderSize: c.httpMaxHeaderSize,
    requestTimeout: 0,
    headersTimeout: c.timeouts.clientHeaderMs,
    keepAliveTimeout: c.timeouts.clientHeaderMs,
    connectionsCheckingInterval: Math.max(100, Math.min(1_000, c.timeouts.clientHeaderMs / 4)),
    noDelay: true
  })
  // One more than allowed, so that "over the limit" is seen (Node silently drops headers past this count).
  h1.maxHeadersCount = c.httpMaxHeadersCount + 1
  // Node puts this on a socket when it arrives and when a keep-alive request's head is in: so the `idle` deadline
  // of a request costs no timer change of ours except on a connection's first request.
  h1.timeout = c.timeouts.idleMs
  const h1Request = (req: http.IncomingMessage, res: http.ServerResponse, expectContinue: boolean) => {
    const socket = req.socket
    // From here to the end of the exchange the socket's inactivity deadline is `idle` (after the response Node
    // sets its keep-alive timer, and `h1.timeout` again when the next request's head is in).
    if (socket.timeout !== limits.idleMs) socket.setTimeout(limits.idleMs)
    if (req.rawHeaders.length > limits.maxHeadersCount * 2) return sendError(res, "headerTooLarge", true)
    onRequest(req, res, expectContinue)
  }
  h1.on("request", (req, res) => h1Request(req, res, false))
  h1.on("checkContinue", (req, res) => h1Request(req, res, true))
  h1.on("clientError", (err: NodeJS.ErrnoException, socket: net.Socket) => {
    switch (err.code) {
      case "HPE_HEADER_OVERFLOW":
        return rejectRawRequest(socket, 431, "Request Header Fields Too Large")
      case "ERR_HTTP_REQUEST_TIMEOUT":
        return rejectRawRequest(socket, 408, "Request Timeout")
      case "ECONNRESET":
        return socket.destroy()
      default:
        return rejectRawRequest(socket, 400, "Bad Request")
    }
  })
  // An upgraded or tunnelled socket leaves the HTTP server: its deadlines are the tunnel's own (idle, on the
  // upstream socket, src/proxy/socket.ts) and the upgrade handshake's (response_header).
  const leaveH1 = (socket: net.Socket) => {
    socket.removeListener("timeout", onH1Timeout)
    socket.setTimeout(0)
  }
  const { upgrade, connect } = extra
  if (upgrade) {
    h1.on("upgrade", (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
      leaveH1(socket)
      upgrade(req, socket, head)
    })
  }
  if (connect) {
    h1.on("connect", (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
      leaveH1(socket)
      connect(req, socket, head)
    })
  } else h1.on("connect", (_req, socket: net.Socket) => rejectRawRequest(socket, 405, "Method Not Allowed"))
  // Servers fed through emit("connection") start connection tracking (header time-outs) only on "listening".
  h1.emit("listening")

  const h2 = http2.createServer({
    maxSessionMemory: 64,
    // Node's defaults, stated: 1000 invalid frames, 100 refused streams (over `maxConcurrentStreams`), 10
    // unanswered PINGs and SETTINGS, 32 entries per SETTINGS frame; then the session is closed.
    maxSessionInvalidFrames: 1000,
    maxSessionRejectedStreams: 100,
    maxOutstandingPings: 10,
    maxSettings: 32,
    maxHeaderListPairs: c.httpMaxHeadersCount + H2_PSEUDO_SLACK,
    settings: {
      enableConnectProtocol: true,
      maxHeaderListSize: c.httpMaxHeaderSize,
      maxConcurrentStreams: c.http2MaxConcurrentStreams
    }
  })
  /** HTTP/2 header limits Node does not enforce as configured: 431, never a silently shortened list. */
  const h2HeadersOver = (raw: ReadonlyArray<string>): boolean => {
    let pseudo = 0
    for (let i = 0; i < raw.length; i += 2) if (raw[i].charCodeAt(0) === 58 /* : */) pseudo++
    return (raw.length >> 1) - pseudo > limits.maxHeadersCount || headerListSize(raw) > limits.maxHeaderSize
  }
  const runH2 = (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse, expectContinue: boolean) => {
    // A stream the client reset meanwhile (rapid reset: HEADERS and RST_STREAM in one read) costs nothing more.
    if (req.stream.closed || req.stream.destroyed) return
    onRequest(req, res, expectContinue)
  }
  const h2Request = (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse, expectContinue: boolean) => {
    const stream = req.stream
    stream.setTimeout(limits.idleMs)
    stream.on("timeout", onH2StreamTimeout)
    if (h2HeadersOver(req.rawHeaders)) return sendError(res as ClientResponse, "headerTooLarge")
    // Dispatch after the rest of this read is processed, so that a reset in the same read is seen first.
    setImmediate(runH2, req, res, expectContinue)
  }
  h2.on("request", (req, res) => h2Request(req, res, false))
  h2.on("checkContinue", (req, res) => h2Request(req, res, true))
  // Node's HTTP/2 compatibility layer emits CONNECT (and RFC 8441 extended CONNECT) as 'connect', never as
  // 'request'; without a listener it answers 405 itself.
  const { h2Connect } = extra
  const runH2Connect = (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => {
    if (req.stream.closed || req.stream.destroyed) return
    if (h2Connect) return h2Connect(req, res)
    res.writeHead(405)
    res.end()
  }
  h2.on("connect", (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => {
    if (h2HeadersOver(req.rawHeaders)) return sendError(res as ClientResponse, "headerTooLarge")
    setImmediate(runH2Connect, req, res)
  })
  h2.on("sessionError", () => undefined)
  const sessions = new Set<http2.ServerHttp2Session>()
  h2.on("session", (s: http2.ServerHttp2Session) => {
    sessions.add(s)
    s.on("close", () => sessions.delete(s))
    s.on("error", () => undefined)
    // Before its first stream a session is a connection that has not sent a request yet: `client_header`.
    s.setTimeout(limits.clientHeaderMs, onH2SessionTimeout)
    let streams = 0
    let resets = 0
    // A stream closed with an error code before any response head: reset by the client (or cut off by us).
    const onStreamClose = function (this: http2.ServerHttp2Stream) {
      if (this.rstCode === NGHTTP2_NO_ERROR || this.rstCode === undefined || this.headersSent) return
      resets++
      if (streams >= RESET_MIN_STREAMS && resets * 2 > streams && !s.destroyed) {
        logger.log("warn", "HTTP/2 session closed: too many streams reset before a response", {
          client: s.socket?.remoteAddress,
          streams,
          resets
        })
        s.destroy(new Error("rapid reset"), NGHTTP2_ENHANCE_YOUR_CALM)
      }
    }
    s.on("stream", (stream: http2.ServerHttp2Stream) => {
      if (++streams === 1) s.setTimeout(limits.idleMs)
      stream.once("close", onStreamClose)
    })
  })

  const attachH1 = (socket: net.Socket) => {
    h1.emit("connection", socket)
    dropNodeTimeoutHandler(socket)
    socket.on("timeout", onH1Timeout)
    // Before the first request: `client_header` without a byte closes it (Node's `headersTimeout` only starts
    // with the first byte of a head).
    socket.setTimeout(limits.clientHeaderMs)
  }
  const attachH2 = (socket: net.Socket) => {
    h2.emit("connection", socket)
  }

  let released = false
  const destroyAll = () => {
    h1.closeAllConnections()
    for (const s of sessions) s.destroy()
  }
  return {
    h1,
    h2,
    attachH1,
    attachH2,
    clientHeaderMs: () => limits.clientHeaderMs,
    configure: (n) => {
      limits = limitsOf(n)
      // read by Node per new connection / head
      ;(h1 as http.Server & { maxHeaderSize: number }).maxHeaderSize = n.httpMaxHeaderSize
      h1.maxHeadersCount = n.httpMaxHeadersCount + 1
      h1.headersTimeout = n.timeouts.clientHeaderMs
      h1.keepAliveTimeout = n.timeouts.clientHeaderMs
      h1.timeout = n.timeouts.idleMs
      h2.updateSettings({ maxHeaderListSize: n.httpMaxHeaderSize, maxConcurrentStreams: n.http2MaxConcurrentStreams })
      setBySymbol(h2, "options", (o) =>
        typeof o === "object" && o !== null ? { ...o, maxHeaderListPairs: n.httpMaxHeadersCount + H2_PSEUDO_SLACK } : o
      )
    },
    closeIdle: () => {
      h1.closeIdleConnections()
      for (const s of sessions) if (!s.closed) s.close()
    },
    destroyAll,
    release: () => {
      if (released) return
      released = true
      destroyAll()
      // close() stops Node's connection-check interval, which otherwise keeps both servers alive for good
      h1.close()
      h2.close()
      h1.removeAllListeners()
      h2.removeAllListeners()
    }
  }
}

/**
 * Reads a plain connection's first bytes and hands it to the HTTP/1.1 or the h2c server. A connection that has
 * not told which within `client_header` is closed; one that closes meanwhile is forgotten (its timer cleared).
 */
export const dispatchPlainConnection = (socket: net.Socket, servers: ProtocolServers): void => {
  let buf: Buffer = Buffer.alloc(0)
  const stop = () => {
    clearTimeout(timer)
    socket.removeListener("data", onData)
    socket.removeListener("error", onError)
    socket.removeListener("close", stop)
  }
  const decide = (h2: boolean) => {
    stop()
    socket.pause()
    if (buf.length > 0) socket.unshift(buf)
    if (h2) servers.attachH2(socket)
    else {
      servers.attachH1(socket)
      socket.resume()
    }
  }
  const onData = (chunk: Buffer) => {
    buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk])
    const n = Math.min(buf.length, H2_PREFACE.length)
    if (buf.subarray(0, n).compare(H2_PREFACE.subarray(0, n)) !== 0) return decide(false)
    if (buf.length >= H2_PREFACE.length) decide(true)
  }
  const onError = () => socket.destroy()
  const timer = setTimeout(() => {
    stop()
    socket.destroy()
  }, servers.clientHeaderMs())
  socket.on("data", onData)
  socket.on("error", onError)
  socket.once("close", stop)
  socket.resume()
}

/** TLS options for the listener: ALPN h2 + http/1.1, the configured certificate chain and key. */
export const tlsOptions = (l: TlsListenerConfig, c: ConfigSnapshot): tls.TlsOptions => ({
  cert: l.cert,
  key: Redacted.value(l.key),
  ALPNProtocols: ["h2", "http/1.1"],
  handshakeTimeout: c.timeouts.tlsHandshakeMs,
  allowHalfOpen: false
})

/** Applies a new `tls_handshake` to a TLS server's next handshakes (Node reads it per connection, no setter). */
export const setHandshakeTimeout = (server: tls.Server, ms: number): void =>
  setBySymbol(server, "handshake-timeout", () => ms)

/** Hands a TLS connection to the server its ALPN protocol names. */
export const dispatchTlsConnection = (socket: tls.TLSSocket, servers: ProtocolServers): void => {
  if (socket.alpnProtocol === "h2") servers.attachH2(socket)
  else servers.attachH1(socket)
}
