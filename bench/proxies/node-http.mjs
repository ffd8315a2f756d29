// Reference row, not a proxy: a node:http server that answers the benchmark's POST itself with the same 1 KiB
// JSON the nginx upstream returns (client key checked, body read, `sendDate = false`, `noDelay`), started with
// openproxy's V8 flags. It has no upstream, so it makes half the socket hops a proxy makes: what it shows is the
// floor of node:http itself on this machine, above all the latency tail at concurrency 1 (scenario 2).
// Usage: node bench/proxies/node-http.mjs PORT
import http from "node:http"
import { replyJson } from "../nginx.mjs"

const [port] = process.argv.slice(2).map(Number)
const body = Buffer.from(replyJson(1024))
const head = ["content-type", "application/json", "content-length", String(body.length)]

const server = http.createServer({ noDelay: true, keepAliveTimeout: 300_000 }, (req, res) => {
  res.sendDate = false
  if (req.headers.authorization !== "Bearer sk-bench") {
    res.writeHead(401, { "content-type": "text/plain" })
    res.end("authentication failed")
    return
  }
  req.on("data", () => undefined)
  req.on("end", () => {
    res.writeHead(200, head)
    res.end(body)
  })
})
server.listen(port, "127.0.0.1")
process.on("SIGTERM", () => process.exit(0))
