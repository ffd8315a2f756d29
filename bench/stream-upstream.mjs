// Fallback streaming upstream for scenarios 4 and 5, used only when the project's mock (dist/mock.js) is not built:
// GET /__sse?events=N&interval_ms=M streams `data: {"i":k}\n\n` events; /ws and /v1/realtime accept WebSockets
// and echo messages. Usage: node bench/stream-upstream.mjs --port PORT
import http from "node:http"
import { WebSocketServer } from "ws"

const port = Number(process.argv[process.argv.indexOf("--port") + 1])

const server = http.createServer((req, res) => {
  const url = new URL(req.url, "http://x")
  if (url.pathname === "/__sse") {
    const events = Number(url.searchParams.get("events") ?? 10)
    const interval = Number(url.searchParams.get("interval_ms") ?? 10)
    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" })
    res.flushHeaders()
    let i = 0
    const tick = () => {
      res.write(`data: {"i":${i}}\n\n`)
      i++
      if (i >= events) res.end()
      else timer = setTimeout(tick, interval)
    }
    let timer = setTimeout(tick, 0)
    res.on("close", () => clearTimeout(timer))
    return
  }
  req.resume()
  req.on("end", () => {
    res.writeHead(200, { "content-type": "application/json" })
    res.end('{"ok":true}')
  })
})
server.keepAliveTimeout = 300_000

const wss = new WebSocketServer({ noServer: true })
server.on("upgrade", (req, socket, head) => {
  const { pathname } = new URL(req.url, "http://x")
  if (pathname !== "/ws" && pathname !== "/v1/realtime") {
    socket.destroy()
    return
  }
  wss.handleUpgrade(req, socket, head, (ws) => {
    ws.on("message", (data, isBinary) => ws.send(data, { binary: isBinary }))
  })
})

server.listen(port, "127.0.0.1")
process.on("SIGTERM", () => process.exit(0))
