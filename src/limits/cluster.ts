// The memory store shared by the `workers: N` of one host: the engine lives in the node:cluster primary and the
// workers call it over the cluster IPC channel. An admission is one round trip (request, reply); a settlement is one
// message without a reply (the channel keeps order, so the worker's next admission already sees it). The primary
// keeps each worker's open reservations: when a worker exits (crash or drain), its concurrency slots are freed and
// its token reservations keep their estimates, so no slot leaks.
//
// Wiring (src/lifecycle/primary.ts): `const limits = serveClusterLimits()` before forking, `limits.close()` when the
// primary ends; in each worker, `clusterStore()` instead of `memoryStore()`.
import cluster, { type Worker } from "node:cluster"
import { type MemoryEngine as Engine, MemoryEngine, type MemoryReservation } from "./memory.js"
import type { Counts, LimitName, LimitSpec, LimitStore, Reservation, StoreAdmission } from "./types.js"

const TYPE = "openproxy:limits"

type Request =
  | {
      readonly type: typeof TYPE
      readonly op: "admit"
      readonly id: number
      readonly key: string
      readonly spec: LimitSpec
      readonly estimate: number
      readonly now: number
    }
  | { readonly type: typeof TYPE; readonly op: "settle"; readonly rid: number; readonly exact: number }
  | {
      readonly type: typeof TYPE
      readonly op: "inspect"
      readonly id: number
      readonly key: string
      readonly now: number
    }

type Reply =
  | {
      readonly type: typeof TYPE
      readonly id: number
      readonly admitted: boolean
      readonly rid: number
      readonly limit: LimitName | null
      readonly retryAfterMs: number
      readonly counts: Counts
    }
  | { readonly type: typeof TYPE; readonly id: number; readonly counts: Counts; readonly admitted?: undefined }

const isOurs = (m: unknown): boolean => typeof m === "object" && m !== null && (m as { type?: unknown }).type === TYPE

export interface ClusterLimitsServer {
  readonly engine: Engine
  /** Open reservations held by live workers (for tests and diagnostics). */
  readonly open: () => number
  readonly close: () => void
}

/** In the primary: serves the engine to every worker, present and future (upgrades fork new ones). */
export const serveClusterLimits = (engine: Engine = new MemoryEngine()): ClusterLimitsServer => {
  /** worker id → reservation id → reservation. */
  const held = new Map<number, Map<number, Reservation>>()
  let nextRid = 1
  const send = (worker: Worker, reply: Reply) => {
    if (!worker.isConnected()) return
    try {
      worker.send(reply)
    } catch {
      // The worker is going away: its reservations are released on exit.
    }
  }
  const onMessage = (worker: Worker, raw: unknown) => {
    if (!isOurs(raw)) return
    const m = raw as Request
    if (m.op === "admit") {
      const a: StoreAdmission = engine.admit(m.key, m.spec, m.estimate, m.now)
      if (!a.admitted) {
        send(worker, {
          type: TYPE,
          id: m.id,
          admitted: false,
          rid: 0,
          limit: a.limit,
          retryAfterMs: a.retryAfterMs,
          counts: a.counts
        })
        return
      }
      // Only a request-rate limit applied: nothing to settle (rid 0 tells the worker not to send a settlement).
      const r = a.reservation as MemoryReservation
      if (!r.concurrent && r.tokenSeq < 0 && r.dayNeed < 0 && r.monthNeed < 0) {
        send(worker, { type: TYPE, id: m.id, admitted: true, rid: 0, limit: null, retryAfterMs: 0, counts: a.counts })
        return
      }
      const rid = nextRid++
      let mine = held.get(worker.id)
      if (mine === undefined) {
        mine = new Map()
        held.set(worker.id, mine)
      }
      mine.set(rid, a.reservation)
      send(worker, { type: TYPE, id: m.id, admitted: true, rid, limit: null, retryAfterMs: 0, counts: a.counts })
    } else if (m.op === "settle") {
      const mine = held.get(worker.id)
      const r = mine?.get(m.rid)
      if (r === undefined) return
      mine?.delete(m.rid)
      engine.settle(r, m.exact)
    } else if (m.op === "inspect") {
      send(worker, { type: TYPE, id: m.id, counts: engine.inspect(m.key, m.now) })
    }
  }
  const onExit = (worker: Worker) => {
    const mine = held.get(worker.id)
    held.delete(worker.id)
    if (mine === undefined) return
    for (const r of mine.values()) engine.settle(r, (r as MemoryReservation).estimate)
  }
  cluster.on("message", onMessage)
  cluster.on("exit", onExit)
  return {
    engine,
    open: () => {
      let n = 0
      for (const m of held.values()) n += m.size
      return n
    },
    close: () => {
      cluster.removeListener("message", onMessage)
      cluster.removeListener("exit", onExit)
    }
  }
}

