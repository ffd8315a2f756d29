// Scenario 5 client: opens many idle connections to a proxy and holds them, so the proxy's RSS can be read.
// --mode http: raw keep-alive sockets, each sends one 1 KiB POST, reads the reply, then stays open idle.
// --mode ws: WebSockets (the `ws` package) to PATH, each exchanges one message, then stays open idle.
// Usage: node bench/conns.mjs --port P --n 10000 [--mode http|ws] [--host NAME] [--path /ws] [--key K] [--batch 250]
// Prints `READY {json}` when all are open (or failed); on a line `count` on stdin prints `COUNT {json}` with how
// many are still open; exits on stdin end or SIGTERM.
import fs from "node:fs"
import net from "node:net"
import readline from "node:readline"
import WebSocket from "ws"

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`)
  return i > 0 ? process.argv[i + 1] : dflt
}
const port = Number(arg("port"))
const n = Number(arg("n", 1000))
const mode = arg("mode", "http")
const host = arg("host", `127.0.0.1:${port}`)
const path = arg("path", mode === "ws" ? "/ws" : "/v1/chat/completions")
const batch = Number(arg("batch", 250))
const timeoutMs = Number(arg("timeout-ms", 10000))
const key = arg("key", "sk-bench")
const body = fs.readFileSync(new URL("./request.json", import.meta.url))

let open = 0
const held = []
const head = Buffer.from(
  `POST ${path} HTTP/1.1\r\nHost: ${host}\r\nAuthorization: Bearer ${key}\r\n` +
    `Content-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`
)

const openHttp = () =>
  new Promise((resolve) => {
    const sock = net.connect({ port, host: "127.0.0.1" })
    let got = ""
    let done = false
    const finish = (ok, why) => {
      if (done) return
      done = true
      clearTimeout(timer)
      resolve({ ok, why })
    }
    const timer = setTimeout(() => finish(false, "timeout"), timeoutMs)
    sock.on("connect", () => sock.write(Buffer.concat([head, body])))
    sock.setEncoding("latin1")
    sock.on("data", (d) => {
      if (done) return
      got += d
      const end = got.indexOf("\r\n\r\n")
      if (end < 0) return
      const status = got.slice(9, 12)
      if (status !== "200") return finish(false, `status ${status}`)
      const len = Number((got.slice(0, end).match(/content-length:\s*(\d+)/i) ?? [])[1])
      // Chunked replies end with 0\r\n\r\n; sized ones when the body is all there.
      if (Number.isFinite(len) ? got.length - end - 4 >= len : got.endsWith("0\r\n\r\n")) {
        open++
        held.push(sock)
        finish(true)
      }
    })
    sock.on("close", () => {
      if (done) open--
      finish(false, "closed")
    })
    sock.on("error", (e) => finish(false, e.code ?? e.message))
  })

const openWs = () =>
  new Promise((resolve) => {
    let done = false
    const ws = new WebSocket(`ws://127.0.0.1:${port}${path}`, {
      headers: { host, authorization: `Bearer ${key}` },
      perMessageDeflate: false
    })
    const finish = (ok, why) => {
      if (done) return
      done = true
      clearTimeout(timer)
      resolve({ ok, why })
    }
    const timer = setTimeout(() => {
      ws.terminate()
      finish(false, "timeout")
    }, timeoutMs)
    ws.on("open", () => {
      open++
      held.push(ws)
      ws.send('{"type":"ping"}')
      // The mock may or may not answer; an open socket is what is measured.
      finish(true)
    })
    ws.on("unexpected-response", (_req, res) => {
      finish(false, `status ${res.statusCode}`)
      res.destroy()
    })
    ws.on("close", () => {
      if (done && held.includes(ws)) open--
    })
    ws.on("error", (e) => finish(false, e.code ?? e.message))
  })

const reasons = {}
let failed = 0
const t0 = Date.now()
for (let i = 0; i < n; i += batch) {
  const results = await Promise.all(
    Array.from({ length: Math.min(batch, n - i) }, () => (mode === "ws" ? openWs() : openHttp()))
  )
  for (const r of results) {
    if (!r.ok) {
      failed++
      reasons[r.why] = (reasons[r.why] ?? 0) + 1
    }
  }
}
process.stdout.write(`READY ${JSON.stringify({ mode, requested: n, open, failed, reasons, ms: Date.now() - t0 })}\n`)

const rl = readline.createInterface({ input: process.stdin })
rl.on("line", (line) => {
  if (line.trim() === "count") process.stdout.write(`COUNT ${JSON.stringify({ open })}\n`)
})
rl.on("close", () => process.exit(0))
process.on("SIGTERM", () => process.exit(0))
