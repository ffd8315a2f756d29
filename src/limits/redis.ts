// The limits store for any number of replicas (`limits.store: redis`, SPEC §12): the counts live in Redis and every
// admission and settlement is one Lua script call (src/limits/lua.ts), so replicas share exact limits. Calls fail
// fast instead of waiting: no offline queue (a call while disconnected rejects at once), no retry of a call whose
// connection dropped, and `redis_timeout` (default 50 ms) per call; the Limiter turns a failure into the
// `on_store_error` policy. ioredis reconnects by itself, so limits resume without a restart when Redis is back.
// Concurrency slots are leases with a TTL that this process refreshes while its requests live: the slots of a
// crashed replica (or of a call that timed out here but ran there) expire after `leaseTtlMs`.
import { randomBytes } from "node:crypto"
import * as Redacted from "effect/Redacted"
import type { Redis, RedisOptions } from "ioredis"
import { admitLua, inspectLua, refreshLua, settleLua } from "./lua.js"
import type { Counts, LimitName, LimitSpec, LimitStore, Reservation, StoreAdmission } from "./types.js"

export interface RedisStoreOptions {
  /** `redis://[user:pass@]host:port/db` or `rediss://…`. */
  readonly url: Redacted.Redacted<string>
  /** Per call (`limits.redis_timeout`); default 50 ms. */
  readonly timeoutMs?: number
  /** How long a concurrency slot outlives its last refresh (a crashed replica's slots free after this); 30 s. */
  readonly leaseTtlMs?: number
  /** Prefix of every key; default `openproxy:limits:`. */
  readonly keyPrefix?: string
  /** Added to the Redis server's clock: 0 in production; tests move time forward with it. */
  readonly timeOffsetMs?: () => number
}

export interface RedisStore extends LimitStore {
  /** Resolves true once connected (false if not within `ms`); the store works either way once Redis answers. */
  readonly ready: (ms: number) => Promise<boolean>
  /** Extends the leases of this process's live requests now (also done every `leaseTtlMs / 3`). */
  readonly refreshLeases: () => Promise<void>
}

interface RedisReservation extends Reservation {
  readonly id: string
  readonly at: number
  readonly tokenNeed: number
  readonly day: number
  readonly dayNeed: number
  readonly month: number
  readonly monthNeed: number
  readonly concurrent: boolean
}

type Script = (...args: Array<string | number>) => Promise<unknown>
interface Scripted {
  readonly opLimitsAdmit: Script
  readonly opLimitsSettle: Script
  readonly opLimitsRefresh: Script
  readonly opLimitsInspect: Script
}

const LIMITS: ReadonlyArray<LimitName> = [
  "concurrent_requests",
  "requests_per_minute",
  "tokens_per_minute",
  "tokens_per_day",
  "tokens_per_month"
]

/** The URL without credentials, for log lines. */
export const describeRedisUrl = (url: Redacted.Redacted<string>): string => {
  try {
    const u = new URL(Redacted.value(url))
    return `${u.protocol}//${u.hostname}${u.port === "" ? "" : `:${u.port}`}${u.pathname === "/" ? "" : u.pathname}`
  } catch {
    return "redis (unparsable URL)"
  }
}

const lim = (n: number | undefined): number => (n === undefined ? -1 : n)

