// Reference row, not a competitor: the leanest proxy that can be written on openproxy's own stack (node:http
// server, undici `Pool.dispatch` with the core callback handler, raw header arrays, one Authorization swap, the
// small request body gathered into one Buffer, backpressure on the reply), with the V8 flags openproxy's bin ships
// with (the harness starts it with --single-threaded-gc, as the openproxy bin runs). No routing, no config, no
// logging, no metrics, no Effect. It shows how close openproxy is to the floor of node:http + undici.
// Usage: node bench/proxies/lean-floor.mjs PORT UPSTREAM_PORT
import http from "node:http"
import { Pool } from "undici"

const [port, upstreamPort] = process.argv.slice(2).map(Number)
const upstreamHost = `127.0.0.1:${upstreamPort}`
const pool = new Pool(`http://${upstreamHost}`, { connect: { noDelay: true } })
const DROP = new Set(["host", "connection", "keep-alive", "authorization"])

const server = http.createServer({ noDelay: true, keepAliveTimeout: 300_000 }, (req, res) => {
  if (req.headers.authorization !== "Bearer sk-bench") {
    res.writeHead(401, { "content-type": "text/plain" })
    res.end("authentication failed")
    return
  }
  const chunks = []
  req.on("data", (c) => chunks.push(c))
  req.on("end", () => {
    const raw = req.rawHeaders
    const headers = []
    for (let i = 0; i < raw.length; i += 2) {
      if (DROP.has(raw[i].toLowerCase())) continue
      headers.push(raw[i], raw[i + 1])
    }
    headers.push("host", upstreamHost, "authorization", "Bearer sk-upstream")
    let resume = null
    const onDrain = () => resume?.()
    pool.dispatch(
      {
        path: req.url,
        method: req.method,
        headers,
        body: chunks.length === 1 ? chunks[0] : Buffer.concat(chunks)
      },
      {
        onConnect() {},
        onHeaders(status, rawRes, r) {
          resume = r
          const out = []
          for (let i = 0; i < rawRes.length; i += 2) {
            const name = rawRes[i].toString("latin1")
            const lower = name.toLowerCase()
            if (lower === "connection" || lower === "keep-alive") continue
            out.push(name, rawRes[i + 1].toString("latin1"))
          }
          res.sendDate = false
          res.writeHead(status, out)
          return true
        },
        onData(chunk) {
          if (res.write(chunk)) return true
          res.once("drain", onDrain)
          return false
        },
        onComplete() {
          res.end()
        },
        onError() {
          if (res.headersSent) res.destroy()
          else {
            res.statusCode = 502
            res.end()
          }
        }
      }
    )
  })
})
server.listen(port, "127.0.0.1")
process.on("SIGTERM", () => process.exit(0))
