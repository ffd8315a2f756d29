// The mock provider's HTTP helpers: header reads, answers (JSON, text, SSE, encoded), body reading and model
// sniffing, cached fixture answers. Stateless: the routes (routes.ts, api.ts, testRoutes.ts) build on them.
import { createHash } from "node:crypto"
import http from "node:http"
import type { Duplex, Readable, Writable } from "node:stream"
import { brotliCompressSync, deflateSync, gzipSync } from "node:zlib"
import * as F from "./fixtures.js"
import { type MockUsage, parseMockUsage } from "./usage.js"

export type In = Readable & {
  method?: string
  url?: string
  httpVersion: string
  rawHeaders: string[]
  headers: http.IncomingHttpHeaders
}

export type Out = Writable & {
  writeHead(statusCode: number, headers?: http.OutgoingHttpHeaders): unknown
  addTrailers(headers: http.OutgoingHttpHeaders): void
}

export type Headers = http.OutgoingHttpHeaders

export const EMPTY_SHA256 = createHash("sha256").digest("hex")
export const noop = (): void => {}
export const MAX_PAYLOAD = 64 * 1024 * 1024

// ---------- precomputed bodies ----------

export const gzipPlain = Buffer.from(
  JSON.stringify({
    message: "compressed by the mock provider",
    lines: Array.from({ length: 200 }, (_, i) => `line ${i}`)
  })
)
export const gzipBody = gzipSync(gzipPlain)
export const gzipHeaders: Headers = {
  "content-type": "application/json",
  "content-encoding": "gzip",
  "content-length": gzipBody.length,
  "x-raw-sha256": createHash("sha256").update(gzipBody).digest("hex"),
  "x-plain-sha256": createHash("sha256").update(gzipPlain).digest("hex")
}

export const textBody = (prefix: string, lines: number): Buffer =>
  Buffer.from(Array.from({ length: lines }, (_, i) => `${prefix} ${i}\n`).join(""))
export const closeDelimitedBody = textBody("close-delimited line", 200)
export const trailerBody = textBody("trailer body line", 200)
export const trailerChecksum = createHash("sha256").update(trailerBody).digest("hex")

export const okBody = Buffer.from("ok")
export const unhealthyBody = Buffer.from("unhealthy")

// ---------- small helpers ----------

export const headerValues = (raw: string[], name: string): string[] => {
  const out: string[] = []
  for (let i = 0; i < raw.length; i += 2) {
    const h = raw[i]
    if (h.length === name.length && h.toLowerCase() === name) out.push(raw[i + 1])
  }
  return out
}

export const hasHeader = (raw: string[], name: string): boolean => {
  for (let i = 0; i < raw.length; i += 2) {
    const h = raw[i]
    if (h.length === name.length && h.toLowerCase() === name) return true
  }
  return false
}

export const bearer = (value: string): string | undefined =>
  value.length > 7 && value.slice(0, 7).toLowerCase() === "bearer " ? value.slice(7).trim() : undefined

export const safeDecode = (s: string): string => {
  try {
    return decodeURIComponent(s)
  } catch {
    return s
  }
}

export const queryParams = (query: string): URLSearchParams => new URLSearchParams(query)

export const intParam = (q: URLSearchParams, name: string, def: number): number => {
  const v = q.get(name)
  if (v === null || v === "") return def
  const n = Number(v)
  return Number.isFinite(n) && n >= 0 ? Math.floor(n) : def
}

export const jsonHeaders = (len: number, extra?: Headers): Headers => ({
  "content-type": "application/json",
  "content-length": len,
  ...extra
})

export const sendBuffer = (res: Out, status: number, headers: Headers, body: Buffer | undefined): void => {
  res.writeHead(status, headers)
  res.end(body)
}

export const sendJson = (res: Out, status: number, body: Buffer, extra?: Headers): void =>
  sendBuffer(res, status, jsonHeaders(body.length, extra), body)

export const sendText = (res: Out, status: number, text: string | Buffer, head = false): void => {
  const body = typeof text === "string" ? Buffer.from(text) : text
  sendBuffer(
    res,
    status,
    { "content-type": "text/plain; charset=utf-8", "content-length": body.length },
    head ? undefined : body
  )
}

export const readBody = (req: In, cb: (body: Buffer) => void): void => {
  const chunks: Buffer[] = []
  let n = 0
  req.on("data", (c: Buffer) => {
    chunks.push(c)
    n += c.length
  })
  req.on("end", () => cb(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, n)))
  req.on("error", noop)
}

export const MODEL_KEY = Buffer.from('"model"')
export const STREAM_KEY = Buffer.from('"stream"')

/** The top-level-looking `"model": "..."` string without parsing the whole body (hot path). */
export const sniffModel = (body: Buffer): string | undefined => {
  let from = 0
  for (;;) {
    const at = body.indexOf(MODEL_KEY, from)
    if (at < 0) return undefined
    let i = at + MODEL_KEY.length
    while (i < body.length && (body[i] === 0x20 || body[i] === 0x0a || body[i] === 0x0d || body[i] === 0x09)) i++
    if (body[i] === 0x3a) {
      i++
      while (i < body.length && (body[i] === 0x20 || body[i] === 0x0a || body[i] === 0x0d || body[i] === 0x09)) i++
      if (body[i] === 0x22) {
        const end = body.indexOf(0x22, i + 1)
        if (end < 0) return undefined
        const value = body.toString("utf8", i + 1, end)
        return value.includes("\\") ? undefined : value
      }
    }
    from = at + 1
  }
}

