// Byte tunnels: HTTP CONNECT (SPEC §4, HTTP/1.1 only) and the pieces WebSocket shares with it — opening the
// upstream socket (TCP, or TLS with SNI and the provider's extra CA) under the connect time-out, answering on a
// socket the HTTP/1.1 parser has let go of, and copying bytes both ways with backpressure and the idle time-out.
// A tunnel lives inside the client connection's supervised fiber (src/services/Listener.ts): when the client
// socket is destroyed (close, shutdown) the upstream socket is destroyed with it, and the other way round.
import * as http from "node:http"
import * as net from "node:net"
import type { Duplex } from "node:stream"
import * as tls from "node:tls"
import type { ProviderConfig, Timeouts } from "../config/types.js"
import { upstreamTls } from "../domain/providers.js"
import type { Identity } from "../domain/router.js"
import type { ProxyContext } from "./context.js"
import { parseHost } from "./forward.js"
import { scanRequestHeaders } from "./headers.js"
import { classifyUpstreamError, connectPortMismatch, type ErrorKind, sendError } from "./respond.js"

/** Upstream attempts for one tunnel or WebSocket: a provider that cannot be reached fails over, as on HTTP. */
export const MAX_TUNNEL_ATTEMPTS = 3

export const noop = (): void => undefined

/** An error carrying a `code` that `classifyUpstreamError` maps (time-outs → 504). */
export const codedError = (code: string, message: string): Error => Object.assign(new Error(message), { code })

/**
 * Opens a socket to the provider's upstream: TLS (SNI unless the endpoint is an IP, Node's roots plus `ca`) when
 * the provider has `tls: true`, else TCP. The socket is destroyed with a coded error when it is not connected
 * within the connect time-out (plus the TLS handshake time-out for TLS). `alpn` is offered on TLS when given.
 */
export const openUpstreamSocket = (p: ProviderConfig, t: Timeouts, alpn?: ReadonlyArray<string>): net.Socket => {
  const host = p.endpointHost
  const port = p.endpointPort
  let socket: net.Socket
  if (p.tls) {
    socket = tls.connect({
      host,
      port,
      ...upstreamTls(p),
      ...(alpn !== undefined ? { ALPNProtocols: [...alpn] } : {})
    })
    socket.setNoDelay(true)
  } else {
    socket = net.connect({ host, port, noDelay: true })
  }
  const limit = p.tls ? t.connectMs + t.tlsHandshakeMs : t.connectMs
  const timer = setTimeout(
    () => socket.destroy(codedError("UND_ERR_CONNECT_TIMEOUT", "upstream connect timed out")),
    limit
  )
  socket.once(p.tls ? "secureConnect" : "connect", () => clearTimeout(timer))
  socket.once("close", () => clearTimeout(timer))
  return socket
}

/**
 * An `http.ServerResponse` on a socket the HTTP/1.1 parser handed over ('upgrade' / 'connect'), so the proxy's
 * own answers are framed by Node like every other response. The connection closes after it: the parser is gone.
 */
export const responseOnSocket = (req: http.IncomingMessage, socket: net.Socket): http.ServerResponse => {
  const res = new http.ServerResponse(req)
  res.shouldKeepAlive = false
  res.sendDate = false
  res.assignSocket(socket)
  res.once("finish", () => {
    res.detachSocket(socket)
    socket.destroySoon()
  })
  return res
}

/** How a bridged side is closed when the other side has closed (cleanly or not). */
export type CloseSide = (hadError: boolean) => void

export const closeSocket =
  (socket: net.Socket): CloseSide =>
  (hadError) => {
    if (hadError) socket.destroy()
    else socket.destroySoon()
  }

/**
 * Copies bytes both ways with backpressure until either side closes, then closes the other (after flushing
 * what is already queued when the close was clean). No byte in either direction for `idleMs` closes both: every
 * byte crosses the upstream socket, so its inactivity timer sees both directions.
 */
export const bridge = (client: Duplex, closeClient: CloseSide, upstream: net.Socket, idleMs: number): void => {
  client.on("error", noop)
  upstream.on("error", noop)
  let clientErrored = false
  client.once("error", () => (clientErrored = true))
  client.pipe(upstream)
  upstream.pipe(client)
  upstream.once("close", (hadError: boolean) => {
    if (!client.destroyed) closeClient(hadError)
  })
  client.once("close", () => {
    if (upstream.destroyed) return
    if (clientErrored) upstream.destroy()
    else upstream.destroySoon()
  })
  if (idleMs > 0) {
    upstream.setTimeout(idleMs, () => {
      upstream.destroy()
      closeClient(true)
    })
  }
}

