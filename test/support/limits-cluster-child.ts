// A real node:cluster program for test/limits-cluster.test.ts (bundled by the test with esbuild, run with node): the
// primary serves the limits engine over the cluster IPC channel (src/limits/cluster.ts), two workers call it
// through a Limiter, and the primary prints one JSON line with what happened.
import cluster, { type Worker } from "node:cluster"
import { serveClusterLimits } from "../../src/limits/cluster.js"
import { openLimiter } from "../../src/limits/open.js"
import type { Reservation } from "../../src/limits/types.js"

type Msg = { readonly type: string; readonly [k: string]: unknown }

const scenario = process.env.LIMITS_SCENARIO ?? "requests"

const worker = async () => {
  // In a worker, the memory store is the primary's (openLimiter picks clusterStore).
  const limiter = await openLimiter({ store: "memory", onStoreError: "closed" })
  const tell = (m: Msg) => process.send?.(m)
  const next = () => new Promise<Msg>((resolve) => process.once("message", (m: Msg) => resolve(m)))
  if (scenario === "requests") {
    const spec = { requestsPerMinute: 100, tokensPerMinute: 1_000_000 }
    const all = await Promise.all(Array.from({ length: 150 }, () => limiter.admit("team", spec, 100)))
    let admitted = 0
    for (const a of all) {
      if (a._tag !== "Admitted") continue
      admitted++
      await limiter.settle(a.reservation, 7)
    }
    const tags = [...new Set(all.map((a) => a._tag))].join(",")
    tell({ type: "result", admitted, tags })
    process.disconnect()
    return
  }
  // concurrency
  const spec = { concurrentRequests: 3 }
  const role = process.env.LIMITS_ROLE
  if (role === "holder") {
    for (let i = 0; i < 3; i++) {
      const a = await limiter.admit("k", spec, 0)
      if (a._tag !== "Admitted") throw new Error(`holder refused: ${a._tag}`)
    }
    tell({ type: "held" })
    await next()
    process.exit(1) // a crash: three slots held, never settled
  }
  const first = await limiter.admit("k", spec, 0)
  tell({ type: "fourth", tag: first._tag })
  await next()
  const held: Array<Reservation> = []
  for (let i = 0; i < 3; i++) {
    const a = await limiter.admit("k", spec, 0)
    if (a._tag !== "Admitted") throw new Error(`refused after the crash: ${a._tag}`)
    held.push(a.reservation)
  }
  let refusedFourth = 0
  for (let i = 0; i < 100; i++) {
    if (i % 2 === 0) await limiter.settle(held[i % 3], 5)
    else await limiter.release(held[i % 3])
    const a = await limiter.admit("k", spec, 0)
    if (a._tag !== "Admitted") throw new Error(`refused after an abort: ${a._tag}`)
    held[i % 3] = a.reservation
    if ((await limiter.admit("k", spec, 0))._tag === "Refused") refusedFourth++
  }
  for (const r of held) await limiter.settle(r, 0)
  const [usage] = await limiter.inspect([{ name: "k", spec }])
  tell({ type: "result", refusedFourth, concurrent: usage.concurrentRequests.used })
  process.disconnect()
}

const primary = async () => {
  const server = serveClusterLimits()
  const fork = (env: Record<string, string>) => cluster.fork({ ...process.env, ...env })
  const message = (w: Worker, type: string) =>
    new Promise<Msg>((resolve) => {
      const on = (m: Msg) => {
        if (m.type !== type) return
        w.removeListener("message", on)
        resolve(m)
      }
      w.on("message", on)
    })
  const exit = (w: Worker) => new Promise<number | null>((resolve) => w.once("exit", (code) => resolve(code)))
  const out: Record<string, unknown> = {}
  if (scenario === "requests") {
    const ws = [fork({}), fork({})]
    const exits = ws.map(exit)
    const results = await Promise.all(ws.map((w) => message(w, "result")))
    out.admitted = results.map((r) => r.admitted)
    out.tags = results.map((r) => r.tags)
    out.exitCodes = await Promise.all(exits)
    out.window = server.engine.inspect("team", Date.now())
  } else {
    const holder = fork({ LIMITS_ROLE: "holder" })
    await message(holder, "held")
    const other = fork({ LIMITS_ROLE: "other" })
    out.fourth = (await message(other, "fourth")).tag
    out.openBeforeCrash = server.open()
    const gone = exit(holder)
    holder.send({ type: "crash" })
    out.holderExit = await gone
    out.openAfterCrash = server.open()
    out.concurrentAfterCrash = server.engine.inspect("k", Date.now()).concurrent
    other.send({ type: "go" })
    const otherExit = exit(other)
    const r = await message(other, "result")
    out.refusedFourth = r.refusedFourth
    out.concurrentSeenByWorker = r.concurrent
    out.otherExit = await otherExit
    out.openAtEnd = server.open()
  }
  server.close()
  process.stdout.write(`${JSON.stringify(out)}\n`)
}

if (cluster.isPrimary) {
  primary().catch((e) => {
    process.stderr.write(`${e instanceof Error ? e.stack : e}\n`)
    process.exit(2)
  })
} else {
  worker().catch((e) => {
    process.stderr.write(`${e instanceof Error ? e.stack : e}\n`)
    process.exit(3)
  })
}
