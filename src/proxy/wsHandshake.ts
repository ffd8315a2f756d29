// The WebSocket handshake's pieces (RFC 6455, RFC 8441, SPEC §4/§5): `Sec-WebSocket-Accept`, the subprotocol list
// and its browser-form OpenAI key, what the upgrade path hands the exchange (the client's handshake, whichever
// protocol it came over) and gets back (the outcome), and the relay of a refused upgrade.
import { createHash } from "node:crypto"
import * as http from "node:http"
import type * as http2 from "node:http2"
import type * as net from "node:net"
import type { ErrorKind, ProxyError } from "../errors.js"
import { type RequestHeadInfo, responseHeadersFromRaw } from "./headers.js"
import type { ClientResponse } from "./respond.js"

const WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
/** The browser form of an OpenAI key: `Sec-WebSocket-Protocol: realtime, openai-insecure-api-key.K`. */
export const KEY_PROTOCOL = "openai-insecure-api-key."

/** `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key` (RFC 6455 §4.2.2). */
export const acceptFor = (key: string): string =>
  createHash("sha1")
    .update(key + WS_GUID)
    .digest("base64")

/** The client's handshake, whichever protocol it came over. */
export interface Handshake {
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
export interface Sink {
  readonly fail: (e: ErrorKind | ProxyError) => void
  /** An answer of the proxy's own other than an error (the 429 of SPEC §11), written by `send`. */
  readonly reply: (send: (out: ClientResponse) => void) => void
  /** A final answer other than 101: relayed with its status, headers and body. */
  readonly refused: (res: http.IncomingMessage) => void
  /** 101 from the upstream, `Sec-WebSocket-Accept` checked; `idleMs` is from the snapshot the handshake began on. */
  readonly upgraded: (res: http.IncomingMessage, socket: net.Socket, head: Buffer, idleMs: number) => void
}

/** Subprotocol tokens across every `Sec-WebSocket-Protocol` header, in order. */
export const offeredProtocols = (raw: ReadonlyArray<string>): Array<string> => {
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

export const DROP_PROTOCOL: ReadonlySet<string> = new Set(["sec-websocket-protocol"])
export const DROP_PROTOCOL_KEY: ReadonlySet<string> = new Set([
  "sec-websocket-protocol",
  "sec-websocket-key",
  "sec-websocket-version"
])

export const isWebSocketUpgrade = (req: http.IncomingMessage): boolean => {
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
export const relayRefusal = (
  res: http.IncomingMessage,
  out: ClientResponse,
  forHttp2: boolean,
  requestId: string
): void => {
  const headers = responseHeadersFromRaw(res.rawHeaders, "http/1.1", forHttp2, requestId)
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
