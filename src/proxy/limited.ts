// The HTTP answers of the admit phase (SPEC §12): a 429 the provider type's official SDK parses into its own
// rate-limit error (the body shape of src/limits/headers.ts, `Retry-After`, `retry-after-ms` and OpenAI's
// `x-ratelimit-*` headers), and the size a request body is taken to have for the token estimate.
import type * as http from "node:http"
import type { ProviderType } from "../config/types.js"
import { refusalBody, refusalHeaders, refusalMessage } from "../limits/headers.js"
import { type ClientRequest, GATHER_LIMIT } from "./body.js"
import type { Refusal } from "./phases/admit.js"
import { abortClient, type ClientResponse } from "./respond.js"

/**
 * The body size the token estimate uses: a gathered body's length; for a streamed one its declared length, else at
 * least what made it streamed (GATHER_LIMIT); 0 for none.
 */
export const bodySizeOf = (req: ClientRequest, body: Buffer | object | null): number => {
  if (body === null) return 0
  if (Buffer.isBuffer(body)) return body.length
  const declared = Number(req.headers["content-length"])
  return Number.isFinite(declared) && declared > 0 ? declared : GATHER_LIMIT
}

/**
 * Sends the 429 of a refusal. `close` (HTTP/1.1): the body was not read (streamed), so the connection cannot be
 * reused. The message names the key's name, never the key.
 */
export const sendLimited = (
  res: ClientResponse,
  a: Refusal,
  type: ProviderType,
  keyName: string,
  requestId: string,
  close: boolean
): void => {
  if (res.headersSent || res.writableEnded) return abortClient(res)
  const body = Buffer.from(refusalBody(type, refusalMessage(keyName, a)))
  const headers: Record<string, string | number> = {
    "content-type": "application/json",
    "content-length": body.length,
    "x-request-id": requestId
  }
  for (const [name, value] of refusalHeaders(a)) headers[name] = value
  if (close && "shouldKeepAlive" in res) {
    headers.connection = "close"
    ;(res as http.ServerResponse).shouldKeepAlive = false
  }
  res.writeHead(429, headers)
  res.end(body)
}
