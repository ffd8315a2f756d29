// Connect-and-close (what an L4 load balancer's TCP health check does every few seconds, forever) must cost
// nothing once the connection is gone (issue 10, defect 2): 3,000 connections, then 3,000 more, heap measured
// after a full GC in this process (the proxy runs in it) once each batch's timers have all run out.
import * as net from "node:net"
import * as v8 from "node:v8"
import { runInNewContext } from "node:vm"
import { afterAll, beforeAll, expect, it } from "vitest"
import { type CountingUpstream, startCountingUpstream } from "./support/countingUpstream.js"
import { h1 } from "./support/http.js"
import { type RunningProxy, startProxy } from "./support/proxy.js"

let up: CountingUpstream
let proxy: RunningProxy
beforeAll(async () => {
  up = await startCountingUpstream()
  proxy = await startProxy(`
http_port: 0
http_bind_address: 127.0.0.1
timeouts: { client_header: 1 }
providers:
  - { type: forward, host: "m.test", endpoint: "127.0.0.1:${up.port}", tls: false }
`)
})
afterAll(async () => {
  await proxy?.close()
  await up?.close()
})

v8.setFlagsFromString("--expose-gc")
const gc = runInNewContext("gc") as () => void
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

const connectAndClose = (port: number) =>
  new Promise<void>((resolve) => {
    const s = net.connect(port, "127.0.0.1", () => s.end())
    s.on("close", () => resolve())
    s.on("error", () => resolve())
  })

const batch = async (n: number) => {
  let i = 0
  const lane = async () => {
    while (i++ < n) await connectAndClose(proxy.httpPort!)
  }
  await Promise.all(Array.from({ length: 25 }, lane))
  // Past every per-connection timer a closed connection could still have: client_header (1 s) here, and the
  // fixed 10 s first-bytes timer of the code before issue 10.
  await sleep(10_500)
}

const settledHeap = async () => {
  for (let i = 0; i < 4; i++) {
    gc()
    await sleep(20)
  }
  return process.memoryUsage()
}

it("3,000 connect-and-close, then 3,000 more: no heap growth per connection", async () => {
  await batch(300) // warm-up: code paths compiled, pools made
  const m0 = await settledHeap()
  await batch(3_000)
  const m1 = await settledHeap()
  await batch(3_000)
  const m2 = await settledHeap()
  const perConn = (m2.heapUsed - m0.heapUsed) / 6_000
  // growth per connection in bytes, for the record (docs/hardening.md)
  process.stdout.write(
    `leak: heap ${(m0.heapUsed / 2 ** 20).toFixed(1)} → ${(m1.heapUsed / 2 ** 20).toFixed(1)} → ${(m2.heapUsed / 2 ** 20).toFixed(1)} MiB, ` +
      `rss ${(m0.rss / 2 ** 20).toFixed(1)} → ${(m1.rss / 2 ** 20).toFixed(1)} → ${(m2.rss / 2 ** 20).toFixed(1)} MiB, ` +
      `${perConn.toFixed(0)} B/connection\n`
  )
  expect(perConn).toBeLessThan(200)
  expect(m2.heapUsed - m1.heapUsed).toBeLessThan(1.5 * 2 ** 20)
  // and the proxy still serves
  expect((await h1(proxy.httpPort!, { host: "m.test" })).status).toBe(200)
}, 60_000)
