// The mock provider's WebSocket endpoints: `/ws` (echo, or a refusal on `?refuse=`) and `/v1/realtime` (OpenAI's
// realtime API: key by header or subprotocol, a session, echo or usage-bearing responses), both counted and failed
// on command like the HTTP APIs.
import type http from "node:http"
import type { Duplex } from "node:stream"
import { type RawData, type WebSocket, WebSocketServer } from "ws"
import { applyUpgradeFault } from "./faults.js"
import * as F from "./fixtures.js"
import { headerValues, intParam, MAX_PAYLOAD, noop, queryParams, refuseUpgrade } from "./http.js"
import type { MockState } from "./state.js"
import { type MockUsage, parseMockUsage } from "./usage.js"

/** The upgrade handler of a mock, and how to close its WebSockets. */
export const makeUpgradeHandler = (mock: MockState) => {
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
  const realtimeSocket = (
    ws: WebSocket,
    model: string,
    usage?: MockUsage,
    fragment = 0,
    repeat = 1,
    hold = 0
  ): void => {
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
        // `mock_hold=N`: the N-th response never ends (no response.done), as a session closed mid-response
        if (responses === hold) return
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
    const rec = mock.recordRequest(req, url)
    const qi = url.indexOf("?")
    const path = qi < 0 ? url : url.slice(0, qi)
    const q = queryParams(qi < 0 ? "" : url.slice(qi + 1))
    if (path === "/ws" || path === "/v1/realtime") {
      // Counted and failed on command like the HTTP APIs (the realtime key is read from either of its places).
      const offered = (req.headers["sec-websocket-protocol"] ?? "").split(",").map((s) => s.trim())
      const sub = offered.find((p) => p.startsWith("openai-insecure-api-key."))
      const key = path === "/ws" ? undefined : (mock.presentedKey("openai", req.rawHeaders, q) ?? sub?.slice(24))
      mock.faults.count(key)
      const fault = mock.faults.take(path, key)
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
      let how = mock.authOpenAI(req.rawHeaders)
      if (how === undefined) {
        const offered = (req.headers["sec-websocket-protocol"] ?? "").split(",").map((s) => s.trim())
        const prefix = "openai-insecure-api-key."
        const keyed = offered.filter((p) => p.startsWith(prefix))
        if (
          keyed.length === 1 &&
          mock.keys.openai.has(keyed[0].slice(prefix.length)) &&
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
        realtimeSocket(
          ws,
          model,
          usage,
          intParam(q, "mock_fragment", 0),
          Math.max(1, intParam(q, "mock_repeat", 1)),
          intParam(q, "mock_hold", 0)
        )
      )
      return
    }
    refuseUpgrade(socket, 404, F.jsonError(`Unknown endpoint: ${path}`, "not_found_error"), "application/json")
  }

  const close = (): void => {
    for (const c of wss.clients) c.terminate()
    for (const c of wssCompressAll.clients) c.terminate()
    wss.close()
    wssCompressAll.close()
  }
  return { onUpgrade, close }
}
