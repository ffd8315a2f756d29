// Soak run (issue 10; not in CI): the built proxy in front of the mock provider under steady mixed traffic —
// JSON chat completions, SSE streams, WebSocket echoes (each a new WebSocket) and TCP connect-and-close — for a
// bounded time, sampling the proxy's RSS and open file descriptors every 10 s. Prints one line per sample and a
// summary: the first and last minute's means and the least-squares slope, the figures docs/hardening.md shows.
// Usage: npm run build && node bench/soak.mjs [--seconds 600] [--rate 50]   (at most 900 s; Linux /proc)
import fs from "node:fs"
import http from "node:http"
import net from "node:net"
import os from "node:os"
import path from "node:path"
import WebSocket from "ws"
import { freePort, sleep, startProc, stopAll, stopProc, waitUntil } from "./lib.mjs"

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`)
  return i > 0 ? process.argv[i + 1] : dflt
}
const seconds = Math.min(900, Number(arg("seconds", 600)))
/** Operations started per second, spread over the four kinds. */
const rate = Math.min(500, Number(arg("rate", 50)))
const root = path.resolve(import.meta.dirname, "..")
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "openproxy-soak-"))

const mockPort = await freePort()
const proxyPort = await freePort()
fs.writeFileSync(
  path.join(dir, "config.yml"),
  `http_port: ${proxyPort}
http_bind_address: 127.0.0.1
auth_keys: [sk-soak]
timeouts: { client_header: 5, idle: 30 }
providers:
  - { type: openai, host: "127.0.0.1", endpoint: "127.0.0.1:${mockPort}", tls: false, api_key: sk-mock-openai }
`
)
const mock = startProc("mock", [process.execPath, path.join(root, "dist/mock.js"), "--port", String(mockPort)], {
  logDir: dir
})
const proxy = startProc(
  "proxy",
  [process.execPath, path.join(root, "dist/main.js"), "start", "-c", path.join(dir, "config.yml")],
  { logDir: dir }
)
const stopEverything = async () => {
  await stopProc(proxy)
  await stopProc(mock)
  await stopAll()
}
process.on("SIGINT", () => void stopEverything().then(() => process.exit(130)))

const agent = new http.Agent({ keepAlive: true, maxSockets: 16 })
const headers = { host: `127.0.0.1:${proxyPort}`, authorization: "Bearer sk-soak", "content-type": "application/json" }
const post = (stream) =>
  new Promise((resolve) => {
    const body = JSON.stringify({ model: "gpt-4o-mini", stream, messages: [{ role: "user", content: "hi" }] })
    const req = http.request(
      { host: "127.0.0.1", port: proxyPort, method: "POST", path: "/v1/chat/completions", headers, agent },
      (res) => {
        res.resume()
        res.on("end", () => resolve(res.statusCode === 200))
        res.on("error", () => resolve(false))
      }
    )
    req.on("error", () => resolve(false))
    req.end(body)
  })
const websocket = () =>
  new Promise((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${proxyPort}/ws`, { headers: { authorization: "Bearer sk-soak" } })
    const timer = setTimeout(() => ws.terminate(), 10_000)
    ws.on("open", () => ws.send("ping soak"))
    ws.on("message", () => ws.close())
    ws.on("close", (code) => {
      clearTimeout(timer)
      resolve(code === 1000 || code === 1005)
    })
    ws.on("error", () => resolve(false))
  })
const connectAndClose = () =>
  new Promise((resolve) => {
    const s = net.connect(proxyPort, "127.0.0.1", () => s.end())
    s.on("close", () => resolve(true))
    s.on("error", () => resolve(false))
  })

const rss = () => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${proxy.pid}/status`, "utf8"))[1]) / 1024
const fds = () => fs.readdirSync(`/proc/${proxy.pid}/fd`).length

try {
  const ready = await waitUntil(
    () =>
      new Promise((resolve) => {
        const s = net.connect(proxyPort, "127.0.0.1", () => {
          s.destroy()
          resolve(true)
        })
        s.on("error", () => resolve(false))
      }),
    { proc: proxy }
  )
  if (!ready.ok) throw new Error(`proxy did not start: ${ready.reason}`)
  const kinds = [() => post(false), () => post(true), websocket, connectAndClose]
  const names = ["json", "sse", "websocket", "connect-close"]
  const counts = { ok: 0, failed: 0 }
  const failedBy = Object.fromEntries(names.map((k) => [k, 0]))
  let inflight = 0
  let n = 0
  const t0 = Date.now()
  const end = t0 + seconds * 1000
  const samples = []
  let nextSample = t0
  while (Date.now() < end) {
    if (Date.now() >= nextSample) {
      const s = { t: Math.round((Date.now() - t0) / 1000), rss: rss(), fds: fds(), ...counts, inflight }
      samples.push(s)
      console.log(
        `t=${s.t}s rss=${s.rss.toFixed(1)}MiB fds=${s.fds} ok=${s.ok} failed=${s.failed} inflight=${inflight}`
      )
      nextSample += 10_000
    }
    if (inflight < 200) {
      inflight++
      const kind = n++ % kinds.length
      kinds[kind]().then((ok) => {
        inflight--
        counts[ok ? "ok" : "failed"]++
        if (!ok) failedBy[names[kind]]++
      })
    }
    await sleep(1000 / rate)
  }
  while (inflight > 0 && Date.now() < end + 15_000) await sleep(100)
  const last = { t: Math.round((Date.now() - t0) / 1000), rss: rss(), fds: fds(), ...counts, inflight }
  samples.push(last)
  console.log(
    `t=${last.t}s rss=${last.rss.toFixed(1)}MiB fds=${last.fds} ok=${last.ok} failed=${last.failed} (drained)`
  )
  const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length
  // after the first minute (warm-up: JIT, pools, the allocator's first arenas)
  const steady = samples.filter((s) => s.t >= 60)
  const slope = (key) => {
    const xs = steady.map((s) => s.t / 60)
    const ys = steady.map((s) => s[key])
    const mx = mean(xs)
    const my = mean(ys)
    const num = xs.reduce((a, x, i) => a + (x - mx) * (ys[i] - my), 0)
    const den = xs.reduce((a, x) => a + (x - mx) ** 2, 0)
    return den === 0 ? Number.NaN : num / den
  }
  const firstMin = samples.filter((s) => s.t <= 60)
  const lastMin = samples.filter((s) => s.t >= last.t - 60)
  console.log(
    `summary: ${seconds}s at ${rate} ops/s, ${counts.ok} ok, ${counts.failed} failed ${JSON.stringify(failedBy)}; ` +
      `rss first minute ${mean(firstMin.map((s) => s.rss)).toFixed(1)} MiB, last minute ${mean(lastMin.map((s) => s.rss)).toFixed(1)} MiB, ` +
      `slope after the first minute ${slope("rss").toFixed(2)} MiB/min; fds first ${firstMin[0].fds}, last ${last.fds}, slope ${slope("fds").toFixed(2)}/min`
  )
} finally {
  await stopEverything()
}
