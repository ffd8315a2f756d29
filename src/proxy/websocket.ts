// WebSocket through the proxy (SPEC §5): HTTP/1.1 `Upgrade: websocket` and HTTP/2 extended CONNECT (RFC 8441),
// both bridged to an HTTP/1.1 upgrade on the upstream. Routing and the credential swap are the HTTP path's
// (SPEC §3, §4); Node parses the upstream's handshake answer (`http.request` and its 'upgrade' event). After the
// handshake the proxy copies bytes both ways and never re-frames a message.
import { createHash, randomBytes } from "node:crypto"
import * as http from "node:http"
import * as http2 from "node:http2"
import type * as net from "node:net"
import type * as tls from "node:tls"
import * as Redacted from "effect/Redacted"
import {
  ANTHROPIC_BETA_DROP,
  clientKeyFor,
  providerCredentialHeaders,
  splitPath,
  stripKeyParam
} from "../domain/credentials.js"
import type { Identity } from "../domain/router.js"
import type { ProxyContext } from "./context.js"
import { handleRequest, parseHost } from "./forward.js"
import { buildUpstreamHeaders, type RequestHeadInfo, responseHeadersFromRaw, scanRequestHeaders } from "./headers.js"
import { type ClientResponse, classifyUpstreamError, type ErrorKind, sendError } from "./respond.js"
import {
  bridge,
  closeSocket,
  codedError,
  MAX_TUNNEL_ATTEMPTS,
  noop,
  openUpstreamSocket,
  responseOnSocket
} from "./tunnel.js"

const WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
/** The browser form of an OpenAI key: `Sec-WebSocket-Protocol: realtime, openai-insecure-api-key.K`. */
const KEY_PROTOCOL = "openai-insecure-api-key."

/** `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key` (RFC 6455 §4.2.2). */
export const acceptFor = (key: string): string =>
  createHash("sha1")
    .update(key + WS_GUID)
    .digest("base64")

/** The client's handshake, whichever protocol it came over. */
interface Handshake {
  readonly rawHeaders: ReadonlyArray<string>
  readonly info: RequestHeadInfo
  readonly hostValue: string | undefined
  readonly url: string
  readonly defaultPort: number
  /** The `Sec-WebSocket-Key` sent upstream: the client's own (HTTP/1.1) or a fresh one (HTTP/2). */
  readonly wsKey: string
  /** HTTP/2: the key and version are the proxy's, the client's `sec-websocket-key`/`-version` are dropped. */
  readonly freshKey: boolean
}

/** Where the outcome of the upstream handshake goes. */
interface Sink {
  readonly fail: (kind: ErrorKind) => void
  /** A final answer other than 101: relayed with its status, headers and body. */
  readonly refused: (res: http.IncomingMessage) => void
  /** 101 from the upstream, `Sec-WebSocket-Accept` checked; `idleMs` is from the snapshot the handshake began on. */
  readonly upgraded: (res: http.IncomingMessage, socket: net.Socket, head: Buffer, idleMs: number) => void
}

/** Subprotocol tokens across every `Sec-WebSocket-Protocol` header, in order. */
const offeredProtocols = (raw: ReadonlyArray<string>): Array<string> => {
  const out: Array<string> = []
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i].length !== 22 || raw[i].toLowerCase() !== "sec-websocket-protocol") continue
    for (const t of raw[i + 1].split(",")) {
      const token = t.trim()
      if (token.length > 0) out.push(token)
    }
  }
  return out
}

const DROP_PROTOCOL: ReadonlySet<string> = new Set(["sec-websocket-protocol"])
const DROP_PROTOCOL_KEY: ReadonlySet<string> = new Set([
  "sec-websocket-protocol",
  "sec-websocket-key",
  "sec-websocket-version"
])

const union = (a: ReadonlySet<string>, b: ReadonlySet<string> | undefined): ReadonlySet<string> =>
  b === undefined ? a : new Set([...a, ...b])

let wsSeq = 0

/**
 * Routes and authenticates the handshake, then opens the upstream upgrade (failing over to another provider when
 * one cannot be reached). Returns a canceller for when the client goes away before the handshake is done.
 */
