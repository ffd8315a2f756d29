// Responses the proxy itself produces (SPEC §9): short `text/plain` bodies, no internal detail, and the
// HTTP status chosen in one place from the kind of failure.
import type * as http from "node:http"
import * as http2 from "node:http2"

export type ClientResponse = http.ServerResponse | http2.Http2ServerResponse

/** The client side is closed (HTTP/2 compatibility responses have no `destroyed`: look at the stream). */
const isGone = (res: ClientResponse): boolean =>
  "stream" in res ? res.stream === undefined || res.stream.destroyed : res.destroyed

/**
 * Ends a response that cannot be completed so that it cannot look complete: HTTP/1.1 closes the connection
 * without a final chunk; HTTP/2 resets the stream with INTERNAL_ERROR (a plain destroy would send NO_ERROR).
 */
export const abortClient = (res: ClientResponse): void => {
  if ("stream" in res) {
    const stream = res.stream
    if (stream !== undefined && !stream.destroyed) stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR)
    return
  }
  res.destroy()
}

/** Every error the request path can answer with: its status and exact body. */
export const Errors = {
  noProvider: [404, "No provider found"],
  unauthorized: [401, "authentication failed"],
  noHealthy: [503, "No healthy provider"],
  upstreamAuth: [502, "upstream authentication failed"],
  badGateway: [502, "upstream connection failed"],
  gatewayTimeout: [504, "upstream timed out"],
  missingHost: [400, "missing Host header"],
  multipleHost: [400, "multiple Host headers"],
  badRequest: [400, "bad request"],
  badFraming: [400, "conflicting Content-Length or Transfer-Encoding"],
  unsupportedEncoding: [501, "unsupported Transfer-Encoding"],
  tooLarge: [413, "request body too large"],
  headerTooLarge: [431, "request header fields too large"],
  connectDisabled: [403, "CONNECT tunnel not enabled"],
  /** Sent with `connectPortMismatch(N, M)` as the body: `CONNECT port N does not match provider port M`. */
  connectPortMismatch: [400, "CONNECT port does not match provider port"],
  connectNoPort: [400, "CONNECT target has no port"],
  methodNotAllowed: [405, "method not allowed"]
} as const satisfies Record<string, readonly [number, string]>

export type ErrorKind = keyof typeof Errors

/** The body of a CONNECT port mismatch, as OpenProxy words it (its scripts compare the text). */
export const connectPortMismatch = (requested: number, provider: number): string =>
  `CONNECT port ${requested} does not match provider port ${provider}`

/**
 * Sends one of the proxy's own errors. `close` asks HTTP/1.1 to close the connection afterwards: only when the
 * request framing is broken or the body was not read. `detail` replaces the body for errors that name values.
 */
export const sendError = (res: ClientResponse, kind: ErrorKind, close = false, detail?: string): void => {
  if (res.headersSent || res.writableEnded || isGone(res)) {
    abortClient(res)
    return
  }
  const status = Errors[kind][0]
  const body = detail ?? Errors[kind][1]
  const buf = Buffer.from(body)
  const headers: Record<string, string | number> = {
    "content-type": "text/plain; charset=utf-8",
    "content-length": buf.length
  }
  if (close && "shouldKeepAlive" in res) {
    headers.connection = "close"
    res.shouldKeepAlive = false
  }
  res.writeHead(status, headers)
  res.end(buf)
}

interface CodedError {
  readonly code?: unknown
  readonly name?: unknown
  readonly cause?: unknown
}

const codeOf = (err: unknown): string => {
  const e = err as CodedError | null
  if (e === null || typeof e !== "object") return ""
  if (typeof e.code === "string") return e.code
  return codeOf(e.cause)
}

/** How an upstream failure maps to a status, and whether it means the upstream could not be reached. */
export const classifyUpstreamError = (err: unknown): { kind: ErrorKind; connectFailure: boolean; code: string } => {
  const code = codeOf(err)
  switch (code) {
    case "UND_ERR_CONNECT_TIMEOUT":
      return { kind: "gatewayTimeout", connectFailure: true, code }
    case "UND_ERR_HEADERS_TIMEOUT":
    case "UND_ERR_BODY_TIMEOUT":
      return { kind: "gatewayTimeout", connectFailure: false, code }
    case "ECONNREFUSED":
    case "ENOTFOUND":
    case "EAI_AGAIN":
    case "EHOSTUNREACH":
    case "ENETUNREACH":
    case "EADDRNOTAVAIL":
      return { kind: "badGateway", connectFailure: true, code }
    default:
      if (
        code.startsWith("ERR_TLS") ||
        code.startsWith("ERR_SSL") ||
        code.includes("CERT") ||
        code === "DEPTH_ZERO_SELF_SIGNED_CERT"
      )
        return { kind: "badGateway", connectFailure: true, code }
      return { kind: "badGateway", connectFailure: false, code }
  }
}

/** Socket-level failures on a connection that may have been a stale pooled one: safe to retry on a fresh one. */
export const isStaleConnectionError = (err: unknown): boolean => {
  const code = codeOf(err)
  return code === "UND_ERR_SOCKET" || code === "ECONNRESET" || code === "EPIPE"
}
