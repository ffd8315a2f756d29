// Scenario 4 client: opens N server-sent-event streams one after another over raw sockets and measures time to first
// event, total time (to the last event), and whether events arrived batched (one socket read holding several
// events). Each reply is read to its end (the last chunk) before the socket closes, as the SDKs do: a client that
// leaves earlier makes a proxy cancel the upstream request, which is what a cancelled generation should cost.
// Usage: node bench/sse-client.mjs --port P [--host NAME] [--n 20] [--events 200] [--interval 5] [--key K] [--timeout-ms 15000]
// Prints one JSON line: { ttfe_us: [...], total_us: [...], reads_single, reads_multi, multi_at: [{ stream, event,
// events, gap_ms }], events, errors }.
import net from "node:net"

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`)
  return i > 0 ? process.argv[i + 1] : dflt
}
const port = Number(arg("port"))
const host = arg("host", `127.0.0.1:${port}`)
const n = Number(arg("n", 20))
const events = Number(arg("events", 200))
const interval = Number(arg("interval", 5))
const timeoutMs = Number(arg("timeout-ms", 15000))
const key = arg("key", "sk-bench")
const path = `/__sse?events=${events}&interval_ms=${interval}`

const countOf = (s, needle) => {
  let c = 0
  let i = s.indexOf(needle)
  while (i >= 0) {
    c++
    i = s.indexOf(needle, i + needle.length)
  }
  return c
}

/** One stream: resolves { ttfe_us, total_us, reads_single, reads_multi, events } or rejects. */
const stream = () =>
  new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint()
    const sock = net.connect({ port, host: "127.0.0.1", noDelay: true })
    let head = ""
    let inBody = false
    let tail = ""
    let seen = 0
    let ttfe = null
    let lastEvent = null
    let lastRead = null
    const multiAt = []
    let readsSingle = 0
    let readsMulti = 0
    let status = null
    const timer = setTimeout(() => {
      sock.destroy()
      reject(new Error(`timed out after ${seen} events`))
    }, timeoutMs)
    sock.setEncoding("latin1")
    sock.on("connect", () => {
      sock.write(
        `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nAuthorization: Bearer ${key}\r\nAccept: text/event-stream\r\n\r\n`
      )
    })
    sock.on("data", (chunk) => {
      const now = process.hrtime.bigint()
      let data = chunk
      if (!inBody) {
        head += chunk
        const end = head.indexOf("\r\n\r\n")
        if (end < 0) return
        status = Number(head.slice(9, 12))
        if (status !== 200) {
          clearTimeout(timer)
          sock.destroy()
          reject(new Error(`status ${status}`))
          return
        }
        inBody = true
        data = head.slice(end + 4)
      }
      // Count event payloads (`data: {"i":`) that completed in this read; robust to chunked framing and splits.
      const text = tail + data
      const found = countOf(text, '{"i":') - countOf(tail, '{"i":')
      tail = text.slice(-8)
      if (seen >= events) {
        // all events are in: read the reply to its end (the last chunk), as the SDKs do, then close
        if (text.endsWith("0\r\n\r\n")) finish()
        return
      }
      if (found === 0) return
      if (ttfe === null) ttfe = now
      if (found === 1) readsSingle++
      else {
        readsMulti++
        // where: the event index and how long since the previous read (a stall holds events back)
        multiAt.push({ event: seen, events: found, gap_ms: lastRead === null ? null : Number(now - lastRead) / 1e6 })
      }
      seen += found
      lastRead = now
      if (seen >= events) {
        lastEvent = now
        if (text.endsWith("0\r\n\r\n")) finish()
      }
    })
    const finish = () => {
      clearTimeout(timer)
      sock.destroy()
      resolve({
        ttfe_us: Number(ttfe - t0) / 1000,
        total_us: Number(lastEvent - t0) / 1000,
        reads_single: readsSingle,
        reads_multi: readsMulti,
        multi_at: multiAt,
        events: seen
      })
    }
    sock.on("error", (e) => {
      clearTimeout(timer)
      reject(e)
    })
    sock.on("close", () => {
      clearTimeout(timer)
      if (seen < events) reject(new Error(`closed after ${seen} events (status ${status})`))
      else finish()
    })
  })

const out = { ttfe_us: [], total_us: [], reads_single: 0, reads_multi: 0, multi_at: [], events: 0, errors: [] }
// One untimed stream first, so connection set-up and JIT warm-up do not land in the figures.
await stream().catch((e) => out.errors.push(`warm-up: ${e.message}`))
for (let i = 0; i < n; i++) {
  try {
    const r = await stream()
    out.ttfe_us.push(r.ttfe_us)
    out.total_us.push(r.total_us)
    out.reads_single += r.reads_single
    out.reads_multi += r.reads_multi
    for (const m of r.multi_at) out.multi_at.push({ stream: i + 1, ...m })
    out.events += r.events
  } catch (e) {
    out.errors.push(e.message)
  }
}
process.stdout.write(JSON.stringify(out) + "\n")
