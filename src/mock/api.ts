// The mock provider's API routes: OpenAI chat, responses and embeddings, Anthropic messages, Gemini generate and
// stream, and the model lists, answered from fixtures (JSON or SSE) with usage and encoding on request.

import type { Exchange } from "./exchange.js"
import * as F from "./fixtures.js"
import {
  ANTHROPIC_EXTRA,
  badRequest,
  chatCached,
  custom,
  embeddingCount,
  geminiCached,
  type In,
  inspect,
  messageCached,
  methodNotAllowed,
  mockUsage,
  notFound,
  OPENAI_EXTRA,
  type Out,
  readBody,
  responsesCached,
  SSE_HEADERS,
  safeDecode,
  sendApi,
  sendBuffer,
  sendJson,
  streamInterval,
  writeEvents
} from "./http.js"

export const openaiChat = (req: In, res: Out): void =>
  readBody(req, (body) => {
    const r = inspect(body, "gpt-4o-mini", false)
    if (r === undefined) return badRequest(res, "invalid JSON body")
    const usage = mockUsage(req)
    if (!r.stream) {
      if (custom(req)) return sendApi(req, res, F.chatCompletion(r.model, usage), OPENAI_EXTRA)
      const c = chatCached(r.model)
      return sendBuffer(res, 200, c.headers, c.body)
    }
    const so = r.json?.stream_options
    const includeUsage = so !== null && typeof so === "object" && (so as Record<string, unknown>).include_usage === true
    writeEvents(res, SSE_HEADERS, F.chatCompletionStream(r.model, includeUsage, usage), streamInterval(req))
  })

export const openaiResponses = (req: In, res: Out): void =>
  readBody(req, (body) => {
    const r = inspect(body, "gpt-4o-mini", false)
    if (r === undefined) return badRequest(res, "invalid JSON body")
    const usage = mockUsage(req)
    if (!r.stream) {
      if (custom(req)) return sendApi(req, res, F.responsesResponse(r.model, usage), OPENAI_EXTRA)
      const c = responsesCached(r.model)
      return sendBuffer(res, 200, c.headers, c.body)
    }
    writeEvents(res, SSE_HEADERS, F.responsesStream(r.model, usage), streamInterval(req))
  })

export const openaiEmbeddings = (req: In, res: Out): void =>
  readBody(req, (body) => {
    const r = inspect(body, "text-embedding-3-small", true)
    if (r?.json === undefined) return badRequest(res, "invalid JSON body")
    const count = embeddingCount(r.json.input)
    if (count === 0) return badRequest(res, "'input' is required")
    const d = r.json.dimensions
    const dims = typeof d === "number" && d > 0 && d <= 4096 ? Math.floor(d) : 16
    const base64 = r.json.encoding_format === "base64"
    sendApi(req, res, F.embeddings(r.model, count, dims, base64, mockUsage(req)), OPENAI_EXTRA)
  })

export const anthropicMessages = (req: In, res: Out): void =>
  readBody(req, (body) => {
    const r = inspect(body, "claude-sonnet-4-5", false)
    if (r === undefined) {
      return sendJson(
        res,
        400,
        Buffer.from(
          JSON.stringify({ type: "error", error: { type: "invalid_request_error", message: "invalid JSON body" } })
        )
      )
    }
    const usage = mockUsage(req)
    if (!r.stream) {
      if (custom(req)) return sendApi(req, res, F.anthropicMessage(r.model, usage), ANTHROPIC_EXTRA)
      const c = messageCached(r.model)
      return sendBuffer(res, 200, c.headers, c.body)
    }
    writeEvents(res, { ...SSE_HEADERS, ...ANTHROPIC_EXTRA }, F.anthropicStream(r.model, usage), streamInterval(req))
  })

export const gemini = (x: Exchange, rest: string): void => {
  const { req, res, q, rec } = x
  const colon = rest.indexOf(":")
  if (colon < 0) {
    if (req.method !== "GET") {
      methodNotAllowed(req, res)
      return
    }
    if (!x.mock.authenticate("gemini", req, res, q, rec)) return
    const name = safeDecode(rest)
    sendJson(res, 200, Buffer.from(JSON.stringify({ name: "models/" + name, displayName: name })))
    return
  }
  const model = safeDecode(rest.slice(0, colon))
  const action = rest.slice(colon + 1)
  if (action !== "generateContent" && action !== "streamGenerateContent" && action !== "countTokens") {
    req.resume()
    notFound(res, req.method ?? "", rest)
    return
  }
  if (req.method !== "POST") {
    methodNotAllowed(req, res)
    return
  }
  if (!x.mock.authenticate("gemini", req, res, q, rec)) return
  readBody(req, () => {
    if (action === "countTokens") return sendJson(res, 200, Buffer.from(`{"totalTokens":${F.PROMPT_TOKENS}}`))
    const usage = mockUsage(req)
    if (action === "generateContent") {
      if (custom(req)) return sendApi(req, res, F.geminiResponse(model, usage), {})
      const c = geminiCached(model)
      return sendBuffer(res, 200, c.headers, c.body)
    }
    const events = F.geminiStream(model, usage)
    if (q.get("alt") === "sse") {
      return writeEvents(res, { "content-type": "text/event-stream" }, events, streamInterval(req))
    }
    // Without alt=sse Gemini streams one JSON array.
    const items = events.map((e) => e.slice(6).trim())
    writeEvents(
      res,
      { "content-type": "application/json" },
      items.map((it, i) => (i === 0 ? "[" : ",\r\n") + it).concat(["]"]),
      streamInterval(req)
    )
  })
}

export const models = (x: Exchange, id: string | undefined): void => {
  const { req, res, q, rec } = x
  if (req.method !== "GET" && req.method !== "HEAD") {
    methodNotAllowed(req, res)
    return
  }
  const family = x.mock.familyOf(req.rawHeaders, q)
  if (!x.mock.authenticate(family, req, res, q, rec)) return
  req.resume()
  if (family === "gemini") {
    if (id === undefined) {
      sendJson(res, 200, F.geminiModelList)
      return
    }
    sendJson(res, 200, Buffer.from(JSON.stringify({ name: "models/" + id, displayName: id })))
    return
  }
  if (family === "anthropic") {
    sendJson(res, 200, id === undefined ? F.anthropicModelList : F.anthropicModelGet(id), ANTHROPIC_EXTRA)
    return
  }
  sendJson(res, 200, id === undefined ? F.openaiModelList : F.openaiModelGet(id), OPENAI_EXTRA)
}
