// The HTTP request path: head checks → route → select → (body) → admit → credential → dispatch → relay, over one
// HttpExchange per request (src/proxy/httpExchange.ts). Plain callbacks, no Effect per request: Effect owns the
// lifecycle around it (listeners, pools, config), never the bytes (ARCHITECTURE "Keep bytes out of Effect").
import type * as http from "node:http"
import type * as http2 from "node:http2"
import { clientKeyFor, splitPath } from "../domain/credentials.js"
import { type ClientRequest, gatherLimit, readBody } from "./body.js"
import type { ProxyContext } from "./context.js"
import { framingError } from "./framing.js"
import { scanRequestHeaders } from "./headers.js"
import { HttpExchange } from "./httpExchange.js"
import { route } from "./phases/route.js"
import type { ClientResponse } from "./respond.js"

export type { ClientRequest } from "./body.js"

/** Handles one request. `defaultPort` is the listener's (80 or 443) for requests whose host has no port. */
export const handleRequest = (
  ctx: ProxyContext,
  defaultPort: number,
  req: ClientRequest,
  res: ClientResponse,
  expectContinue = false
): void => {
  const isH2 = req.httpVersionMajor === 2
  const info = scanRequestHeaders(req.rawHeaders)
  const ex = new HttpExchange(ctx, req, res, isH2, info)

  // Framing (SPEC §5): refuse what an upstream could read differently, before anything reaches it.
  const framing = framingError(info, isH2)
  if (framing !== undefined) return ex.refuse(framing, true)

  let hostValue: string | undefined
  if (isH2) {
    const h = req.headers[":authority"] ?? req.headers.host
    hostValue = typeof h === "string" ? h : undefined
  } else hostValue = info.host
  const unroutable = route(ex, hostValue, req.url ?? "/", defaultPort)
  if (unroutable !== undefined) return ex.refuse(unroutable)

  const { query } = splitPath(ex.url)
  ex.clientKey = (type) => clientKeyFor(type, info, query)
  const connection: object = isH2 ? ((req as http2.Http2ServerRequest).stream.session ?? req) : req.socket
  const digests = ctx.digests
  ex.digest = (key) => digests.of(connection, key)
  // Phase 4 (select); phase 3 (admit, SPEC §12) follows in `start` once the body is gathered (HttpExchange).
  const refused = ex.select()
  if (refused !== undefined) return ex.refuse(refused)

  const snapshot = ex.router.snapshot
  const lengthHeader = isH2 ? req.headers["content-length"] : info.contentLength
  const contentLength = lengthHeader === undefined ? -1 : Number(lengthHeader)
  if (contentLength > snapshot.maxRequestBodySize) return ex.refuse("tooLarge", true)
  if (expectContinue) (res as http.ServerResponse).writeContinue()

  const hasBody = isH2
    ? !(req as http2.Http2ServerRequest).stream.endAfterHeaders
    : contentLength > 0 || info.transferEncoding !== undefined
  if (!hasBody) return ex.start(null)
  readBody(req, ex, contentLength, snapshot.maxRequestBodySize, gatherLimit(snapshot.retry))
}