const startWebSocket = (ctx: ProxyContext, hs: Handshake, sink: Sink): (() => void) => {
  const router = ctx.router()
  const snapshot = router.snapshot
  if (hs.info.hostCount > 1) {
    sink.fail("multipleHost")
    return noop
  }
  if (hs.hostValue === undefined || hs.hostValue.length === 0) {
    sink.fail("missingHost")
    return noop
  }
  const host = parseHost(hs.hostValue, hs.defaultPort)
  if (host === undefined) {
    sink.fail("badRequest")
    return noop
  }
  let url = hs.url
  if (url.charCodeAt(0) !== 47 /* / */) {
    const m = /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i.exec(url)
    if (m === null) {
      sink.fail("badRequest")
      return noop
    }
    url = url.slice(m[0].length) || "/"
    if (url.charCodeAt(0) === 63 /* ? */) url = "/" + url
  }

  const protocols = offeredProtocols(hs.rawHeaders)
  const keyed = protocols.find((t) => t.startsWith(KEY_PROTOCOL))
  const protocolKey = keyed === undefined ? undefined : keyed.slice(KEY_PROTOCOL.length) || undefined
  const { query } = splitPath(url)
  // openai reads the subprotocol form last: it is "the key" only when no Authorization header carried one.
  const keyFromProtocol = protocolKey !== undefined && clientKeyFor("openai", hs.info, query) === undefined
  const keyFor = (type: Parameters<typeof clientKeyFor>[0]) => clientKeyFor(type, hs.info, query, protocolKey)

  const first = router.route(host.name, host.port, url, keyFor)
  switch (first._tag) {
    case "NotFound":
      sink.fail("noProvider")
      return noop
    case "Unauthorized":
      sink.fail("unauthorized")
      return noop
    case "Unavailable":
      sink.fail("noHealthy")
      return noop
  }

  const id = `w${(++wsSeq).toString(36)}`
  let cancelled = false
  let settled = false
  let current: { req: http.ClientRequest; socket: net.Socket } | undefined
  let attempts = 0
  const excluded = new Set<string>()

  const settle = (): boolean => {
    if (settled || cancelled) return false
    settled = true
    return true
  }

  const attempt = (identity: Identity, path: string): void => {
    attempts++
    const source = identity.key?.source
    if (source === undefined) return dispatch(identity, path, undefined)
    const resolved = ctx.keys.resolve(source, identity.provider.apiKeyCacheTtlMs)
    if (!("then" in resolved)) return dispatch(identity, path, resolved)
    resolved.then(
      (key) => dispatch(identity, path, key),
      (err: Error) => {
        ctx.log.log("warn", "api_key command failed", {
          ws: id,
          provider: identity.provider.index,
          reason: err.message
        })
        if (settle()) sink.fail("upstreamAuth")
      }
    )
  }

  const dispatch = (identity: Identity, routedPath: string, key: Redacted.Redacted<string> | undefined): void => {
    if (cancelled) return
    const p = identity.provider
    const strip = p.type !== "forward"
    const fromCommand = identity.key?.source._tag === "Command"
    // The browser form is swapped for the provider key in the same place; otherwise the usual header.
    const inProtocol = strip && p.type === "openai" && keyFromProtocol
    const extra = inProtocol ? [] : providerCredentialHeaders(p.type, key, fromCommand, hs.info)
    const drop = union(
      hs.freshKey ? DROP_PROTOCOL_KEY : DROP_PROTOCOL,
      p.type === "anthropic" && fromCommand ? ANTHROPIC_BETA_DROP : undefined
    )
    const headers = buildUpstreamHeaders(hs.rawHeaders, hs.info, strip, p.upstreamHostHeader, extra, drop)
    let sent = protocols
    if (strip) {
      sent = []
      for (const t of protocols) {
        if (!t.startsWith(KEY_PROTOCOL)) sent.push(t)
        else if (inProtocol && key !== undefined && t === keyed) sent.push(KEY_PROTOCOL + Redacted.value(key))
      }
    }
    if (sent.length > 0) headers.push("Sec-WebSocket-Protocol", sent.join(", "))
    if (hs.freshKey) headers.push("Sec-WebSocket-Key", hs.wsKey, "Sec-WebSocket-Version", "13")
    headers.push("Connection", "Upgrade", "Upgrade", "websocket")

    let path = routedPath
    if (strip) {
      const split = splitPath(path)
      const q = stripKeyParam(split.query)
      path = q === undefined ? split.path : `${split.path}?${q}`
    }

    const socket = openUpstreamSocket(p, snapshot.timeouts, ["http/1.1"])
    let req: http.ClientRequest
    try {
      req = http.request({
        method: "GET",
        path,
        headers,
        setHost: false,
        createConnection: () => socket
      })
    } catch (err) {
      // a header Node refuses (e.g. a key with a character no header may carry): never a crash
      socket.destroy()
      ctx.log.log("warn", "upstream WebSocket request refused", {
        ws: id,
        provider: p.index,
        error: (err as Error).name
      })
      if (settle()) sink.fail("upstreamAuth")
      return
    }
    current = { req, socket }
    let headTimer: NodeJS.Timeout | undefined
    /** The connection opened: from here the handshake may have reached the upstream, so it is never replayed. */
    let opened = false
    socket.once(p.tls ? "secureConnect" : "connect", () => {
      opened = true
      headTimer = setTimeout(
        () => req.destroy(codedError("UND_ERR_HEADERS_TIMEOUT", "upstream handshake timed out")),
        snapshot.timeouts.responseHeaderMs
      )
    })
    const done = () => clearTimeout(headTimer)
    socket.once("close", done)

    req.on("upgrade", (res: http.IncomingMessage, upSocket: net.Socket, head: Buffer) => {
      done()
      ctx.health.connected(identity.providerId)
      if (!settle()) {
        upSocket.destroy()
        return
      }
      if (res.headers["sec-websocket-accept"] !== acceptFor(hs.wsKey)) {
        ctx.log.log("warn", "upstream WebSocket handshake invalid", { ws: id, provider: p.index })
        upSocket.destroy()
        sink.fail("badGateway")
        return
      }
      upSocket.setTimeout(0)
      ctx.log.log("debug", "websocket open", { ws: id, provider: p.index })
      sink.upgraded(res, upSocket, head, snapshot.timeouts.idleMs)
    })
    req.on("response", (res: http.IncomingMessage) => {
      done()
      ctx.health.connected(identity.providerId)
      if (!settle()) {
        res.destroy()
        return
      }
      sink.refused(res)
    })
    req.on("error", (err: Error) => {
      done()
      if (settled || cancelled) return
      const c = classifyUpstreamError(err)
      ctx.log.log("warn", "upstream WebSocket handshake failed", { ws: id, provider: p.index, code: c.code })
      // Fail-over only when the connection never opened (nothing was sent): the same rule as HTTP requests.
      if (c.connectFailure && !opened) {
        ctx.health.connectFailed(identity.providerId)
        excluded.add(identity.providerId)
        if (attempts < MAX_TUNNEL_ATTEMPTS) {
          const next = router.route(host.name, host.port, url, keyFor, excluded)
          if (next._tag === "Ok") return attempt(next.identity, next.path)
        }
      }
      settled = true
      sink.fail(c.kind)
    })
    req.end()
  }

  attempt(first.identity, first.path)
  return () => {
    if (settled) return
    cancelled = true
    current?.req.destroy()
    current?.socket.destroy()
  }
}

