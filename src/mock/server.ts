// Mock LLM provider: one server that answers like OpenAI, Anthropic and Gemini (JSON and SSE,
// provider-shaped auth errors), plus test endpoints (uploads, downloads, echo, gated SSE, status
// codes, gzip, trailers, hangs, close-delimited bodies) and WebSocket echo / realtime endpoints.
// It records every request it receives so tests can check what the proxy forwarded.
// Control headers (docs/usage.md): `x-mock-usage` sets the usage figures every API answer reports (usage.ts),
// `x-mock-content-encoding: gzip|deflate|br` encodes the JSON answers, `x-mock-stream-interval-ms` spaces SSE
// events; on /v1/realtime, `x-mock-usage` (or `?mock_usage=`) makes `response.create` answer with a response
// and its `response.done` usage; `mock_fragment=N` sends response.done in N-byte fragments and `mock_repeat=N`
// makes the answer N times longer.
// Failures on command (faults.ts, docs/retries.md): rules from `--fail`, `POST /__faults` or `fail()` make matching
// requests answer 429/503/529 in the provider's shape, reset, stall after the head or cut mid-stream; requests are
// counted per presented key (`GET /__counts`, `counts()`). Each family accepts one key or a list of keys.
import { createHash } from "node:crypto"
import http from "node:http"
import http2 from "node:http2"
import https from "node:https"
import type net from "node:net"
import { type Duplex, pipeline, type Readable, type Writable } from "node:stream"
import { brotliCompressSync, deflateSync, gzipSync } from "node:zlib"
import { type RawData, type WebSocket, WebSocketServer } from "ws"
import { deterministicStream } from "./bytes.js"
import {
  applyFault,
  applyUpgradeFault,
  type Counts,
  type Family,
  type FaultRule,
  Faults,
  parseFaultRules
} from "./faults.js"
import * as F from "./fixtures.js"
import { type MockUsage, parseMockUsage } from "./usage.js"

export { deterministicBytes, deterministicStream } from "./bytes.js"
export type { Counts, FaultRule } from "./faults.js"

export interface MockOptions {
  /** default 0 (ephemeral) */
  port?: number
  /** default "127.0.0.1" */
  host?: string
  /** PEM certificate and key: serve https (or h2 + http/1.1 with `http2`) */
  tls?: { cert: string | Buffer; key: string | Buffer }
  /** with tls: h2 and http/1.1 by ALPN; without: h2c prior knowledge only */
  http2?: boolean
  /** expected provider keys (see DEFAULT_KEYS); a list accepts each of its keys */
  keys?: {
    openai?: string | ReadonlyArray<string>
    anthropic?: string | ReadonlyArray<string>
    gemini?: string | ReadonlyArray<string>
  }
  /** fault rules active from the start (faults.ts) */
  faults?: ReadonlyArray<FaultRule>
  /** record requests in `received` (default true; the CLI turns it off to keep memory flat in benchmarks) */
  record?: boolean
}

export interface RecordedRequest {
  method: string
  /** path with query */
  path: string
  httpVersion: string
  /** as received, name/value pairs (HTTP/2: pseudo-headers included) */
  rawHeaders: string[]
  bodyBytes: number
  /** sha256 (hex) of the body; final once the body has been read */
  bodySha256: string
  time: number
  /** how a provider request authenticated: "authorization", "x-api-key", "x-goog-api-key", "query", "subprotocol" */
  auth?: string
}

export interface MockProvider {
  port: number
  url: string
  /** every request, in arrival order (including WebSocket handshakes) */
  received: RecordedRequest[]
  /** lets a gated /__sse continue (a release with no waiter is kept for the next one) */
  release(gate: string): void
  /** adds fault rules (faults.ts): matching requests fail as the rule says */
  fail(rules: FaultRule | ReadonlyArray<FaultRule>): void
  /** removes every fault rule */
  clearFaults(): void
  /** provider API requests and WebSocket handshakes received, in total and per presented key */
  counts(): Counts
  /** clears `received`, pending releases, fault rules and counts */
  reset(): void
  /** closes the server and every open connection, session and WebSocket */
  close(): Promise<void>
}

export const DEFAULT_KEYS = { openai: "sk-mock-openai", anthropic: "sk-ant-mock", gemini: "gemini-mock-key" }

type In = Readable & {
  method?: string
  url?: string
  httpVersion: string
  rawHeaders: string[]
  headers: http.IncomingHttpHeaders
}

