// Node servers behind one listening port. The TLS port picks HTTP/2 or HTTP/1.1 by ALPN; the plain port tells
// HTTP/1.1 from h2c prior knowledge by the first bytes. Either way the socket is handed to an `http.Server`
// (HTTP/1.1) or an `http2.Server`, so all HTTP parsing stays in Node.
import * as http from "node:http"
import * as http2 from "node:http2"
import type * as net from "node:net"
import type * as tls from "node:tls"
import * as Redacted from "effect/Redacted"
import type { ConfigSnapshot, TlsListenerConfig } from "../config/types.js"

const H2_PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
/** How long the plain port waits for a new connection's first bytes before treating it as HTTP/1.1 anyway. */
const PREFACE_TIMEOUT_MS = 10_000

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
  /** Applies the settings of a new snapshot (time-outs, header limits) to new connections. */
  readonly configure: (c: ConfigSnapshot) => void
  /** Closes idle HTTP/1.1 keep-alive connections and sends GOAWAY on HTTP/2 sessions. */
  readonly closeIdle: () => void
  /** Destroys every connection at once (end of the grace period). */
  readonly destroyAll: () => void
}

const rejectRawRequest = (socket: net.Socket, status: number, reason: string): void => {
  if (!socket.writable) {
    socket.destroy()
    return
  }
  socket.end(`HTTP/1.1 ${status} ${reason}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`)
}

export const makeProtocolServers = (
  c: ConfigSnapshot,
  onRequest: RequestHandler,
  extra: ExtraHandlers
): ProtocolServers => {
  const h1 = http.createServer({
    maxHeaderSize: c.httpMaxHeaderSize,
    requestTimeout: 0,
    headersTimeout: c.timeouts.clientHeaderMs,
    keepAliveTimeout: Math.min(c.timeouts.idleMs, 75_000),
    connectionsCheckingInterval: Math.max(100, Math.min(1_000, c.timeouts.clientHeaderMs / 4)),
    noDelay: true
  })
  h1.on("request", (req, res) => onRequest(req, res, false))
  h1.on("checkContinue", (req, res) => onRequest(req, res, true))
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
  if (extra.upgrade) h1.on("upgrade", extra.upgrade)
  if (extra.connect) h1.on("connect", extra.connect)
  else h1.on("connect", (_req, socket: net.Socket) => rejectRawRequest(socket, 405, "Method Not Allowed"))
  // Servers fed through emit("connection") start connection tracking (header time-outs) only on "listening".
  h1.emit("listening")

  const h2 = http2.createServer({
    maxSessionMemory: 64,
    settings: {
      enableConnectProtocol: true,
      maxHeaderListSize: c.httpMaxHeaderSize,
      maxConcurrentStreams: 256
    }
  })
  h2.on("request", (req, res) => onRequest(req, res, false))
  h2.on("checkContinue", (req, res) => onRequest(req, res, true))
  // Node's HTTP/2 compatibility layer emits CONNECT (and RFC 8441 extended CONNECT) as 'connect', never as
  // 'request'; without a listener it answers 405 itself.
  h2.on("connect", (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => {
    if (extra.h2Connect) return extra.h2Connect(req, res)
    res.writeHead(405)
    res.end()
  })
  h2.on("sessionError", () => undefined)
  const sessions = new Set<http2.ServerHttp2Session>()
  h2.on("session", (s: http2.ServerHttp2Session) => {
    sessions.add(s)
    s.on("close", () => sessions.delete(s))
    s.on("error", () => undefined)
  })

  return {
    h1,
    h2,
    configure: (n) => {
      h1.maxHeadersCount = 2000
      h1.headersTimeout = n.timeouts.clientHeaderMs
      h1.keepAliveTimeout = Math.min(n.timeouts.idleMs, 75_000)
    },
    closeIdle: () => {
      h1.closeIdleConnections()
      for (const s of sessions) if (!s.closed) s.close()
    },
    destroyAll: () => {
      h1.closeAllConnections()
      for (const s of sessions) s.destroy()
    }
  }
}

/** Reads a plain connection's first bytes and hands it to the HTTP/1.1 or the h2c server. */
export const dispatchPlainConnection = (socket: net.Socket, servers: ProtocolServers): void => {
  let buf: Buffer = Buffer.alloc(0)
  const decide = (h2: boolean) => {
    clearTimeout(timer)
    socket.removeListener("data", onData)
    socket.removeListener("error", onError)
    socket.pause()
    if (buf.length > 0) socket.unshift(buf)
    if (h2) servers.h2.emit("connection", socket)
    else {
      servers.h1.emit("connection", socket)
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
  const timer = setTimeout(() => decide(false), PREFACE_TIMEOUT_MS)
  socket.on("data", onData)
  socket.on("error", onError)
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

/** Hands a TLS connection to the server its ALPN protocol names. */
export const dispatchTlsConnection = (socket: tls.TLSSocket, servers: ProtocolServers): void => {
  if (socket.alpnProtocol === "h2") servers.h2.emit("connection", socket)
  else servers.h1.emit("connection", socket)
}
