// A WebSocket handshake through the proxy (SPEC §5) as an exchange (src/proxy/exchange.ts): routed, admitted,
// selected and credentialed like an HTTP request, then dispatched as an HTTP/1.1 upgrade on a fresh upstream
// socket (Node parses the answer: `http.request` and its 'upgrade' event). A connect failure fails over by the
// shared policy; the outcome (101, a refusal to relay, or an error) goes to the upgrade path's `Sink`. Once relayed,
// the bytes (and an OpenAI Realtime session's usage) are counted for the log phase (relayTap.ts).
import * as http from "node:http"
import type * as net from "node:net"
import type { Duplex } from "node:stream"
import * as Redacted from "effect/Redacted"
import { clientKeyFor, splitPath } from "../domain/credentials.js"
import type { WsUsageTap } from "../domain/usage/websocket.js"
import { classifyUpstreamError, type ErrorKind, type ProxyError, reasonOf, statusOf } from "../errors.js"
import type { ProxyContext } from "./context.js"
import { Exchange, outcomeOf } from "./exchange.js"
import { coolDown, sendCoolingRefusal } from "./phases/retry.js"
import { route } from "./phases/route.js"
import { upstreamHeaders, upstreamPath } from "./phases/upstreamRequest.js"
import { countRelay, isRealtime, realtimeQueryModel, realtimeTap, settleRealtime } from "./relayTap.js"
import { type HeldAnswer, KEEP_LIMIT, relayHeld } from "./responseGate.js"
import { codedError, openUpstreamSocket } from "./socket.js"
import {
  acceptFor,
  DROP_PROTOCOL,
  DROP_PROTOCOL_KEY,
  type Handshake,
  KEY_PROTOCOL,
  offeredProtocols,
  type Sink
} from "./wsHandshake.js"

export class WsExchange extends Exchange {
  /** Upgraded: counted as an open WebSocket until the exchange ends. */
  private open = false
  private cancelled = false
  private settled = false
  private upReq: http.ClientRequest | undefined = undefined
  private upSocket: net.Socket | undefined = undefined
  private protocols: Array<string> = []
  /** The subprotocol token that carries the browser-form key, if any. */
  private keyed: string | undefined = undefined
  /** Whether the subprotocol carried "the key" (openai reads it only when no Authorization header has one). */
  private keyFromProtocol = false
  /** The upstream's `Sec-WebSocket-Extensions` answer (permessage-deflate: the Realtime tap inflates). */
  private extensions: string | Array<string> | undefined = undefined
  /** An OpenAI Realtime session's usage tap: the log phase waits for its result (see `end`). */
  private tap: WsUsageTap | undefined = undefined
  private ending = false

  constructor(
    ctx: ProxyContext,
    private readonly hs: Handshake,
    private readonly sink: Sink
  ) {
    super(ctx, "ws", ctx.requestIds.fromHeader(hs.info.requestId))
  }

  /** Route and authenticate the handshake, then start the upstream attempt (or refuse). */
  start(): void {
    const hs = this.hs
    if (hs.info.hostCount > 1) return this.refuse("multipleHost")
    const unroutable = route(this, hs.hostValue, hs.url, hs.defaultPort)
    if (unroutable !== undefined) return this.refuse(unroutable)
    const protocols = offeredProtocols(hs.rawHeaders)
    const keyed = protocols.find((t) => t.startsWith(KEY_PROTOCOL))
    const protocolKey = keyed === undefined ? undefined : keyed.slice(KEY_PROTOCOL.length) || undefined
    const { query } = splitPath(this.url)
    this.protocols = protocols
    this.keyed = keyed
    this.keyFromProtocol = protocolKey !== undefined && clientKeyFor("openai", hs.info, query) === undefined
    this.clientKey = (type) => clientKeyFor(type, hs.info, query, protocolKey)
    this.begin()
  }

