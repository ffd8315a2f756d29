// A small HTTP/1.1 upstream that counts what reaches it: TCP connections and requests. `/slow?ms=N` answers
// after N ms; `/headers` answers with the number of header fields it received; anything else reads the body
// and answers "ok".
import * as http from "node:http"
import type * as net from "node:net"

export interface CountingUpstream {
  readonly port: number
  readonly connections: () => number
  readonly requests: () => number
  readonly close: () => Promise<void>
}

export const startCountingUpstream = async (): Promise<CountingUpstream> => {
  let connections = 0
  let requests = 0
  const sockets = new Set<net.Socket>()
  const server = http.createServer({ maxHeaderSize: 1 << 20 }, (req, res) => {
    requests++
    const url = new URL(req.url ?? "/", "http://x")
    req.resume()
    req.on("end", () => {
      if (url.pathname === "/slow") {
        const t = setTimeout(() => res.end("slow ok"), Number(url.searchParams.get("ms") ?? 1000))
        res.on("close", () => clearTimeout(t))
        return
      }
      if (url.pathname === "/headers") return res.end(JSON.stringify({ count: req.rawHeaders.length / 2 }))
      res.end("ok")
    })
  })
  server.maxHeadersCount = 0
  server.on("connection", (s: net.Socket) => {
    connections++
    sockets.add(s)
    s.on("close", () => sockets.delete(s))
  })
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r))
  const a = server.address() as net.AddressInfo
  return {
    port: a.port,
    connections: () => connections,
    requests: () => requests,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy()
        server.close(() => r())
      })
  }
}
