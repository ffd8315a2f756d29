// Scenario 6 client: opens N concurrent SSE streams through a target (raw sockets, spread over a ramp), reads every
// event and records the delay it picked up: receive time − the send time the source put in the event's id (both
// CLOCK_MONOTONIC µs, the same host clock). Once every stream is established it waits `--warm-ms`, prints
// `STEADY_START {...}`, records for `--steady-ms`, prints `STEADY_END {...}` (the harness reads CPU figures at those
// two lines), then reads every stream to its end and prints `RESULT {...}`:
// { n, established, failed, errors[], received, window: { events, p50_us, p99_us, max_us, ms }, gaps, streams_ended_early }.
// Usage: node bench/s6-client.mjs --port P [--host NAME] [--key K] --n N --events E --interval I
//        [--ramp-ms 1000] [--warm-ms 2000] [--steady-ms 15000]
import net from "node:net"

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`)
  return i > 0 ? process.argv[i + 1] : dflt
}
const port = Number(arg("port"))
const host = arg("host", `127.0.0.1:${port}`)
const key = arg("key", "sk-bench")
const n = Number(arg("n", 100))
const events = Number(arg("events", 100))
const interval = Number(arg("interval", 50))
const rampMs = Number(arg("ramp-ms", 1000))
const warmMs = Number(arg("warm-ms", 2000))
const steadyMs = Number(arg("steady-ms", 15000))

const nowUs = () => Number(process.hrtime.bigint() / 1000n)
const emit = (tag, obj) => process.stdout.write(`${tag} ${JSON.stringify(obj)}\n`)

const body = JSON.stringify({
  model: "gpt-4o-mini",
  stream: true,
  stream_options: { include_usage: true },
  messages: [{ role: "user", content: "Say something." }]
})
const REQ =
  `POST /v1/chat/completions?events=${events}&interval_ms=${interval} HTTP/1.1\r\nHost: ${host}\r\n` +
  `Authorization: Bearer ${key}\r\nContent-Type: application/json\r\nAccept: text/event-stream\r\n` +
  `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`

// Delays recorded in the steady window, µs (grown as needed).
let delays = new Float64Array(1 << 16)
let nDelays = 0
let windowFrom = Infinity
let windowTo = -Infinity
let received = 0
let gaps = 0
let established = 0
let failed = 0
let ended = 0
let endedEarly = 0
const errors = []
const MARK = '"id":"s6-'

const record = (d) => {
  if (nDelays === delays.length) {
    const grown = new Float64Array(delays.length * 2)
    grown.set(delays)
    delays = grown
  }
  delays[nDelays++] = d
}

/** Parses complete SSE events out of `text` (decoded body); returns the unparsed rest. */
const scanEvents = (st, text, now) => {
  let from = 0
  for (;;) {
    const end = text.indexOf("\n\n", from)
    if (end < 0) return text.slice(from)
    const i = text.indexOf(MARK, from)
    if (i >= 0 && i < end) {
      const a = i + MARK.length
      const dash = text.indexOf("-", a)
      const q = text.indexOf('"', dash)
      const seq = Number(text.slice(a, dash))
      const sent = Number(text.slice(dash + 1, q))
      if (seq !== st.seq) gaps++
      st.seq = seq + 1
      received++
      st.got++
      if (now >= windowFrom && now < windowTo) record(now - sent)
    }
    from = end + 2
  }
}

const finishStream = (st, why) => {
  if (st.finished) return
  st.finished = true
  ended++
  if (why) {
    if (!st.ok) {
      failed++
      settled()
    } else endedEarly++
    if (errors.length < 10) errors.push(why)
  }
  st.sock.destroy()
  if (ended === n) done()
}

const open = () => {
  const st = {
    sock: null,
    ok: false,
    head: "",
    chunked: false,
    raw: "",
    ev: "",
    size: -1,
    seq: 0,
    got: 0,
    finished: false
  }
  const sock = net.connect({ port, host: "127.0.0.1", noDelay: true })
  st.sock = sock
  sock.setEncoding("latin1")
  sock.on("connect", () => sock.write(REQ))
  sock.on("data", (d) => {
    const now = nowUs()
    if (!st.ok) {
      st.head += d
      const end = st.head.indexOf("\r\n\r\n")
      if (end < 0) return
      const status = Number(st.head.slice(9, 12))
      if (status !== 200) return finishStream(st, `status ${status}: ${st.head.slice(end + 4, end + 84)}`)
      st.ok = true
      st.chunked = /\r\ntransfer-encoding:\s*chunked/i.test(st.head.slice(0, end))
      d = st.head.slice(end + 4)
      st.head = ""
      established++
      settled()
    }
    if (!st.chunked) {
      st.ev = scanEvents(st, st.ev + d, now)
      return
    }
    // Chunked decoding: a proxy may re-frame the stream, even split an event across chunks.
    const raw = st.raw + d
    let p = 0
    for (;;) {
      if (st.size < 0) {
        const e = raw.indexOf("\r\n", p)
        if (e < 0) break
        st.size = Number.parseInt(raw.slice(p, e), 16)
        p = e + 2
        if (st.size === 0) {
          st.ev = scanEvents(st, st.ev, now)
          return finishStream(st, st.got < events ? `ended after ${st.got} of ${events} events` : null)
        }
      }
      if (raw.length - p < st.size + 2) break
      st.ev += raw.slice(p, p + st.size)
      p += st.size + 2
      st.size = -1
    }
    st.raw = raw.slice(p)
    st.ev = scanEvents(st, st.ev, now)
  })
  sock.on("error", (e) => finishStream(st, e.code ?? e.message))
  sock.on("close", () => finishStream(st, st.got < events ? `closed after ${st.got} of ${events} events` : null))
  return st
}

const t0 = nowUs()
const streams = []
// The ramp: batches every 10 ms so N streams open evenly over rampMs.
const batches = Math.max(1, Math.ceil(rampMs / 10))
const perBatch = Math.ceil(n / batches)
const ramp = setInterval(() => {
  for (let i = 0; i < perBatch && streams.length < n; i++) streams.push(open())
  if (streams.length >= n) clearInterval(ramp)
}, 10)

let steadyTimer = null
let windowArmed = false
/** Every stream is either established or failed: the steady window can start (if any stream is up). */
function settled() {
  if (windowArmed || established + failed < n || established === 0) return
  windowArmed = true
  emit("ESTABLISHED", { n, established, failed, ms: (nowUs() - t0) / 1000 })
  steadyTimer = setTimeout(() => {
    windowFrom = nowUs()
    windowTo = windowFrom + steadyMs * 1000
    emit("STEADY_START", { received })
    steadyTimer = setTimeout(() => emit("STEADY_END", { received }), steadyMs)
  }, warmMs)
}

// Every stream should end by itself after events × interval; give it generous slack, then report what came.
const deadline = setTimeout(
  () => {
    if (errors.length < 10) errors.push(`deadline: ${n - ended} streams still open`)
    for (const st of streams) finishStream(st, st.got < events ? `cut at deadline after ${st.got} events` : null)
    done()
  },
  rampMs + events * interval + 20000
)

let reported = false
function done() {
  if (reported) return
  reported = true
  clearTimeout(deadline)
  clearTimeout(steadyTimer)
  clearInterval(ramp)
  const v = delays.subarray(0, nDelays).sort()
  const pct = (p) => (nDelays === 0 ? null : v[Math.min(nDelays - 1, Math.max(0, Math.ceil((p / 100) * nDelays) - 1))])
  emit("RESULT", {
    n,
    established,
    failed: failed + (n - streams.length),
    streams_ended_early: endedEarly,
    received,
    expected: established * events,
    gaps,
    window: {
      events: nDelays,
      ms: windowTo > windowFrom ? (windowTo - windowFrom) / 1000 : null,
      p50_us: pct(50),
      p99_us: pct(99),
      max_us: nDelays ? v[nDelays - 1] : null
    },
    errors
  })
  process.exit(0)
}