/** Connects (in the background) and returns the store at once: calls fail fast until Redis answers. */
export const redisStore = async (options: RedisStoreOptions): Promise<RedisStore> => {
  const { Redis: RedisClient } = await import("ioredis")
  const timeoutMs = options.timeoutMs ?? 50
  const leaseTtlMs = options.leaseTtlMs ?? 30_000
  const prefix = options.keyPrefix ?? "openproxy:limits:"
  const offset = options.timeOffsetMs ?? (() => 0)
  const redisOptions: RedisOptions = {
    commandTimeout: timeoutMs,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    connectTimeout: Math.max(1000, timeoutMs),
    // Keeps trying (every 0.1 s … 1 s) for as long as the process runs: limits resume when Redis is back.
    retryStrategy: (times) => Math.min(times * 100, 1000)
  }
  const client: Redis = new RedisClient(Redacted.value(options.url), redisOptions)
  // Connection errors surface through the calls (and the Limiter's transition log); without a listener ioredis
  // would print each reconnect failure.
  client.on("error", () => undefined)
  client.defineCommand("opLimitsAdmit", { numberOfKeys: 5, lua: admitLua })
  client.defineCommand("opLimitsSettle", { numberOfKeys: 4, lua: settleLua })
  client.defineCommand("opLimitsRefresh", { numberOfKeys: 1, lua: refreshLua })
  client.defineCommand("opLimitsInspect", { numberOfKeys: 5, lua: inspectLua })
  const scripts = client as unknown as Scripted
  // A Redis that restarted has an empty script cache: load the scripts on every (re)connection, so the first calls
  // are EVALSHA hits instead of a NOSCRIPT and an EVAL (two round trips, which can exceed the time-out).
  client.on("ready", () => {
    for (const lua of [admitLua, settleLua, refreshLua, inspectLua]) client.script("LOAD", lua).catch(() => undefined)
  })

  const instance = randomBytes(6).toString("base64url")
  let counter = 0
  /** Live reservations holding a concurrency lease, by client key. */
  const leases = new Map<string, Set<string>>()

  const k = (key: string) => {
    const base = `${prefix}{${key}}:`
    return { r: `${base}r`, t: `${base}t`, ts: `${base}ts`, c: `${base}c`, b: `${base}b` }
  }

  const refreshLeases = async (): Promise<void> => {
    const calls: Array<Promise<unknown>> = []
    for (const [key, ids] of leases) {
      if (ids.size === 0) {
        leases.delete(key)
        continue
      }
      calls.push(scripts.opLimitsRefresh(k(key).c, offset(), leaseTtlMs, ...ids))
    }
    await Promise.all(calls)
  }
  const refresher = setInterval(() => refreshLeases().catch(() => undefined), Math.max(10, leaseTtlMs / 3))
  refresher.unref()

  const admit = async (key: string, spec: LimitSpec, estimate: number, _now: number): Promise<StoreAdmission> => {
    const keys = k(key)
    const id = `${instance}.${(counter++).toString(36)}`
    const reply = (await scripts.opLimitsAdmit(
      keys.r,
      keys.t,
      keys.ts,
      keys.c,
      keys.b,
      offset(),
      lim(spec.requestsPerMinute),
      lim(spec.tokensPerMinute),
      lim(spec.concurrentRequests),
      lim(spec.tokensPerDay),
      lim(spec.tokensPerMonth),
      Math.max(0, Math.ceil(estimate)),
      id,
      leaseTtlMs
    )) as ReadonlyArray<number>
    const counts: Counts = {
      now: reply[2],
      requests: reply[3],
      requestsOldest: reply[4],
      tokens: reply[5],
      tokensOldest: reply[6],
      concurrent: reply[7],
      dayTokens: reply[8],
      dayEnd: reply[9],
      monthTokens: reply[10],
      monthEnd: reply[11]
    }
    if (reply[0] !== 0) {
      return { admitted: false, limit: LIMITS[reply[0] - 1], retryAfterMs: Math.max(1, reply[1]), counts }
    }
    const concurrent = spec.concurrentRequests !== undefined
    const reservation: RedisReservation = {
      key,
      done: false,
      id,
      at: reply[2],
      tokenNeed: reply[12],
      day: reply[13],
      dayNeed: reply[14],
      month: reply[15],
      monthNeed: reply[16],
      concurrent
    }
    if (concurrent) {
      let set = leases.get(key)
      if (set === undefined) {
        set = new Set()
        leases.set(key, set)
      }
      set.add(id)
    }
    return { admitted: true, reservation, counts }
  }

  const settle = async (reservation: Reservation, exactTokens: number): Promise<void> => {
    const r = reservation as RedisReservation
    if (r.done) return
    r.done = true
    // Only a request-rate limit applied: nothing to correct, no round trip.
    if (!r.concurrent && r.tokenNeed < 0 && r.dayNeed < 0 && r.monthNeed < 0) return
    if (r.concurrent) leases.get(r.key)?.delete(r.id)
    const keys = k(r.key)
    await scripts.opLimitsSettle(
      keys.t,
      keys.ts,
      keys.c,
      keys.b,
      r.id,
      r.at,
      r.tokenNeed,
      Math.max(0, Math.ceil(exactTokens)),
      r.day,
      r.dayNeed,
      r.month,
      r.monthNeed,
      r.concurrent ? "1" : "0"
    )
  }

  const inspect = async (key: string, _now: number): Promise<Counts> => {
    const keys = k(key)
    const c = (await scripts.opLimitsInspect(
      keys.r,
      keys.t,
      keys.ts,
      keys.c,
      keys.b,
      offset()
    )) as ReadonlyArray<number>
    return {
      now: c[0],
      requests: c[1],
      requestsOldest: c[2],
      tokens: c[3],
      tokensOldest: c[4],
      concurrent: c[5],
      dayTokens: c[6],
      dayEnd: c[7],
      monthTokens: c[8],
      monthEnd: c[9]
    }
  }

  const ready = (ms: number): Promise<boolean> =>
    client.status === "ready"
      ? Promise.resolve(true)
      : new Promise((resolve) => {
          const done = (ok: boolean) => {
            clearTimeout(timer)
            client.removeListener("ready", onReady)
            resolve(ok)
          }
          const onReady = () => done(true)
          const timer = setTimeout(() => done(false), ms)
          client.once("ready", onReady)
        })

  const close = async (): Promise<void> => {
    clearInterval(refresher)
    // QUIT lets settlements already sent complete; a stuck connection is dropped after a short wait.
    let timer: NodeJS.Timeout | undefined
    await Promise.race([
      client.quit().catch(() => undefined),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, Math.max(100, timeoutMs * 2))
      })
    ])
    clearTimeout(timer)
    client.disconnect()
  }

  return { admit, settle, inspect, close, ready, refreshLeases }
}