/** The client's key for a CONNECT: `Proxy-Authorization`, then `Authorization` (Bearer, or Basic's password). */
export const connectClientKey = (proxyAuthorization: string | undefined, authorization: string | undefined) =>
  credentialToken(proxyAuthorization) ?? credentialToken(authorization)

const credentialToken = (value: string | undefined): string | undefined => {
  if (value === undefined) return undefined
  const space = value.indexOf(" ")
  if (space === -1) return undefined
  const scheme = value.slice(0, space).toLowerCase()
  const rest = value.slice(space + 1).trim()
  if (rest.length === 0) return undefined
  if (scheme === "bearer") return rest
  if (scheme !== "basic") return undefined
  // `curl -x http://user:KEY@proxy`: the password is the key (or the user name when there is no password).
  const decoded = Buffer.from(rest, "base64").toString("utf8")
  const colon = decoded.indexOf(":")
  const key = colon === -1 ? decoded : decoded.slice(colon + 1) || decoded.slice(0, colon)
  return key.length > 0 ? key : undefined
}

let tunnelSeq = 0

/** `CONNECT host:port` on an HTTP/1.1 listener. */
export const handleConnect = (ctx: ProxyContext, req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
  socket.on("error", noop)
  const router = ctx.router()
  const snapshot = router.snapshot
  // The first mismatching provider's port, for the 400's text.
  let providerPort = 0
  const reply = (kind: ErrorKind): void =>
    sendError(
      responseOnSocket(req, socket),
      kind,
      true,
      kind === "connectPortMismatch" ? connectPortMismatch(target?.port ?? 0, providerPort) : undefined
    )

  const target = parseHost(req.url ?? "", -1)
  if (target === undefined) return reply("badRequest")
  const info = scanRequestHeaders(req.rawHeaders)
  const key = connectClientKey(info.proxyAuthorization, info.authorization)
  const keyFor = () => key

  // SPEC §4: 404 unknown host → 401 bad key → 403 disabled → (503 none healthy) → 400 port mismatch.
  const excluded = new Set<string>()
  const select = (): Identity | ErrorKind => {
    let mismatch = false
    for (;;) {
      const r = router.route(target.name, target.port, "/", keyFor, excluded)
      if (r._tag === "NotFound") return "noProvider"
      if (r._tag === "Unauthorized") return "unauthorized"
      if (!snapshot.connectTunnelEnabled) return "connectDisabled"
      if (r._tag === "Unavailable") return mismatch ? "connectPortMismatch" : "noHealthy"
      // RFC 9110 §9.3.6: a CONNECT target is host:port (OpenProxy would take the provider's port instead).
      if (target.port === -1) return "connectNoPort"
      if (r.identity.provider.endpointPort === target.port) return r.identity
      // Another provider for the same host may have the right port: keep looking among the rest.
      excluded.add(r.identity.providerId)
      if (!mismatch) providerPort = r.identity.provider.endpointPort
      mismatch = true
    }
  }

  const id = `t${(++tunnelSeq).toString(36)}`
  let attempts = 0
  let upstream: net.Socket | undefined
  const onClientClose = () => upstream?.destroy()
  socket.once("close", onClientClose)

  const attempt = (): void => {
    const chosen = select()
    if (typeof chosen === "string") {
      socket.removeListener("close", onClientClose)
      return reply(chosen)
    }
    attempts++
    const p = chosen.provider
    const up = openUpstreamSocket(p, snapshot.timeouts)
    upstream = up
    up.once(p.tls ? "secureConnect" : "connect", () => {
      up.removeListener("error", onError)
      socket.removeListener("close", onClientClose)
      ctx.health.connected(chosen.providerId)
      if (socket.destroyed) {
        up.destroy()
        return
      }
      ctx.log.log("debug", "tunnel open", { tunnel: id, provider: p.index })
      socket.write("HTTP/1.1 200 Connection Established\r\n\r\n")
      // Bytes that came in the same packet as the CONNECT head go first; the rest is still in the socket.
      if (head.length > 0) up.write(head)
      bridge(socket, closeSocket(socket), up, snapshot.timeouts.idleMs)
    })
    // Only before the connection opened (removed on connect): no byte reached the upstream, so failing over is safe.
    const onError = (err: Error) => {
      const c = classifyUpstreamError(err)
      ctx.log.log("warn", "tunnel connect failed", { tunnel: id, provider: p.index, code: c.code })
      if (socket.destroyed) return
      if (c.connectFailure) {
        ctx.health.connectFailed(chosen.providerId)
        excluded.add(chosen.providerId)
        if (attempts < MAX_TUNNEL_ATTEMPTS) {
          const next = select()
          if (typeof next !== "string") return attempt()
        }
      }
      socket.removeListener("close", onClientClose)
      reply(c.kind)
    }
    up.once("error", onError)
  }
  attempt()
}