const isWebSocketUpgrade = (req: http.IncomingMessage): boolean => {
  const upgrade = req.headers.upgrade
  return (
    req.method === "GET" &&
    upgrade !== undefined &&
    upgrade
      .split(",")
      .map((t) => t.trim().toLowerCase())
      .includes("websocket")
  )
}

/** Relays a refused upgrade: the upstream's status, headers (hop-by-hop ones dropped) and body. */
const relayRefusal = (res: http.IncomingMessage, out: ClientResponse, forHttp2: boolean): void => {
  const headers = responseHeadersFromRaw(res.rawHeaders, "http/1.1", forHttp2)
  const status = res.statusCode ?? 502
  if (forHttp2) (out as http2.Http2ServerResponse).writeHead(status, headers as http2.OutgoingHttpHeaders)
  else
    (out as http.ServerResponse).writeHead(
      status,
      res.statusMessage || http.STATUS_CODES[status] || "",
      headers as Array<string>
    )
  out.once("close", () => res.destroy())
  res.on("error", () => out.destroy())
  res.pipe(out as NodeJS.WritableStream)
}

/** HTTP/1.1 'upgrade': a WebSocket handshake, or another upgrade (`h2c`, ...) answered as a plain request. */
export const handleUpgrade = (ctx: ProxyContext, req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
  socket.on("error", noop)
  const defaultPort = (socket as tls.TLSSocket).encrypted === true ? 443 : 80
  const rawHeaders = req.rawHeaders
  const info = scanRequestHeaders(rawHeaders)

  if (!isWebSocketUpgrade(req)) {
    // Node hands every `Upgrade` request here; one the proxy does not take (h2c) is served as if it had none.
    // Its body (if any) is no longer parsed by Node, so only bodiless requests can be served.
    const res = responseOnSocket(req, socket)
    const length = req.headers["content-length"]
    if (info.transferEncoding !== undefined || (length !== undefined && length !== "0")) {
      return sendError(res, "badRequest", true)
    }
    return handleRequest(ctx, defaultPort, req, res)
  }

  const clientKey = req.headers["sec-websocket-key"]
  // `cancel` is set once the upstream attempt has started; a synchronous refusal never needs it.
  let cancel = noop
  const onClose = () => cancel()
  socket.once("close", onClose)
  cancel = startWebSocket(
    ctx,
    {
      rawHeaders,
      info,
      hostValue: req.headers.host,
      url: req.url ?? "/",
      defaultPort,
      wsKey: typeof clientKey === "string" ? clientKey : "",
      freshKey: false
    },
    {
      fail: (kind) => {
        socket.removeListener("close", onClose)
        sendError(responseOnSocket(req, socket), kind, true)
      },
      refused: (res) => {
        socket.removeListener("close", onClose)
        relayRefusal(res, responseOnSocket(req, socket), false)
      },
      upgraded: (res, upSocket, upHead, idleMs) => {
        socket.removeListener("close", onClose)
        if (socket.destroyed) {
          upSocket.destroy()
          return
        }
        const pairs = responseHeadersFromRaw(res.rawHeaders, "http/1.1", false) as Array<string>
        let text = `HTTP/1.1 101 ${res.statusMessage || "Switching Protocols"}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n`
        for (let i = 0; i < pairs.length; i += 2) text += `${pairs[i]}: ${pairs[i + 1]}\r\n`
        socket.setTimeout(0)
        // header strings from Node's parser are latin1: write them back as such, byte for byte
        socket.write(text + "\r\n", "latin1")
        // Bytes that came with either handshake go first; the rest follows through the pipes.
        if (upHead.length > 0) socket.write(upHead)
        if (head.length > 0) upSocket.write(head)
        bridge(socket, closeSocket(socket), upSocket, idleMs)
      }
    }
  )
}

