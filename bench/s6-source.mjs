// Scenario 6 source: a fast SSE upstream that holds thousands of streams at a low CPU cost. A request for
// `/v1/chat/completions?events=E&interval_ms=I` gets E OpenAI chat-completion chunks (~120 bytes each, the last
// one carrying `usage`), I ms apart, then `data: [DONE]`. Each event's id carries its sequence number and its send
// time (`s6-<seq>-<µs of CLOCK_MONOTONIC>`, the clock `process.hrtime` reads, shared by every process on the host),
// so the client can compute the delay each event picks up on the way.
// Cheap by design: raw sockets with hand-written chunked framing (one write per event), and one 1 ms timer for
// all streams: a wheel of I slots (one per ms of the interval), each tick writes to the streams of the slots due.
// `GET /__s6stats` answers { sent, started, completed, aborted, active } for the harness.
// Usage: node bench/s6-source.mjs --port PORT
import net from "node:net"
import { performance } from "node:perf_hooks"

const port = Number(process.argv[process.argv.indexOf("--port") + 1])
const MAX_INTERVAL = 10_000

const stats = { sent: 0, started: 0, completed: 0, aborted: 0, active: 0 }
const HEAD =
  "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n" +
  "transfer-encoding: chunked\r\n\r\n"
// An event is ~130 bytes of SSE text (a 10-digit send time, a 1–4 digit sequence), plus the chunk framing.
const PRE = 'data: {"id":"s6-'
const MID = '","object":"chat.completion.chunk","model":"gpt-4o","choices":[{"index":0,'
const CONTENT = '"delta":{"content":" tok"}}]}\n\n'
const FINAL = (n) =>
  `"delta":{},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":${n},"total_tokens":${n + 12}}}\n\n` +
  "data: [DONE]\n\n"

const chunk = (text) => `${text.length.toString(16)}\r\n${text}\r\n`
const nowUs = () => Number(process.hrtime.bigint() / 1000n)

// The wheel: slot s holds the streams whose events are due at every ms ≡ s (mod their interval). Streams of
// different intervals get wheels of their own.
const wheels = new Map() // interval -> Array<Array<stream>>
let lastMs = Math.floor(performance.now())

const wheelFor = (interval) => {
  let w = wheels.get(interval)
  if (!w) {
    w = Array.from({ length: interval }, () => [])
    wheels.set(interval, w)
  }
  return w
}

const sendOne = (st) => {
  const seq = st.next++
  const id = `${PRE}${seq}-${nowUs()}${MID}`
  const last = st.next >= st.events
  const text = last ? chunk(id + FINAL(st.events)) + "0\r\n\r\n" : chunk(id + CONTENT)
  st.sock.write(text)
  stats.sent++
  if (last) {
    st.done = true
    stats.completed++
    stats.active--
    st.conn.busy = false
    st.conn.drain()
  }
}

const tick = () => {
  const now = Math.floor(performance.now())
  if (now <= lastMs) return
  // At most one lap of each wheel per tick: a source that falls behind sends late, it never bursts.
  const from = Math.max(lastMs + 1, now - MAX_INTERVAL)
  for (const [interval, w] of wheels) {
    const first = Math.max(from, now - interval + 1)
    for (let m = first; m <= now; m++) {
      const slot = w[m % interval]
      for (let i = 0; i < slot.length; ) {
        const st = slot[i]
        if (!st.done) sendOne(st)
        if (st.done) {
          // swap-remove
          slot[i] = slot[slot.length - 1]
          slot.pop()
        } else i++
      }
    }
  }
  lastMs = now
}
setInterval(tick, 1)

const startStream = (conn, events, interval) => {
  const st = { sock: conn.sock, conn, events, next: 0, done: false }
  conn.busy = true
  conn.stream = st
  stats.started++
  stats.active++
  conn.sock.write(HEAD)
  wheelFor(interval)[(lastMs + 1) % interval].push(st)
}

const respond = (conn, status, body) => {
  conn.sock.write(
    `HTTP/1.1 ${status}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`
  )
}

const handle = (conn, head) => {
  const line = head.slice(0, head.indexOf("\r\n"))
  const target = line.split(" ")[1] ?? "/"
  const q = target.indexOf("?")
  const path = q < 0 ? target : target.slice(0, q)
  const params = new URLSearchParams(q < 0 ? "" : target.slice(q + 1))
  if (path === "/__s6stats") return respond(conn, "200 OK", JSON.stringify(stats))
  if (path !== "/v1/chat/completions") return respond(conn, "404 Not Found", '{"error":"not found"}')
  const events = Math.max(1, Number(params.get("events") ?? 10) | 0)
  const interval = Math.min(MAX_INTERVAL, Math.max(1, Number(params.get("interval_ms") ?? 50) | 0))
  startStream(conn, events, interval)
}

const server = net.createServer({ noDelay: true }, (sock) => {
  sock.setEncoding("latin1")
  // One request at a time per connection (keep-alive, no pipelining while a stream runs).
  const conn = { sock, buf: "", need: -1, head: "", busy: false, stream: null }
  conn.drain = () => {
    for (;;) {
      if (conn.busy) return
      if (conn.need < 0) {
        const end = conn.buf.indexOf("\r\n\r\n")
        if (end < 0) return
        conn.head = conn.buf.slice(0, end + 4)
        conn.buf = conn.buf.slice(end + 4)
        const m = /\r\ncontent-length:\s*(\d+)/i.exec(conn.head)
        conn.need = m ? Number(m[1]) : 0
      }
      if (conn.buf.length < conn.need) return
      conn.buf = conn.buf.slice(conn.need)
      conn.need = -1
      handle(conn, conn.head)
    }
  }
  sock.on("data", (d) => {
    conn.buf += d
    conn.drain()
  })
  sock.on("close", () => {
    const st = conn.stream
    if (st && !st.done) {
      st.done = true
      stats.aborted++
      stats.active--
    }
  })
  sock.on("error", () => {})
})
server.listen(port, "127.0.0.1")
process.on("SIGTERM", () => process.exit(0))
