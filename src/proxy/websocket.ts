// WebSocket through the proxy (SPEC §5): HTTP/1.1 `Upgrade: websocket` and HTTP/2 extended CONNECT (RFC 8441),
// both bridged to an HTTP/1.1 upgrade on the upstream (src/proxy/wsExchange.ts: routing and the credential swap are
// the HTTP path's, SPEC §3, §4). After the handshake the proxy copies bytes both ways and never re-frames a message.
import { randomBytes } from "node:crypto"
import type * as http from "node:http"
import * as http2 from "node:http2"
import type * as net from "node:net"
import type * as tls from "node:tls"
import type { ProxyContext } from "./context.js"
import { noteClient } from "./exchange.js"
import { handleRequest } from "./forward.js"
import { responseHeadersFromRaw, scanRequestHeaders } from "./headers.js"
import { sendError } from "./respond.js"
import { bridge, closeSocket, noop, responseOnSocket } from "./socket.js"
import { WsExchange } from "./wsExchange.js"
import { isWebSocketUpgrade, relayRefusal } from "./wsHandshake.js"

const EMPTY = Buffer.alloc(0)

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
      return sendError(res, "badRequest", true, ctx.requestIds.fromHeader(info.requestId))
    }
    return handleRequest(ctx, defaultPort, req, res)
  }

  const clientKey = req.headers["sec-websocket-key"]
  const ex: WsExchange = new WsExchange(
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
        sendError(responseOnSocket(req, socket), kind, true, ex.requestId)
      },
      reply: (send) => {
        socket.removeListener("close", onClose)
        send(responseOnSocket(req, socket))
      },
      refused: (res) => {
        socket.removeListener("close", onClose)
        relayRefusal(res, responseOnSocket(req, socket), false, ex.requestId)
      },
      upgraded: (res, upSocket, upHead, idleMs) => {
        socket.removeListener("close", onClose)
        if (socket.destroyed) {
          upSocket.destroy()
          return
        }
        const pairs = responseHeadersFromRaw(res.rawHeaders, "http/1.1", false, ex.requestId) as Array<string>
        let text = `HTTP/1.1 101 ${res.statusMessage || "Switching Protocols"}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n`
        for (let i = 0; i < pairs.length; i += 2) text += `${pairs[i]}: ${pairs[i + 1]}\r\n`
        socket.setTimeout(0)
        // header strings from Node's parser are latin1: write them back as such, byte for byte
        socket.write(text + "\r\n", "latin1")
        // Bytes that came with either handshake go first; the rest follows through the pipes.
        if (upHead.length > 0) socket.write(upHead)
        if (head.length > 0) upSocket.write(head)
        bridge(socket, closeSocket(socket), upSocket, idleMs)
        ex.relayed(socket, upSocket, head, upHead)
      }
    }
  )
  const onClose = () => ex.cancel()
  socket.once("close", onClose)
  socket.once("close", () => ex.end())
  // A client leaving before the answer only ends its side of this half-open socket: close it (as tunnel.ts does).
  socket.once("end", () => {
    if (ex.status === 0) socket.destroy()
  })
  noteClient(ex, socket)
  ex.start()
}

/** HTTP/2 CONNECT: extended CONNECT with `:protocol websocket` (RFC 8441); plain CONNECT is refused with 405. */
export const handleH2Connect = (ctx: ProxyContext, req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => {
  const protocol = req.headers[":protocol"]
  if (typeof protocol !== "string" || protocol.toLowerCase() !== "websocket")
    return sendError(res, "methodNotAllowed", false, ctx.requestIds.next())
  const stream = req.stream
  stream.on("error", noop)
  const defaultPort = stream.session?.encrypted === true ? 443 : 80
  const authority = req.headers[":authority"] ?? req.headers.host
  const wsKey = randomBytes(16).toString("base64")
  const ex: WsExchange = new WsExchange(
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
        sendError(res, kind, false, ex.requestId)
      },
      reply: (send) => {
        stream.removeListener("close", onClose)
        send(res)
      },
      refused: (upRes) => {
        stream.removeListener("close", onClose)
        relayRefusal(upRes, res, true, ex.requestId)
      },
      upgraded: (upRes, upSocket, upHead, idleMs) => {
        stream.removeListener("close", onClose)
        if (stream.destroyed || stream.closed) {
          upSocket.destroy()
          return
        }
        const headers = responseHeadersFromRaw(upRes.rawHeaders, "http/1.1", true, ex.requestId) as Record<
          string,
          string | Array<string>
        >
        delete headers["sec-websocket-accept"]
        stream.respond({ ...headers, ":status": 200 })
        ex.status = 200 // what this client received (RFC 8441), for the metrics' `code` and the access log
        if (upHead.length > 0) stream.write(upHead)
        const closeStream = (hadError: boolean) => {
          if (stream.destroyed) return
          // NO_ERROR waits for what is queued to be sent (after END_STREAM); an error resets at once.
          stream.close(hadError ? http2.constants.NGHTTP2_CANCEL : http2.constants.NGHTTP2_NO_ERROR)
        }
        bridge(stream, closeStream, upSocket, idleMs)
        ex.relayed(stream, upSocket, EMPTY, upHead)
      }
    }
  )
  const onClose = () => ex.cancel()
  stream.once("close", onClose)
  stream.once("close", () => ex.end())
  noteClient(ex, req.socket)
  ex.method = "CONNECT"
  ex.start()
}