interface ClusterReservation extends Reservation {
  readonly rid: number
}

interface Pending {
  readonly resolve: (reply: Reply) => void
  readonly reject: (e: Error) => void
  readonly timer: NodeJS.Timeout
}

/** In a worker: the store whose counts live in the primary. `timeoutMs` bounds a call (default 1 s). */
export const clusterStore = (options: { readonly timeoutMs?: number } = {}): LimitStore => {
  const timeoutMs = options.timeoutMs ?? 1000
  const pending = new Map<number, Pending>()
  let nextId = 1
  let listening = false
  const onReply = (raw: unknown) => {
    if (!isOurs(raw)) return
    const m = raw as Reply
    const p = pending.get(m.id)
    if (p === undefined) return
    forget(m.id, p)
    p.resolve(m)
  }
  const forget = (id: number, p: Pending) => {
    clearTimeout(p.timer)
    pending.delete(id)
  }
  const post = (message: Request): Promise<void> =>
    new Promise((resolve, reject) => {
      if (typeof process.send !== "function" || !process.connected) {
        reject(new Error("no IPC channel to the cluster primary"))
        return
      }
      try {
        process.send(message, undefined, {}, (e: Error | null) => (e ? reject(e) : resolve()))
      } catch (e) {
        reject(e instanceof Error ? e : new Error(String(e)))
      }
    })
  const call = (make: (id: number) => Request): Promise<Reply> =>
    new Promise((resolve, reject) => {
      const id = nextId++
      const timer = setTimeout(() => {
        const p = pending.get(id)
        if (p !== undefined) forget(id, p)
        reject(new Error(`limits call to the cluster primary timed out after ${timeoutMs} ms`))
      }, timeoutMs)
      if (!listening) {
        listening = true
        process.on("message", onReply)
      }
      const p: Pending = { resolve, reject, timer }
      pending.set(id, p)
      post(make(id)).catch((e: Error) => {
        forget(id, p)
        reject(e)
      })
    })

  return {
    admit: async (key, spec, estimate, now) => {
      const r = await call((id) => ({ type: TYPE, op: "admit", id, key, spec, estimate, now }))
      if (r.admitted === true) {
        const reservation: ClusterReservation = { key, done: false, rid: r.rid }
        return { admitted: true, reservation, counts: r.counts }
      }
      if (r.admitted === false && r.limit !== null) {
        return { admitted: false, limit: r.limit, retryAfterMs: r.retryAfterMs, counts: r.counts }
      }
      throw new Error("unexpected reply from the cluster primary")
    },
    settle: (reservation, exact) => {
      const r = reservation as ClusterReservation
      if (r.done) return Promise.resolve()
      r.done = true
      if (r.rid === 0) return Promise.resolve()
      return post({ type: TYPE, op: "settle", rid: r.rid, exact })
    },
    inspect: async (key, now) => (await call((id) => ({ type: TYPE, op: "inspect", id, key, now }))).counts,
    close: () => Promise.resolve()
  }
}