  /**
   * The relay began (the caller wrote the 101 and the handshakes' extra bytes and bridged the sockets): count the
   * bytes, and tap an OpenAI Realtime session's server events — only when something reads them at the end.
   */
  relayed(client: Duplex, upstream: Duplex, clientHead: Buffer, upstreamHead: Buffer): void {
    if (this.ctx.onEnd === undefined) return
    if (!isRealtime(this.identity!.provider.type, this.path)) {
      countRelay(this, client, upstream, clientHead, upstreamHead)
      return
    }
    this.model = realtimeQueryModel(this.url)
    this.tap = realtimeTap(this.extensions)
    countRelay(this, client, upstream, clientHead, upstreamHead, this.tap)
  }

  /** The log phase, once the Realtime tap has decoded what it holds (a few inflations at most). */
  override end(): void {
    if (this.ending) return
    this.ending = true
    const tap = this.tap
    if (tap === undefined) return super.end()
    void settleRealtime(this, tap).then(() => super.end())
  }

  protected override release(): void {
    if (this.open) this.ctx.gauges?.websocketClosed()
  }

  /** The client went away before the handshake was done. */
  cancel(): void {
    if (this.settled) return
    this.cancelled = true
    this.outcome = "client_abort"
    this.upReq?.destroy()
    this.upSocket?.destroy()
  }

  private settle(): boolean {
    if (this.settled || this.cancelled) return false
    this.settled = true
    return true
  }

  refuse(e: ErrorKind | ProxyError): void {
    if (!this.settle()) return
    const kind = reasonOf(e)
    this.status = statusOf(kind)
    this.outcome = outcomeOf(kind)
    const refusal = this.retryState?.refusal
    if (kind === "coolingDown" && refusal !== undefined)
      return this.sink.reply((out) => sendCoolingRefusal(out, refusal, this.requestId))
    this.sink.fail(e)
  }

  /** The last attempt failed without an answer: an earlier refused handshake that was kept, else `e` (SPEC §11). */
  override failAttempt(e: ErrorKind | ProxyError): void {
    const kept = this.retryState?.lastAnswer
    if (kept === undefined) return this.refuse(e)
    if (!this.settle()) return
    this.status = kept.status
    this.sink.reply((out) => relayHeld(out, "stream" in out, kept, this.requestId))
  }

  /**
   * A refused handshake: cool its key down on a rate limit; true when another identity's attempt was started. The
   * refusal is kept as the last answer once read to its end (at most KEEP_LIMIT bytes; a larger one is not kept),
   * relayed if every later attempt fails without one (SPEC §11). The next attempt does not wait for that read: a
   * handshake's upstream socket has no body timeout, so a refusal whose body stalls must hold nothing up. A refusal
   * still unread when the last attempt fails is not relayed (then the proxy's 502/504, as before), and one read
   * after a later attempt was answered is not kept over that newer answer.
   */
  private retryRefused(res: http.IncomingMessage): boolean {
    const status = res.statusCode ?? 502
    coolDown(this, status, res.rawHeaders)
    if (!this.router.snapshot.retry.onStatus.includes(status) || !this.retry("status", status, true)) return false
    const next = this.attempts + 1
    const answer: HeldAnswer = {
      status,
      statusText: res.statusMessage ?? "",
      raw: res.rawHeaders,
      chunks: [],
      protocol: "http/1.1"
    }
    let bytes = 0
    res.on("data", (c: Buffer) => {
      bytes += c.length
      if (bytes <= KEEP_LIMIT) answer.chunks.push(c)
      else res.destroy()
    })
    res.on("error", () => undefined)
    res.once("end", () => {
      res.socket?.destroy()
      // the attempt after this one is still the last (no newer answer can have been kept)
      if (bytes <= KEEP_LIMIT && this.attempts <= next) this.retrying().lastAnswer = answer
    })
    return true
  }

