// Benchmark target (e): `@fastify/http-proxy` (undici underneath) with the client key checked and swapped for the
// upstream key. Usage: node bench/proxies/fastify-proxy.mjs PORT UPSTREAM_PORT
import proxy from "@fastify/http-proxy"
import Fastify from "fastify"

const [port, upstreamPort] = process.argv.slice(2).map(Number)
const app = Fastify({ logger: false, keepAliveTimeout: 300_000 })

app.addHook("onRequest", async (req, reply) => {
  if (req.headers.authorization !== "Bearer sk-bench") {
    reply.code(401).type("text/plain").send("authentication failed")
  }
})
app.register(proxy, {
  upstream: `http://127.0.0.1:${upstreamPort}`,
  replyOptions: {
    rewriteRequestHeaders: (_req, headers) => ({ ...headers, authorization: "Bearer sk-upstream" })
  }
})

await app.listen({ port, host: "127.0.0.1" })
process.on("SIGTERM", () => app.close().then(() => process.exit(0)))