/** HTTP/2 CONNECT: extended CONNECT with `:protocol websocket` (RFC 8441); plain CONNECT is refused with 405. */
export const handleH2Connect = (ctx: ProxyContext, req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => {
  const protocol = req.headers[":protocol"]
  if (typeof protocol !== "string" || protocol.toLowerCase() !== "websocket") return sendError(res, "methodNotAllowed")
  const stream = req.stream
  stream.on("error", noop)
  const defaultPort = stream.session?.encrypted === true ? 443 : 80
  const authority = req.headers[":authority"] ?? req.headers.host
  const wsKey = randomBytes(16).toString("base64")
  let cancel = noop
  const onClose = () => cancel()
  stream.once("close", onClose)
  cancel = startWebSocket(
    ctx,
    {
      rawHeaders: req.rawHeaders,
      info: scanRequestHeaders(req.rawHeaders),
      hostValue: typeof authority === "string" ? authority : undefined,
      url: typeof req.headers[":path"] === "string" ? req.headers[":path"] : "/",
      defaultPort,
      wsKey,
      freshKey: true
    },
    {
      fail: (kind) => {
        stream.removeListener("close", onClose)
        sendError(res, kind)
      },
      refused: (upRes) => {
        stream.removeListener("close", onClose)
        relayRefusal(upRes, res, true)
      },
      upgraded: (upRes, upSocket, upHead, idleMs) => {
        stream.removeListener("close", onClose)
        if (stream.destroyed || stream.closed) {
          upSocket.destroy()
          return
        }
        const headers = responseHeadersFromRaw(upRes.rawHeaders, "http/1.1", true) as Record<
          string,
          string | Array<string>
        >
        delete headers["sec-websocket-accept"]
        stream.respond({ ...headers, ":status": 200 })
        if (upHead.length > 0) stream.write(upHead)
        const closeStream = (hadError: boolean) => {
          if (stream.destroyed) return
          // NO_ERROR waits for what is queued to be sent (after END_STREAM); an error resets at once.
          stream.close(hadError ? http2.constants.NGHTTP2_CANCEL : http2.constants.NGHTTP2_NO_ERROR)
        }
        bridge(stream, closeStream, upSocket, idleMs)
      }
    }
  )
}