  dispatch(): void {
    if (this.cancelled) return
    const hs = this.hs
    const identity = this.identity!
    const p = identity.provider
    const key = this.key
    const strip = p.type !== "forward"
    // The browser form is swapped for the provider key in the same place; otherwise the usual header.
    const inProtocol = strip && p.type === "openai" && this.keyFromProtocol
    const headers = upstreamHeaders(
      this,
      hs.rawHeaders,
      hs.info,
      hs.freshKey ? DROP_PROTOCOL_KEY : DROP_PROTOCOL,
      !inProtocol
    )
    let sent = this.protocols
    if (strip) {
      sent = []
      for (const t of this.protocols) {
        if (!t.startsWith(KEY_PROTOCOL)) sent.push(t)
        else if (inProtocol && key !== undefined && t === this.keyed) sent.push(KEY_PROTOCOL + Redacted.value(key))
      }
    }
    if (sent.length > 0) headers.push("Sec-WebSocket-Protocol", sent.join(", "))
    if (hs.freshKey) headers.push("Sec-WebSocket-Key", hs.wsKey, "Sec-WebSocket-Version", "13")
    headers.push("Connection", "Upgrade", "Upgrade", "websocket")

    const timeouts = this.router.snapshot.timeouts
    const socket = openUpstreamSocket(p, timeouts, ["http/1.1"])
    let req: http.ClientRequest
    try {
      req = http.request({
        method: "GET",
        path: upstreamPath(this),
        headers,
        setHost: false,
        createConnection: () => socket
      })
    } catch (err) {
      // a header Node refuses (e.g. a key with a character no header may carry): never a crash
      socket.destroy()
      this.ctx.log.log("warn", "upstream WebSocket request refused", {
        request: this.requestId,
        provider: p.index,
        error: (err as Error).name
      })
      return this.refuse("upstreamAuth")
    }
    this.upReq = req
    this.upSocket = socket
    let headTimer: NodeJS.Timeout | undefined
    /** The connection opened: from here the handshake may have reached the upstream, so it is never replayed. */
    let opened = false
    socket.once(p.tls ? "secureConnect" : "connect", () => {
      opened = true
      headTimer = setTimeout(
        () => req.destroy(codedError("UND_ERR_HEADERS_TIMEOUT", "upstream handshake timed out")),
        timeouts.responseHeaderMs
      )
    })
    /** An answer came (an error after it is that answer's, not the attempt's). */
    let answered = false
    const done = () => clearTimeout(headTimer)
    socket.once("close", done)

    req.on("upgrade", (res: http.IncomingMessage, upSocket: net.Socket, head: Buffer) => {
      done()
      this.ttfbMs = this.sinceStart()
      this.ctx.health.connected(identity.providerId)
      if (!this.settle()) {
        upSocket.destroy()
        return
      }
      if (res.headers["sec-websocket-accept"] !== acceptFor(hs.wsKey)) {
        this.ctx.log.log("warn", "upstream WebSocket handshake invalid", { request: this.requestId, provider: p.index })
        upSocket.destroy()
        this.status = statusOf("badGateway")
        this.outcome = "upstream_error"
        this.sink.fail("badGateway")
        return
      }
      upSocket.setTimeout(0)
      this.ctx.log.log("debug", "websocket open", { request: this.requestId, provider: p.index })
      this.status = 101
      this.extensions = res.headers["sec-websocket-extensions"]
      this.open = true
      this.ctx.gauges?.websocketOpened()
      this.sink.upgraded(res, upSocket, head, timeouts.idleMs)
    })
    req.on("response", (res: http.IncomingMessage) => {
      done()
      this.ttfbMs = this.sinceStart()
      this.ctx.health.connected(identity.providerId)
      // SPEC §11: a refused handshake with a retryable status goes to another identity while there is one.
      answered = true
      if (!this.settled && !this.cancelled && this.retryRefused(res)) return
      if (!this.settle()) {
        res.destroy()
        return
      }
      this.status = res.statusCode ?? 502
      this.sink.refused(res)
    })
    req.on("error", (err: Error) => {
      done()
      if (this.settled || this.cancelled || answered) return
      const c = classifyUpstreamError(err)
      this.ctx.log.log("warn", "upstream WebSocket handshake failed", {
        request: this.requestId,
        provider: p.index,
        code: c.code
      })
      // Another identity (SPEC §11): on a connect failure (nothing was sent), or a close before the answer's head
      // (a handshake has no body: nothing to replay but the head).
      if (c.connectFailure && !opened) {
        if (this.retry("connect", 0, true)) return
      } else if (c.code !== "UND_ERR_HEADERS_TIMEOUT" && this.retry("reset", 0, true)) return
      this.failAttempt(c)
    })
    req.end()
  }
}
