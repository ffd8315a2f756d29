// The mock provider's test routes: uploads, downloads, echo, gated SSE, status codes, close-delimited bodies,
// trailers, a header echo; and the control routes for failures on command (`/__faults`, `/__counts`).
import { createHash } from "node:crypto"
import http from "node:http"
import { pipeline } from "node:stream"
import { deterministicStream } from "./bytes.js"
import type { Exchange } from "./exchange.js"
import { parseFaultRules } from "./faults.js"
import {
  badRequest,
  closeDelimitedBody,
  type Headers,
  type In,
  intParam,
  methodNotAllowed,
  noop,
  type Out,
  readBody,
  sendJson,
  sendText,
  trailerBody,
  trailerChecksum
} from "./http.js"

export const upload = (req: In, res: Out): void => {
  const hash = createHash("sha256")
  let n = 0
  req.on("data", (c: Buffer) => {
    n += c.length
    hash.update(c)
  })
  req.on("end", () => sendJson(res, 200, Buffer.from(JSON.stringify({ bytes: n, sha256: hash.digest("hex") }))))
  req.on("error", noop)
}

export const download = (req: In, res: Out, q: URLSearchParams): void => {
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

export const echo = (req: In, res: Out): void => {
  const headers: Headers = { "content-type": req.headers["content-type"] ?? "application/octet-stream" }
  const len = req.headers["content-length"]
  if (len !== undefined) headers["content-length"] = len
  res.writeHead(200, headers)
  pipeline(req, res, noop)
}

export const sseTest = ({ req, res, q, mock }: Exchange): void => {
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
    if (i === 1 && gate) cancelGate = mock.waitGate(gate, schedule)
    else schedule()
  }
  send()
}

export const status = (req: In, res: Out, q: URLSearchParams): void => {
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

export const closeDelimited = (req: In, res: Out): void => {
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

export const trailers = (req: In, res: Out): void => {
  req.resume()
  res.writeHead(200, { "content-type": "text/plain; charset=utf-8", trailer: "x-checksum" })
  res.write(trailerBody)
  res.addTrailers({ "x-checksum": trailerChecksum })
  res.end()
}

export const headersEcho = (req: In, res: Out, url: string): void => {
  req.resume()
  sendJson(
    res,
    200,
    Buffer.from(
      JSON.stringify({ method: req.method, path: url, httpVersion: req.httpVersion, rawHeaders: req.rawHeaders })
    )
  )
}

/** `/__faults` (GET lists, POST adds a rule or a list, DELETE clears) and `/__counts` (GET, DELETE resets). */
export const control = ({ req, res, path, mock }: Exchange): void => {
  const { faults } = mock
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
