// Writing the proxy's own answers (SPEC §9) on a client response: short `text/plain` bodies whose status and text
// src/errors.ts chooses, and the abort of a response that cannot be completed.
import type * as http from "node:http"
import * as http2 from "node:http2"
import { type ErrorKind, type ProxyError, responseOf } from "../errors.js"

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

/**
 * Sends one of the proxy's own errors. `close` asks HTTP/1.1 to close the connection afterwards: only when the
 * request framing is broken or the body was not read. A `Refused` with a `detail` has that as its body.
 * `requestId` goes back as `x-request-id` (SPEC §10). Returns the body bytes written (the access log's `bytes_out`).
 */
export const sendError = (
  res: ClientResponse,
  kind: ErrorKind | ProxyError,
  close = false,
  requestId?: string
): number => {
  if (res.headersSent || res.writableEnded || isGone(res)) {
    abortClient(res)
    return 0
  }
  const { status, body } = responseOf(kind)
  const buf = Buffer.from(body)
  const headers: Record<string, string | number> = {
    "content-type": "text/plain; charset=utf-8",
    "content-length": buf.length
  }
  if (requestId !== undefined) headers["x-request-id"] = requestId
  if (close && "shouldKeepAlive" in res) {
    headers.connection = "close"
    res.shouldKeepAlive = false
  }
  res.writeHead(status, headers)
  res.end(buf)
  return buf.length
}
