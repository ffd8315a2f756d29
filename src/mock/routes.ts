// The mock provider's route table: exact paths to their handlers, then the prefixed model paths (Gemini's
// `models/{model}:{action}` and the model-get routes); anything else is a provider-shaped 404. An API route checks
// the method, then the family's credential (and any fault), then answers.
import { anthropicMessages, gemini, models, openaiChat, openaiEmbeddings, openaiResponses } from "./api.js"
import type { Exchange, Route } from "./exchange.js"
import type { Family } from "./faults.js"
import * as F from "./fixtures.js"
import {
  badRequest,
  gzipBody,
  gzipHeaders,
  type In,
  methodNotAllowed,
  notFound,
  type Out,
  okBody,
  safeDecode,
  sendBuffer,
  sendJson,
  sendText,
  unhealthyBody
} from "./http.js"
import { closeDelimited, download, echo, headersEcho, sseTest, status, trailers, upload } from "./testRoutes.js"

/** A POST API endpoint: method, then the family's credential, then the handler. */
const api =
  (family: Family, handler: (req: In, res: Out) => void): Route =>
  (x) => {
    if (x.method !== "POST") methodNotAllowed(x.req, x.res)
    else if (x.mock.authenticate(family, x.req, x.res, x.q, x.rec)) handler(x.req, x.res)
  }

/** A route that ignores the request body. */
const drained =
  (route: Route): Route =>
  (x) => {
    x.req.resume()
    route(x)
  }

const routes: ReadonlyMap<string, Route> = new Map<string, Route>([
  ["/v1/chat/completions", api("openai", openaiChat)],
  ["/v1/responses", api("openai", openaiResponses)],
  ["/v1/embeddings", api("openai", openaiEmbeddings)],
  ["/v1/messages", api("anthropic", anthropicMessages)],
  [
    "/v1/messages/count_tokens",
    api("anthropic", (req, res) => {
      req.resume()
      sendJson(res, 200, F.anthropicCountTokens)
    })
  ],
  ["/v1/models", (x) => models(x, undefined)],
  [
    "/v1beta/models",
    (x) => {
      if (x.method !== "GET" && x.method !== "HEAD") return methodNotAllowed(x.req, x.res)
      if (!x.mock.authenticate("gemini", x.req, x.res, x.q, x.rec)) return
      x.req.resume()
      sendJson(x.res, 200, F.geminiModelList)
    }
  ],
  ["/health", drained((x) => sendText(x.res, 200, okBody, x.method === "HEAD"))],
  ["/__health_fail", drained((x) => sendText(x.res, 503, unhealthyBody, x.method === "HEAD"))],
  ["/__upload", (x) => upload(x.req, x.res)],
  ["/__download", (x) => download(x.req, x.res, x.q)],
  ["/__echo", (x) => echo(x.req, x.res)],
  ["/__sse", sseTest],
  [
    "/__release",
    drained((x) => {
      const gate = x.q.get("gate")
      if (!gate) return badRequest(x.res, "gate is required")
      x.mock.release(gate)
      sendJson(x.res, 200, Buffer.from(JSON.stringify({ released: gate })))
    })
  ],
  ["/__status", (x) => status(x.req, x.res, x.q)],
  ["/__gzip", drained((x) => sendBuffer(x.res, 200, gzipHeaders, x.method === "HEAD" ? undefined : gzipBody))],
  ["/__hang", drained(() => undefined)],
  ["/__close_delimited", (x) => closeDelimited(x.req, x.res)],
  ["/__trailers", (x) => trailers(x.req, x.res)],
  ["/__headers", (x) => headersEcho(x.req, x.res, x.url)]
])

/** Answers a request by the table. */
export const dispatch = (x: Exchange): void => {
  const route = routes.get(x.path)
  if (route !== undefined) return route(x)
  if (x.path.startsWith("/v1beta/models/")) return gemini(x, x.path.slice(15))
  if (x.path.startsWith("/v1/models/")) {
    const rest = x.path.slice(11)
    if (rest.includes(":")) return gemini(x, rest)
    return models(x, safeDecode(rest))
  }
  x.req.resume()
  notFound(x.res, x.method, x.path)
}
