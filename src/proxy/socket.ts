// Sockets that left HTTP (CONNECT tunnels and WebSockets): opening the upstream socket (TCP, or TLS with SNI and
// the provider's extra CA) under the connect time-out, answering on a socket the HTTP/1.1 parser has let go of,
// and copying bytes both ways with backpressure and the idle time-out. A bridged pair lives inside the client
// connection's supervised fiber (src/services/Listener.ts): when the client socket is destroyed (close, shutdown)
// the upstream socket is destroyed with it, and the other way round.
import * as http from "node:http"
import * as net from "node:net"
import type { Duplex } from "node:stream"
import * as tls from "node:tls"
import type { ProviderConfig, Timeouts } from "../config/types.js"
import { upstreamTls } from "../domain/providers.js"

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
 * 'close' is emitted on it once the socket has closed, as on any response.
 */
export const responseOnSocket = (req: http.IncomingMessage, socket: net.Socket): http.ServerResponse => {
  const res = new http.ServerResponse(req)
  res.shouldKeepAlive = false
  res.sendDate = false
  res.assignSocket(socket)
  res.once("finish", () => {
    res.detachSocket(socket)
    socket.destroySoon()
    // Detached, the response would never emit 'close' (Node emits it from the socket it holds): the exchange's
    // log phase waits for it.
    socket.once("close", () => res.emit("close"))
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