interface ApiRequest {
  model: string
  stream: boolean
  json?: Record<string, unknown>
}

/** Reads what the API endpoints need; JSON.parse only when the body mentions "stream" (or `full`). */
export const inspect = (body: Buffer, defaultModel: string, full: boolean): ApiRequest | undefined => {
  if (!full && body.indexOf(STREAM_KEY) < 0) return { model: sniffModel(body) ?? defaultModel, stream: false }
  let json: unknown
  try {
    json = JSON.parse(body.toString("utf8"))
  } catch {
    return undefined
  }
  if (json === null || typeof json !== "object" || Array.isArray(json)) return undefined
  const obj = json as Record<string, unknown>
  return {
    model: typeof obj.model === "string" ? obj.model : defaultModel,
    stream: obj.stream === true,
    json: obj
  }
}

/** Per-model cache of precomputed JSON responses. */
export const cached = (make: (model: string) => Buffer, extra: Headers) => {
  const cache = new Map<string, { body: Buffer; headers: Headers }>()
  return (model: string): { body: Buffer; headers: Headers } => {
    let hit = cache.get(model)
    if (hit === undefined) {
      const body = make(model)
      hit = { body, headers: jsonHeaders(body.length, extra) }
      if (cache.size < 256) cache.set(model, hit)
    }
    return hit
  }
}

export const OPENAI_EXTRA: Headers = { "x-request-id": "req_mock", "openai-processing-ms": "1" }
export const ANTHROPIC_EXTRA: Headers = { "request-id": "req_mock" }
export const SSE_HEADERS: Headers = { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache" }

export const chatCached = cached(F.chatCompletion, OPENAI_EXTRA)
export const responsesCached = cached(F.responsesResponse, OPENAI_EXTRA)
export const messageCached = cached(F.anthropicMessage, ANTHROPIC_EXTRA)
export const geminiCached = cached(F.geminiResponse, {})

/** Writes SSE events (each its own write, so each is flushed) then ends; optional spacing for tests. */
export const writeEvents = (res: Out, headers: Headers, events: string[], intervalMs: number): void => {
  res.writeHead(200, headers)
  if (intervalMs <= 0) {
    for (const e of events) res.write(e)
    res.end()
    return
  }
  let i = 0
  let timer: NodeJS.Timeout | undefined
  res.on("close", () => clearTimeout(timer))
  const next = (): void => {
    if (res.destroyed) return
    if (i >= events.length) {
      res.end()
      return
    }
    res.write(events[i++])
    timer = setTimeout(next, intervalMs)
  }
  next()
}

export const refuseUpgrade = (socket: Duplex, status: number, body: Buffer, contentType: string): void => {
  const reason = http.STATUS_CODES[status] ?? "Unknown"
  socket.write(
    `HTTP/1.1 ${status} ${reason}\r\ncontent-type: ${contentType}\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n`
  )
  socket.end(body)
}

export const embeddingCount = (input: unknown): number => {
  if (typeof input === "string") return 1
  if (!Array.isArray(input) || input.length === 0) return 0
  return typeof input[0] === "number" ? 1 : input.length
}

// ---------- the server ----------

export const keySet = (k: string | ReadonlyArray<string>): ReadonlySet<string> =>
  new Set(typeof k === "string" ? [k] : k)

export const badRequest = (res: Out, message: string): void => sendJson(res, 400, F.jsonError(message))
export const notFound = (res: Out, method: string, path: string): void =>
  sendJson(res, 404, F.jsonError(`Unknown endpoint: ${method} ${path}`, "not_found_error"))
export const methodNotAllowed = (req: In, res: Out): void => {
  req.resume()
  sendJson(res, 405, F.jsonError(`Method not allowed: ${req.method}`))
}

export const streamInterval = (req: In): number => {
  const v = req.headers["x-mock-stream-interval-ms"]
  const n = typeof v === "string" ? Number(v) : 0
  return Number.isFinite(n) && n > 0 ? n : 0
}

export const mockUsage = (req: In): MockUsage | undefined => {
  const v = req.headers["x-mock-usage"]
  return parseMockUsage(typeof v === "string" ? v : undefined)
}

/** An API's JSON answer, encoded when the client asked the mock to (`x-mock-content-encoding`). */
export const sendApi = (req: In, res: Out, body: Buffer, extra: Headers): void => {
  const coding = req.headers["x-mock-content-encoding"]
  if (coding !== "gzip" && coding !== "deflate" && coding !== "br") {
    sendBuffer(res, 200, jsonHeaders(body.length, extra), body)
    return
  }
  const encoded = coding === "gzip" ? gzipSync(body) : coding === "br" ? brotliCompressSync(body) : deflateSync(body)
  sendBuffer(res, 200, jsonHeaders(encoded.length, { ...extra, "content-encoding": coding }), encoded)
}

/** Whether a JSON answer must be built for this request rather than taken from the per-model cache. */
export const custom = (req: In): boolean =>
  req.headers["x-mock-usage"] !== undefined || req.headers["x-mock-content-encoding"] !== undefined