type Out = Writable & {
  writeHead(statusCode: number, headers?: http.OutgoingHttpHeaders): unknown
  addTrailers(headers: http.OutgoingHttpHeaders): void
}

type Headers = http.OutgoingHttpHeaders

const EMPTY_SHA256 = createHash("sha256").digest("hex")
const noop = (): void => {}
const MAX_PAYLOAD = 64 * 1024 * 1024

// ---------- precomputed bodies ----------

const gzipPlain = Buffer.from(
  JSON.stringify({
    message: "compressed by the mock provider",
    lines: Array.from({ length: 200 }, (_, i) => `line ${i}`)
  })
)
const gzipBody = gzipSync(gzipPlain)
const gzipHeaders: Headers = {
  "content-type": "application/json",
  "content-encoding": "gzip",
  "content-length": gzipBody.length,
  "x-raw-sha256": createHash("sha256").update(gzipBody).digest("hex"),
  "x-plain-sha256": createHash("sha256").update(gzipPlain).digest("hex")
}

const textBody = (prefix: string, lines: number): Buffer =>
  Buffer.from(Array.from({ length: lines }, (_, i) => `${prefix} ${i}\n`).join(""))
const closeDelimitedBody = textBody("close-delimited line", 200)
const trailerBody = textBody("trailer body line", 200)
const trailerChecksum = createHash("sha256").update(trailerBody).digest("hex")

const okBody = Buffer.from("ok")
const unhealthyBody = Buffer.from("unhealthy")

// ---------- small helpers ----------

const headerValues = (raw: string[], name: string): string[] => {
  const out: string[] = []
  for (let i = 0; i < raw.length; i += 2) {
    const h = raw[i]
    if (h.length === name.length && h.toLowerCase() === name) out.push(raw[i + 1])
  }
  return out
}

const hasHeader = (raw: string[], name: string): boolean => {
  for (let i = 0; i < raw.length; i += 2) {
    const h = raw[i]
    if (h.length === name.length && h.toLowerCase() === name) return true
  }
  return false
}

const bearer = (value: string): string | undefined =>
  value.length > 7 && value.slice(0, 7).toLowerCase() === "bearer " ? value.slice(7).trim() : undefined

const safeDecode = (s: string): string => {
  try {
    return decodeURIComponent(s)
  } catch {
    return s
  }
}

const queryParams = (query: string): URLSearchParams => new URLSearchParams(query)

const intParam = (q: URLSearchParams, name: string, def: number): number => {
  const v = q.get(name)
  if (v === null || v === "") return def
  const n = Number(v)
  return Number.isFinite(n) && n >= 0 ? Math.floor(n) : def
}

const jsonHeaders = (len: number, extra?: Headers): Headers => ({
  "content-type": "application/json",
  "content-length": len,
  ...extra
})

const sendBuffer = (res: Out, status: number, headers: Headers, body: Buffer | undefined): void => {
  res.writeHead(status, headers)
  res.end(body)
}

const sendJson = (res: Out, status: number, body: Buffer, extra?: Headers): void =>
  sendBuffer(res, status, jsonHeaders(body.length, extra), body)

const sendText = (res: Out, status: number, text: string | Buffer, head = false): void => {
  const body = typeof text === "string" ? Buffer.from(text) : text
  sendBuffer(
    res,
    status,
    { "content-type": "text/plain; charset=utf-8", "content-length": body.length },
    head ? undefined : body
  )
}

const readBody = (req: In, cb: (body: Buffer) => void): void => {
  const chunks: Buffer[] = []
  let n = 0
  req.on("data", (c: Buffer) => {
    chunks.push(c)
    n += c.length
  })
  req.on("end", () => cb(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, n)))
  req.on("error", noop)
}

const MODEL_KEY = Buffer.from('"model"')
const STREAM_KEY = Buffer.from('"stream"')

