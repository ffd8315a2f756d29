// Mock LLM provider: one server that answers like OpenAI, Anthropic and Gemini (JSON and SSE,
// provider-shaped auth errors), plus test endpoints (uploads, downloads, echo, gated SSE, status
// codes, gzip, trailers, hangs, close-delimited bodies) and WebSocket echo / realtime endpoints.
// It records every request it receives so tests can check what the proxy forwarded.
// Control headers (docs/usage.md): `x-mock-usage` sets the usage figures every API answer reports (usage.ts),
// `x-mock-content-encoding: gzip|deflate|br` encodes the JSON answers, `x-mock-stream-interval-ms` spaces SSE
// events; on /v1/realtime, `x-mock-usage` (or `?mock_usage=`) makes `response.create` answer with a response
// and its `response.done` usage; `mock_fragment=N` sends response.done in N-byte fragments, `mock_repeat=N`
// makes the answer N times longer and `mock_hold=N` leaves the N-th response without its response.done.
// Failures on command (faults.ts, docs/retries.md): rules from `--fail`, `POST /__faults` or `fail()` make matching
// requests answer 429/503/529 in the provider's shape, reset, stall after the head or cut mid-stream; requests are
// counted per presented key (`GET /__counts`, `counts()`). Each family accepts one key or a list of keys.
// The parts: types.ts (options, records, handle), state.ts (keys, faults, records, gates, authentication),
// routes.ts (the route table) over api.ts and testRoutes.ts, websocket.ts, http.ts (helpers).
import { createHash } from "node:crypto"
import http from "node:http"
import http2 from "node:http2"
import https from "node:https"
import type net from "node:net"
import type { Duplex } from "node:stream"
import type { FaultRule } from "./faults.js"
import { type In, noop, type Out, queryParams, sendText } from "./http.js"
import { dispatch } from "./routes.js"
import { makeMockState } from "./state.js"
import { control } from "./testRoutes.js"
import type { MockOptions, MockProvider } from "./types.js"
import { makeUpgradeHandler } from "./websocket.js"

export { deterministicBytes, deterministicStream } from "./bytes.js"
export type { Counts, FaultRule } from "./faults.js"
export { DEFAULT_KEYS, type MockOptions, type MockProvider, type RecordedRequest } from "./types.js"

export const startMockProvider = (opts: MockOptions = {}): Promise<MockProvider> => {
  const mock = makeMockState(opts)
  const host = opts.host ?? "127.0.0.1"
  const sockets = new Set<net.Socket>()
  const sessions = new Set<http2.ServerHttp2Session>()
  const ws = makeUpgradeHandler(mock)

  const onRequest = (req: In, res: Out): void => {
    const url = req.url ?? "/"
    if (url === "/__faults" || url === "/__counts") {
      req.on("error", noop)
      res.on("error", noop)
      control({ req, res, url, path: url, q: queryParams(""), method: req.method ?? "", rec: undefined, mock })
      return
    }
    const rec = mock.recordRequest(req, url)
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
    dispatch({ req, res, url, path, q, method: req.method ?? "", rec, mock })
  }

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
  server.on("upgrade", ws.onUpgrade)
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
          ws.close()
          for (const s of sessions) s.destroy()
          for (const s of sockets) s.destroy()
          mock.gateWaiters.clear()
        })
      resolve({
        port,
        url: `${scheme}://${hostPart}:${port}`,
        received: mock.received,
        release: mock.release,
        fail: (rules) => mock.faults.add(Array.isArray(rules) ? rules : [rules as FaultRule]),
        clearFaults: () => mock.faults.clear(),
        counts: () => mock.faults.counts(),
        reset: () => {
          mock.received.length = 0
          mock.pendingReleases.clear()
          mock.faults.clear()
          mock.faults.resetCounts()
        },
        close
      })
    })
  })
}
