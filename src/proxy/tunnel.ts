// HTTP CONNECT tunnels (SPEC §4, HTTP/1.1 only): routed by the target's host like any request (path `/`),
// authenticated by `Proxy-Authorization` or `Authorization`, the target's port checked against the provider's
// upstream port, then a plain TCP (or TLS) connection whose bytes are copied both ways (src/proxy/socket.ts).
// A tunnel is an exchange (src/proxy/exchange.ts): the same select → dispatch → fail-over → log steps as HTTP.
import type * as http from "node:http"
import type * as net from "node:net"
import { coolingRefusal } from "../domain/retry/index.js"
import {
  classifyUpstreamError,
  connectPortMismatch,
  type ErrorKind,
  type ProxyError,
  Refused,
  reasonOf,
  statusOf
} from "../errors.js"
import type { ProxyContext } from "./context.js"
import { Exchange, noteClient, outcomeOf } from "./exchange.js"
import { scanRequestHeaders } from "./headers.js"
import { parseHostInto } from "./host.js"
import { sendCoolingRefusal } from "./phases/retry.js"
import { routeOnce } from "./phases/select.js"
import { countRelay } from "./relayTap.js"
import { sendError } from "./respond.js"
import { bridge, closeSocket, noop, openUpstreamSocket, responseOnSocket } from "./socket.js"

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

const EMPTY = Buffer.alloc(0)

class TunnelExchange extends Exchange {
  /** The first mismatching provider's port, for the 400's text. */
  private providerPort = 0
  private upstream: net.Socket | undefined = undefined
  readonly onClientClose = (): void => {
    this.upstream?.destroy()
  }

  constructor(
    ctx: ProxyContext,
    private readonly req: http.IncomingMessage,
    private readonly socket: net.Socket,
    private readonly head: Buffer,
    requestId: string | undefined
  ) {
    super(ctx, "tunnel", ctx.requestIds.fromHeader(requestId))
  }

  /** SPEC §4: 404 unknown host → 401 bad key → 403 disabled → (503 none healthy) → 400 port mismatch. */
  override select(): ErrorKind | ProxyError | undefined {
    let mismatch = false
    for (;;) {
      const r = routeOnce(this)
      if (r._tag === "NotFound") return "noProvider"
      if (r._tag === "Unauthorized") return "unauthorized"
      if (!this.router.snapshot.connectTunnelEnabled) return "connectDisabled"
      if (r._tag === "Unavailable") {
        if (!mismatch) return "noHealthy"
        const detail = connectPortMismatch(this.port, this.providerPort)
        return new Refused({ reason: "connectPortMismatch", detail })
      }
      // RFC 9110 §9.3.6: a CONNECT target is host:port (OpenProxy would take the provider's port instead).
      if (this.port === -1) return "connectNoPort"
      if (r.identity.provider.endpointPort === this.port) {
        if (r._tag === "Cooling") {
          // SPEC §11: every key cooling; a tunnel carries no key, but its provider is rate limited all the same
          if (r.waitMs > this.router.snapshot.retry.maxWaitMs) {
            this.retrying().refusal = coolingRefusal(r.identity.provider.type, r.waitMs)
            return "coolingDown"
          }
          this.retrying().waitMs = r.waitMs
        }
        this.identity = r.identity
        this.keyName = r.keyName
        return undefined
      }
      // Another provider for the same host may have the right port: keep looking among the rest.
      const state = this.retrying()
      state.excluded ??= new Set()
      state.excluded.add(r.identity.providerId)
      if (!mismatch) this.providerPort = r.identity.provider.endpointPort
      mismatch = true
    }
  }

  /** A tunnel carries the client's bytes as they are: no provider credential to resolve. */
  override attempt(): void {
    if (this.mustWait) return this.wait()
    this.attempts++
    this.dispatch()
  }

  refuse(e: ErrorKind | ProxyError): void {
    const kind = reasonOf(e)
    this.status = statusOf(kind)
    this.outcome = outcomeOf(kind)
    this.socket.removeListener("close", this.onClientClose)
    const res = responseOnSocket(this.req, this.socket)
    const refusal = this.retryState?.refusal
    if (kind === "coolingDown" && refusal !== undefined) return sendCoolingRefusal(res, refusal, this.requestId)
    sendError(res, e, true, this.requestId)
  }

  dispatch(): void {
    const chosen = this.identity!
    const p = chosen.provider
    const socket = this.socket
    const up = openUpstreamSocket(p, this.router.snapshot.timeouts)
    this.upstream = up
    up.once(p.tls ? "secureConnect" : "connect", () => {
      up.removeListener("error", onError)
      socket.removeListener("close", this.onClientClose)
      this.ctx.health.connected(chosen.providerId)
      if (socket.destroyed) {
        up.destroy()
        return
      }
      this.ctx.log.log("debug", "tunnel open", { request: this.requestId, provider: p.index })
      this.status = 200
      // Exactly OpenProxy's bytes (clients and tests compare the line): no x-request-id on the tunnel's 200.
      socket.write("HTTP/1.1 200 Connection Established\r\n\r\n")
      // Bytes that came in the same packet as the CONNECT head go first; the rest is still in the socket.
      if (this.head.length > 0) up.write(this.head)
      bridge(socket, closeSocket(socket), up, this.router.snapshot.timeouts.idleMs)
      // bytes_in / bytes_out for the log phase, only when something reads them (relayTap.ts)
      if (this.ctx.onEnd !== undefined) countRelay(this, socket, up, this.head, EMPTY)
    })
    // Only before the connection opened (removed on connect): no byte reached the upstream, so failing over is safe.
    const onError = (err: Error) => {
      const c = classifyUpstreamError(err)
      this.ctx.log.log("warn", "tunnel connect failed", { request: this.requestId, provider: p.index, code: c.code })
      if (socket.destroyed) return
      if (c.connectFailure && this.retry("connect", 0, true)) return
      this.refuse(c)
    }
    up.once("error", onError)
  }
}

/** `CONNECT host:port` on an HTTP/1.1 listener. */
export const handleConnect = (ctx: ProxyContext, req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
  socket.on("error", noop)
  const info = scanRequestHeaders(req.rawHeaders)
  const ex = new TunnelExchange(ctx, req, socket, head, info.requestId)
  socket.once("close", () => ex.end())
  noteClient(ex, socket)
  ex.method = "CONNECT"
  if (!parseHostInto(ex, req.url ?? "", -1)) return ex.refuse("badRequest")
  const key = connectClientKey(info.proxyAuthorization, info.authorization)
  ex.clientKey = () => key
  socket.once("close", ex.onClientClose)
  // http.Server sockets allow half-open: a client leaving before the tunnel opens only ends its side (no 'close').
  // Close it, so the exchange ends now (slot released, no upstream connection for it after a `max_wait` wait).
  socket.once("end", () => {
    if (ex.status === 0) socket.destroy()
  })
  ex.begin()
}