/** The top-level-looking `"model": "..."` string without parsing the whole body (hot path). */
const sniffModel = (body: Buffer): string | undefined => {
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
const inspect = (body: Buffer, defaultModel: string, full: boolean): ApiRequest | undefined => {
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
const cached = (make: (model: string) => Buffer, extra: Headers) => {
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

const OPENAI_EXTRA: Headers = { "x-request-id": "req_mock", "openai-processing-ms": "1" }
const ANTHROPIC_EXTRA: Headers = { "request-id": "req_mock" }
const SSE_HEADERS: Headers = { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache" }

const chatCached = cached(F.chatCompletion, OPENAI_EXTRA)
const responsesCached = cached(F.responsesResponse, OPENAI_EXTRA)
const messageCached = cached(F.anthropicMessage, ANTHROPIC_EXTRA)
const geminiCached = cached(F.geminiResponse, {})

/** Writes SSE events (each its own write, so each is flushed) then ends; optional spacing for tests. */
const writeEvents = (res: Out, headers: Headers, events: string[], intervalMs: number): void => {
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

const refuseUpgrade = (socket: Duplex, status: number, body: Buffer, contentType: string): void => {
  const reason = http.STATUS_CODES[status] ?? "Unknown"
  socket.write(
    `HTTP/1.1 ${status} ${reason}\r\ncontent-type: ${contentType}\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n`
  )
  socket.end(body)
}

const embeddingCount = (input: unknown): number => {
  if (typeof input === "string") return 1
  if (!Array.isArray(input) || input.length === 0) return 0
  return typeof input[0] === "number" ? 1 : input.length
}

// ---------- the server ----------

const keySet = (k: string | ReadonlyArray<string>): ReadonlySet<string> => new Set(typeof k === "string" ? [k] : k)

export const startMockProvider = (opts: MockOptions = {}): Promise<MockProvider> => {
  const keys = {
    openai: keySet(opts.keys?.openai ?? DEFAULT_KEYS.openai),
    anthropic: keySet(opts.keys?.anthropic ?? DEFAULT_KEYS.anthropic),
    gemini: keySet(opts.keys?.gemini ?? DEFAULT_KEYS.gemini)
  }
  const faults = new Faults()
  if (opts.faults !== undefined) faults.add(opts.faults)
  const host = opts.host ?? "127.0.0.1"
  const record = opts.record !== false
  const received: RecordedRequest[] = []
  const sockets = new Set<net.Socket>()
  const sessions = new Set<http2.ServerHttp2Session>()
  const pendingReleases = new Set<string>()
  const gateWaiters = new Map<string, Set<() => void>>()

  const release = (gate: string): void => {
    const waiters = gateWaiters.get(gate)
    if (waiters === undefined || waiters.size === 0) {
      pendingReleases.add(gate)
      return
    }
    gateWaiters.delete(gate)
    for (const w of waiters) w()
  }

  /** Calls `go` once `gate` is released; returns a canceller. */
  const waitGate = (gate: string, go: () => void): (() => void) => {
    if (pendingReleases.delete(gate)) {
      go()
      return noop
    }
    let set = gateWaiters.get(gate)
    if (set === undefined) {
      set = new Set()
      gateWaiters.set(gate, set)
    }
    set.add(go)
    const s = set
    return () => {
      s.delete(go)
    }
  }

  const recordRequest = (req: In, url: string): RecordedRequest | undefined => {
    if (!record) return undefined
    const rec: RecordedRequest = {
      method: req.method ?? "",
      path: url,
      httpVersion: req.httpVersion,
      rawHeaders: req.rawHeaders,
      bodyBytes: 0,
      bodySha256: EMPTY_SHA256,
      time: Date.now()
    }
    received.push(rec)
    return rec
  }

  // ----- auth -----

  const accepts = (set: ReadonlySet<string>, key: string | undefined): boolean => key !== undefined && set.has(key)

  const authOpenAI = (raw: string[]): string | undefined => {
    const values = headerValues(raw, "authorization")
    return values.length === 1 && accepts(keys.openai, bearer(values[0])) ? "authorization" : undefined
  }

  const authAnthropic = (raw: string[]): string | undefined => {
    const x = headerValues(raw, "x-api-key")
    const a = headerValues(raw, "authorization")
    if (x.length + a.length !== 1) return undefined
    if (x.length === 1) return accepts(keys.anthropic, x[0]) ? "x-api-key" : undefined
    return accepts(keys.anthropic, bearer(a[0])) ? "authorization" : undefined
  }

  const authGemini = (raw: string[], q: URLSearchParams): string | undefined => {
    const x = headerValues(raw, "x-goog-api-key")
    const k = q.getAll("key")
    if (x.length + k.length !== 1) return undefined
    if (x.length === 1) return accepts(keys.gemini, x[0]) ? "x-goog-api-key" : undefined
    return accepts(keys.gemini, k[0]) ? "query" : undefined
  }

  /** The provider key a request presents as `family` reads it (first found), valid or not; for counts and faults. */
  const presentedKey = (family: Family, raw: string[], q: URLSearchParams): string | undefined => {
    if (family === "gemini") return headerValues(raw, "x-goog-api-key")[0] ?? q.get("key") ?? undefined
    if (family === "anthropic") {
      const x = headerValues(raw, "x-api-key")[0]
      if (x !== undefined) return x
    }
    const a = headerValues(raw, "authorization")[0]
    return a === undefined ? undefined : bearer(a)
  }

  /** For paths several APIs share (/v1/models): guess the family from the credential headers. */
  const familyOf = (raw: string[], q: URLSearchParams): Family => {
    if (hasHeader(raw, "x-goog-api-key") || q.has("key")) return "gemini"
    if (hasHeader(raw, "x-api-key") || hasHeader(raw, "anthropic-version")) return "anthropic"
    return "openai"
  }

  const authenticate = (
    family: Family,
    req: In,
    res: Out,
    q: URLSearchParams,
    rec: RecordedRequest | undefined
  ): boolean => {
    const key = presentedKey(family, req.rawHeaders, q)
    faults.count(key)
    const how =
      family === "openai"
        ? authOpenAI(req.rawHeaders)
        : family === "anthropic"
          ? authAnthropic(req.rawHeaders)
          : authGemini(req.rawHeaders, q)
    if (how !== undefined) {
      if (rec) rec.auth = how
      const fault = faults.take(req.url ?? "/", key)
      return fault === undefined || !applyFault(fault, family, req, res)
    }
    req.resume()
    if (family === "openai") sendJson(res, 401, F.openaiAuthError)
    else if (family === "anthropic") sendJson(res, 401, F.anthropicAuthError)
    else sendJson(res, 401, F.geminiAuthError)
    return false
  }

  const badRequest = (res: Out, message: string): void => sendJson(res, 400, F.jsonError(message))
  const notFound = (res: Out, method: string, path: string): void =>
    sendJson(res, 404, F.jsonError(`Unknown endpoint: ${method} ${path}`, "not_found_error"))
  const methodNotAllowed = (req: In, res: Out): void => {
    req.resume()
    sendJson(res, 405, F.jsonError(`Method not allowed: ${req.method}`))
  }

  const streamInterval = (req: In): number => {
    const v = req.headers["x-mock-stream-interval-ms"]
    const n = typeof v === "string" ? Number(v) : 0
    return Number.isFinite(n) && n > 0 ? n : 0
  }

  const mockUsage = (req: In): MockUsage | undefined => {
    const v = req.headers["x-mock-usage"]
    return parseMockUsage(typeof v === "string" ? v : undefined)
  }

  /** An API's JSON answer, encoded when the client asked the mock to (`x-mock-content-encoding`). */
  const sendApi = (req: In, res: Out, body: Buffer, extra: Headers): void => {
    const coding = req.headers["x-mock-content-encoding"]
    if (coding !== "gzip" && coding !== "deflate" && coding !== "br") {
      sendBuffer(res, 200, jsonHeaders(body.length, extra), body)
      return
    }
    const encoded = coding === "gzip" ? gzipSync(body) : coding === "br" ? brotliCompressSync(body) : deflateSync(body)
    sendBuffer(res, 200, jsonHeaders(encoded.length, { ...extra, "content-encoding": coding }), encoded)
  }

  /** Whether a JSON answer must be built for this request rather than taken from the per-model cache. */
  const custom = (req: In): boolean =>
    req.headers["x-mock-usage"] !== undefined || req.headers["x-mock-content-encoding"] !== undefined

  // ----- provider endpoints -----

  const openaiChat = (req: In, res: Out): void =>
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
      const includeUsage =
        so !== null && typeof so === "object" && (so as Record<string, unknown>).include_usage === true
      writeEvents(res, SSE_HEADERS, F.chatCompletionStream(r.model, includeUsage, usage), streamInterval(req))
    })

  const openaiResponses = (req: In, res: Out): void =>
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

  const openaiEmbeddings = (req: In, res: Out): void =>
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

  const anthropicMessages = (req: In, res: Out): void =>
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

  const gemini = (req: In, res: Out, rest: string, q: URLSearchParams, rec: RecordedRequest | undefined): void => {
    const colon = rest.indexOf(":")
    if (colon < 0) {
      if (req.method !== "GET") {
        methodNotAllowed(req, res)
        return
      }
      if (!authenticate("gemini", req, res, q, rec)) return
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
    if (!authenticate("gemini", req, res, q, rec)) return
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

  const models = (
    req: In,
    res: Out,
    id: string | undefined,
    q: URLSearchParams,
    rec: RecordedRequest | undefined
  ): void => {
    if (req.method !== "GET" && req.method !== "HEAD") {
      methodNotAllowed(req, res)
      return
    }
    const family = familyOf(req.rawHeaders, q)
    if (!authenticate(family, req, res, q, rec)) return
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

  // ----- test endpoints -----

  const upload = (req: In, res: Out): void => {
    const hash = createHash("sha256")
    let n = 0
    req.on("data", (c: Buffer) => {
      n += c.length
      hash.update(c)
    })
    req.on("end", () => sendJson(res, 200, Buffer.from(JSON.stringify({ bytes: n, sha256: hash.digest("hex") }))))
    req.on("error", noop)
  }

  const download = (req: In, res: Out, q: URLSearchParams): void => {
    req.resume()
    const n = intParam(q, "bytes", 0)
    const seed = intParam(q, "seed", 0)
    res.writeHead(200, { "content-type": "application/octet-stream", "content-length": n })
    if (req.method === "HEAD") {
      res.end()
      return
    }
    pipeline(deterministicStream(n, seed), res, noop)
  }

  const echo = (req: In, res: Out): void => {
    const headers: Headers = { "content-type": req.headers["content-type"] ?? "application/octet-stream" }
    const len = req.headers["content-length"]
    if (len !== undefined) headers["content-length"] = len
    res.writeHead(200, headers)
    pipeline(req, res, noop)
  }

  const sseTest = (req: In, res: Out, q: URLSearchParams): void => {
    req.resume()
    const n = intParam(q, "events", 3)
    const interval = intParam(q, "interval_ms", 0)
    const gate = q.get("gate")
    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" })
    let i = 0
    let timer: NodeJS.Timeout | undefined
    let cancelGate = noop
    let closed = false
    res.on("close", () => {
      closed = true
      clearTimeout(timer)
      cancelGate()
    })
    const schedule = (): void => {
      if (interval > 0) timer = setTimeout(send, interval)
      else setImmediate(send)
    }
    const send = (): void => {
      if (closed) return
      if (i >= n) {
        res.end()
        return
      }
      res.write(`data: {"i":${i}}\n\n`)
      i++
      if (i === 1 && gate) cancelGate = waitGate(gate, schedule)
      else schedule()
    }
    send()
  }

  const status = (req: In, res: Out, q: URLSearchParams): void => {
    req.resume()
    const code = intParam(q, "code", 200)
    if (code < 200 || code > 599) {
      badRequest(res, "code must be 200..599")
      return
    }
    if (code === 204 || code === 304) {
      res.writeHead(code, {})
      res.end()
      return
    }
    sendText(res, code, `status ${code}\n`, req.method === "HEAD")
  }

  const closeDelimited = (req: In, res: Out): void => {
    req.resume()
    if (res instanceof http.ServerResponse) {
      // No content-length, no chunking: the body ends when the connection closes.
      res.useChunkedEncodingByDefault = false
      res.shouldKeepAlive = false
      res.writeHead(200, { "content-type": "text/plain; charset=utf-8", connection: "close" })
      const half = closeDelimitedBody.length >> 1
      res.write(closeDelimitedBody.subarray(0, half))
      setImmediate(() => res.end(closeDelimitedBody.subarray(half)))
      return
    }
    // HTTP/2 has no close-delimited framing: the stream end delimits the body.
    res.writeHead(200, { "content-type": "text/plain; charset=utf-8" })
    res.end(closeDelimitedBody)
  }

  const trailers = (req: In, res: Out): void => {
    req.resume()
    res.writeHead(200, { "content-type": "text/plain; charset=utf-8", trailer: "x-checksum" })
    res.write(trailerBody)
    res.addTrailers({ "x-checksum": trailerChecksum })
    res.end()
  }

  const headersEcho = (req: In, res: Out, url: string): void => {
    req.resume()
    sendJson(
      res,
      200,
      Buffer.from(
        JSON.stringify({ method: req.method, path: url, httpVersion: req.httpVersion, rawHeaders: req.rawHeaders })
      )
    )
  }

  // ----- request dispatch -----

  /** `/__faults` (GET lists, POST adds a rule or a list, DELETE clears) and `/__counts` (GET, DELETE resets). */
  const control = (req: In, res: Out, path: string): void => {
    const reply = (body: unknown): void => sendJson(res, 200, Buffer.from(JSON.stringify(body)))
    if (path === "/__counts") {
      req.resume()
      if (req.method === "DELETE") faults.resetCounts()
      else if (req.method !== "GET") return methodNotAllowed(req, res)
      return reply(faults.counts())
    }
    if (req.method === "GET") {
      req.resume()
      return reply({ faults: faults.list() })
    }
    if (req.method === "DELETE") {
      req.resume()
      faults.clear()
      return reply({ faults: [] })
    }
    if (req.method !== "POST") return methodNotAllowed(req, res)
    readBody(req, (body) => {
      const rules = parseFaultRules(body.toString("utf8"))
      if (typeof rules === "string") return badRequest(res, rules)
      faults.add(rules)
      reply({ faults: faults.list() })
    })
  }

  const onRequest = (req: In, res: Out): void => {
    const url = req.url ?? "/"
    if (url === "/__faults" || url === "/__counts") {
      req.on("error", noop)
      res.on("error", noop)
      control(req, res, url)
      return
    }
    const rec = recordRequest(req, url)
    if (rec !== undefined) {
      // Hash while the handler consumes the body (a second 'data' listener, attached in the same tick).
      const hash = createHash("sha256")
      req.on("data", (c: Buffer) => {
        rec.bodyBytes += c.length
        hash.update(c)
      })
      req.on("end", () => {
        rec.bodySha256 = hash.digest("hex")
      })
    }
    req.on("error", noop)
    res.on("error", noop)
    const qi = url.indexOf("?")
    const path = qi < 0 ? url : url.slice(0, qi)
    const q = queryParams(qi < 0 ? "" : url.slice(qi + 1))
    const method = req.method ?? ""
    const post = method === "POST"
    const get = method === "GET" || method === "HEAD"
    /** A POST API endpoint: method, then the family's credential, then the handler. */
    const api = (family: Family, handler: (req: In, res: Out) => void): void => {
      if (!post) methodNotAllowed(req, res)
      else if (authenticate(family, req, res, q, rec)) handler(req, res)
    }

    switch (path) {
      case "/v1/chat/completions":
        api("openai", openaiChat)
        return
      case "/v1/responses":
        api("openai", openaiResponses)
        return
      case "/v1/embeddings":
        api("openai", openaiEmbeddings)
        return
      case "/v1/messages":
        api("anthropic", anthropicMessages)
        return
      case "/v1/messages/count_tokens":
        api("anthropic", () => {
          req.resume()
          sendJson(res, 200, F.anthropicCountTokens)
        })
        return
      case "/v1/models":
        models(req, res, undefined, q, rec)
        return
      case "/v1beta/models":
        if (!get) {
          methodNotAllowed(req, res)
          return
        }
        if (!authenticate("gemini", req, res, q, rec)) return
        req.resume()
        sendJson(res, 200, F.geminiModelList)
        return
      case "/health":
        req.resume()
        sendText(res, 200, okBody, method === "HEAD")
        return
      case "/__health_fail":
        req.resume()
        sendText(res, 503, unhealthyBody, method === "HEAD")
        return
      case "/__upload":
        upload(req, res)
        return
      case "/__download":
        download(req, res, q)
        return
      case "/__echo":
        echo(req, res)
        return
      case "/__sse":
        sseTest(req, res, q)
        return
      case "/__release": {
        req.resume()
        const gate = q.get("gate")
        if (!gate) {
          badRequest(res, "gate is required")
          return
        }
        release(gate)
        sendJson(res, 200, Buffer.from(JSON.stringify({ released: gate })))
        return
      }
      case "/__status":
        status(req, res, q)
        return
      case "/__gzip":
        req.resume()
        sendBuffer(res, 200, gzipHeaders, method === "HEAD" ? undefined : gzipBody)
        return
      case "/__hang":
        req.resume()
        return
      case "/__close_delimited":
        closeDelimited(req, res)
        return
      case "/__trailers":
        trailers(req, res)
        return
      case "/__headers":
        headersEcho(req, res, url)
        return
    }
    if (path.startsWith("/v1beta/models/")) {
      gemini(req, res, path.slice(15), q, rec)
      return
    }
    if (path.startsWith("/v1/models/")) {
      const rest = path.slice(11)
      if (rest.includes(":")) {
        gemini(req, res, rest, q, rec)
        return
      }
      models(req, res, safeDecode(rest), q, rec)
      return
    }
    req.resume()
    notFound(res, method, path)
  }

  // ----- WebSocket -----

  /** The first offered subprotocol that is not a key (the key subprotocol is never echoed back). */
  const handleProtocols = (protocols: Set<string>): string | false => {
    for (const p of protocols) if (!p.startsWith("openai-insecure-api-key.")) return p
    return false
  }

  const wss = new WebSocketServer({
    noServer: true,
    perMessageDeflate: true,
    maxPayload: MAX_PAYLOAD,
    handleProtocols
  })

  const wssCompressAll = new WebSocketServer({
    noServer: true,
    perMessageDeflate: { threshold: 0 },
    maxPayload: MAX_PAYLOAD,
    handleProtocols
  })

  const echoSocket = (ws: WebSocket): void => {
    ws.on("message", (data: RawData, isBinary: boolean) => ws.send(data, { binary: isBinary }))
    ws.on("error", noop)
  }

  /** With usage figures, `response.create` is answered by a response (F.realtimeResponse) instead of an echo. */
  const realtimeSocket = (ws: WebSocket, model: string, usage?: MockUsage, fragment = 0, repeat = 1): void => {
    let responses = 0
    ws.on("error", noop)
    ws.send(
      JSON.stringify({
        type: "session.created",
        event_id: "event_mock_session",
        session: {
          id: "sess_mock",
          object: "realtime.session",
          model,
          modalities: ["text"],
          instructions: "",
          voice: "alloy",
          output_audio_format: "pcm16"
        }
      })
    )
    ws.on("message", (data: RawData) => {
      let event: unknown
      try {
        event = JSON.parse(data.toString())
      } catch {
        ws.send(JSON.stringify({ type: "error", error: { type: "invalid_request_error", message: "invalid JSON" } }))
        return
      }
      if (
        usage !== undefined &&
        event !== null &&
        typeof event === "object" &&
        (event as Record<string, unknown>).type === "response.create"
      ) {
        const events = F.realtimeResponse(++responses, usage, repeat)
        const done = events.pop() ?? ""
        for (const e of events) ws.send(e)
        sendFragmented(ws, Buffer.from(done), fragment)
        return
      }
      ws.send(JSON.stringify({ type: "echo", event }))
    })
  }

  /** A text message in `size`-byte fragments (0: one frame). */
  const sendFragmented = (ws: WebSocket, data: Buffer, size: number): void => {
    if (size <= 0 || size >= data.length) {
      ws.send(data, { binary: false })
      return
    }
    for (let i = 0; i < data.length; i += size) {
      ws.send(data.subarray(i, i + size), { binary: false, fin: i + size >= data.length })
    }
  }

  const onUpgrade = (req: http.IncomingMessage, socket: Duplex, head: Buffer): void => {
    socket.on("error", noop)
    const url = req.url ?? "/"
    const rec = recordRequest(req, url)
    const qi = url.indexOf("?")
    const path = qi < 0 ? url : url.slice(0, qi)
    const q = queryParams(qi < 0 ? "" : url.slice(qi + 1))
    if (path === "/ws" || path === "/v1/realtime") {
      // Counted and failed on command like the HTTP APIs (the realtime key is read from either of its places).
      const offered = (req.headers["sec-websocket-protocol"] ?? "").split(",").map((s) => s.trim())
      const sub = offered.find((p) => p.startsWith("openai-insecure-api-key."))
      const key = path === "/ws" ? undefined : (presentedKey("openai", req.rawHeaders, q) ?? sub?.slice(24))
      faults.count(key)
      const fault = faults.take(path, key)
      if (fault !== undefined && applyUpgradeFault(fault, path === "/ws" ? undefined : "openai", socket)) return
    }
    if (path === "/ws") {
      const refuse = intParam(q, "refuse", 0)
      if (refuse >= 200 && refuse <= 599) {
        refuseUpgrade(socket, refuse, Buffer.from(`upgrade refused with ${refuse}\n`), "text/plain; charset=utf-8")
        return
      }
      wss.handleUpgrade(req, socket, head, echoSocket)
      return
    }
    if (path === "/v1/realtime") {
      let how = authOpenAI(req.rawHeaders)
      if (how === undefined) {
        const offered = (req.headers["sec-websocket-protocol"] ?? "").split(",").map((s) => s.trim())
        const prefix = "openai-insecure-api-key."
        const keyed = offered.filter((p) => p.startsWith(prefix))
        if (
          keyed.length === 1 &&
          keys.openai.has(keyed[0].slice(prefix.length)) &&
          headerValues(req.rawHeaders, "authorization").length === 0
        ) {
          how = "subprotocol"
        }
      }
      if (how === undefined) {
        refuseUpgrade(socket, 401, F.openaiAuthError, "application/json")
        return
      }
      if (rec) rec.auth = how
      const model = q.get("model") ?? "gpt-realtime"
      const header = req.headers["x-mock-usage"]
      const usage = parseMockUsage(typeof header === "string" ? header : q.get("mock_usage"))
      // Sessions with usage compress every message the client lets it (threshold 0), so a tap sees deflate.
      const server = usage === undefined ? wss : wssCompressAll
      server.handleUpgrade(req, socket, head, (ws) =>
        realtimeSocket(ws, model, usage, intParam(q, "mock_fragment", 0), Math.max(1, intParam(q, "mock_repeat", 1)))
      )
      return
    }
    refuseUpgrade(socket, 404, F.jsonError(`Unknown endpoint: ${path}`, "not_found_error"), "application/json")
  }

  // ----- server -----

  const handler = (
    req: http.IncomingMessage | http2.Http2ServerRequest,
    res: http.ServerResponse | http2.Http2ServerResponse
  ): void => {
    try {
      onRequest(req, res)
    } catch (err) {
      // A mock bug must not kill the test run: answer 500 (or drop the response if it has begun).
      if (res.headersSent) res.destroy()
      else sendText(res, 500, `mock error: ${err instanceof Error ? err.message : String(err)}\n`)
    }
  }

  let server: http.Server | https.Server | http2.Http2Server | http2.Http2SecureServer
  const h2settings: http2.Settings = { initialWindowSize: 4 * 1024 * 1024 }
  if (opts.http2) {
    server = opts.tls
      ? http2.createSecureServer({ ...opts.tls, allowHTTP1: true, settings: h2settings }, handler)
      : http2.createServer({ settings: h2settings }, handler)
    server.on("session", (s: http2.ServerHttp2Session) => {
      sessions.add(s)
      s.on("close", () => sessions.delete(s))
      s.on("error", noop)
      try {
        s.setLocalWindowSize(16 * 1024 * 1024)
      } catch {
        // not fatal: default window
      }
    })
  } else {
    server = opts.tls ? https.createServer(opts.tls, handler) : http.createServer(handler)
  }
  if (server instanceof http.Server) {
    server.keepAliveTimeout = 60_000
  }
  server.on("connection", (s: net.Socket) => {
    sockets.add(s)
    s.on("close", () => sockets.delete(s))
    s.on("error", noop)
  })
  server.on("upgrade", onUpgrade)
  server.on("clientError", (_err: Error, socket: Duplex) => socket.destroy())
  server.on("tlsClientError", noop)

  return new Promise((resolve, reject) => {
    server.once("error", reject)
    server.listen(opts.port ?? 0, host, () => {
      server.off("error", reject)
      server.on("error", noop)
      const addr = server.address() as net.AddressInfo
      const port = addr.port
      const scheme = opts.tls ? "https" : "http"
      const hostPart = host.includes(":") ? `[${host}]` : host
      const close = (): Promise<void> =>
        new Promise<void>((done) => {
          server.close(() => done())
          for (const c of wss.clients) c.terminate()
          for (const c of wssCompressAll.clients) c.terminate()
          wss.close()
          wssCompressAll.close()
          for (const s of sessions) s.destroy()
          for (const s of sockets) s.destroy()
          gateWaiters.clear()
        })
      resolve({
        port,
        url: `${scheme}://${hostPart}:${port}`,
        received,
        release,
        fail: (rules) => faults.add(Array.isArray(rules) ? rules : [rules as FaultRule]),
        clearFaults: () => faults.clear(),
        counts: () => faults.counts(),
        reset: () => {
          received.length = 0
          pendingReleases.clear()
          faults.clear()
          faults.resetCounts()
        },
        close
      })
    })
  })
}
