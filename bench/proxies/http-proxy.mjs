// Benchmark target (d): the `http-proxy` package as a user would set it up — a keep-alive agent to the upstream,
// the client key checked and swapped for the upstream key. Usage: node bench/proxies/http-proxy.mjs PORT UPSTREAM_PORT
import http from "node:http"
import httpProxy from "http-proxy"

// Optional third argument: the agent's socket limit (0: none). Scenario 6 holds up to 1,500 streams open at once.
const [port, upstreamPort, maxSockets = 256] = process.argv.slice(2).map(Number)
const agent = new http.Agent({ keepAlive: true, maxSockets: maxSockets || Number.POSITIVE_INFINITY })
const proxy = httpProxy.createProxyServer({ target: `http://127.0.0.1:${upstreamPort}`, agent })

proxy.on("proxyReq", (proxyReq) => {
  proxyReq.setHeader("authorization", "Bearer sk-upstream")
})
proxy.on("error", (_err, _req, res) => {
  if (res.writeHead && !res.headersSent) res.writeHead(502, { "content-type": "text/plain" })
  res.end?.()
})

const server = http.createServer((req, res) => {
  if (req.headers.authorization !== "Bearer sk-bench") {
    res.writeHead(401, { "content-type": "text/plain" })
    res.end("authentication failed")
    return
  }
  proxy.web(req, res)
})
server.keepAliveTimeout = 300_000
server.listen(port, "127.0.0.1")
process.on("SIGTERM", () => process.exit(0))
