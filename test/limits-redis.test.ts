// The Redis store (src/limits/redis.ts) against a real redis-server: two independent store clients stand for two
// proxy replicas sharing one Redis. Time moves forward through the store's server-clock offset (the same offset for
// both clients), so window tests do not sleep a minute; the scripts still read Redis's own clock.
import { spawn } from "node:child_process"
import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import * as path from "node:path"
import * as Redacted from "effect/Redacted"
import { build } from "esbuild"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type Limiter, makeLimiter } from "../src/limits/limiter.js"
import { openLimiter } from "../src/limits/open.js"
import { dayEnd, monthEnd } from "../src/limits/periods.js"
import { describeRedisUrl, type RedisStore, redisStore } from "../src/limits/redis.js"
import type { LimitSpec, Reservation, StoreAdmission } from "../src/limits/types.js"
import { makeLogger } from "../src/log.js"
import { startRedis, type TestRedis } from "./support/redis.js"

const PASSWORD = "s3cret-redis-pw"
let redis: TestRedis
let offset = 0
const stores: Array<RedisStore> = []

/** A replica's store; generous time-out where a test counts exact admissions (a time-out would fail it loudly). */
const replica = async (prefix: string, extra: { timeoutMs?: number; leaseTtlMs?: number } = {}) => {
  const s = await redisStore({
    url: Redacted.make(redis.url),
    keyPrefix: prefix,
    timeoutMs: extra.timeoutMs ?? 5000,
    leaseTtlMs: extra.leaseTtlMs,
    timeOffsetMs: () => offset
  })
  stores.push(s)
  expect(await s.ready(10_000)).toBe(true)
  return s
}

const admitted = (a: StoreAdmission): Reservation => {
  if (!a.admitted) throw new Error(`refused on ${a.limit}`)
  return a.reservation
}

let prefixes = 0
const fresh = () => `t${prefixes++}:`

beforeAll(async () => {
  redis = await startRedis({ password: PASSWORD })
})

afterAll(async () => {
  await Promise.all(stores.map((s) => s.close()))
  await redis?.dispose()
})

describe("two replicas sharing one Redis", () => {
  it("300 admissions spread over both against 100/min: exactly 100, the rest refused with the figures", async () => {
    const p = fresh()
    const [a, b] = [await replica(p), await replica(p)]
    const spec: LimitSpec = { requestsPerMinute: 100 }
    const results = await Promise.all(
      Array.from({ length: 300 }, (_, i) => (i % 2 === 0 ? a : b).admit("team", spec, 0, Date.now()))
    )
    const ok = results.filter((r) => r.admitted)
    expect(ok.length).toBe(100)
    for (const r of results) {
      if (r.admitted) continue
      expect(r.limit).toBe("requests_per_minute")
      expect(r.retryAfterMs).toBeGreaterThan(0)
      expect(r.retryAfterMs).toBeLessThanOrEqual(60_000)
      expect(r.counts.requests).toBe(100)
    }
    // The window slides: a minute later (server clock + offset) exactly 100 more fit.
    offset += 60_001
    const again = await Promise.all(
      Array.from({ length: 150 }, (_, i) => (i % 2 === 0 ? b : a).admit("team", spec, 0, Date.now()))
    )
    expect(again.filter((r) => r.admitted).length).toBe(100)
  })

  it("two replica processes, 150 admissions each within ~1 s against 100/min: exactly 100 in total", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "openproxy-limits-replica-"))
    try {
      const program = path.join(dir, "replica.mjs")
      await build({
        entryPoints: [path.join(__dirname, "support", "limits-replica-child.ts")],
        bundle: true,
        platform: "node",
        format: "esm",
        outfile: program,
        logLevel: "warning",
        banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" }
      })
      const key = `replicas-${Date.now()}`
      const replicas = [0, 1].map(() => {
        const child = spawn(process.execPath, [program], {
          env: { ...process.env, REDIS_URL: redis.url, LIMITS_KEY: key, LIMITS_COUNT: "150" },
          stdio: ["pipe", "pipe", "inherit"]
        })
        const lines: Array<string> = []
        const waiters = new Set<() => void>()
        let buf = ""
        child.stdout.on("data", (d) => {
          buf += String(d)
          const parts = buf.split("\n")
          buf = parts.pop() ?? ""
          lines.push(...parts)
          for (const w of waiters) w()
        })
        const exited = new Promise<never>((_, reject) =>
          child.once("exit", (code) => reject(new Error(`replica exited with ${code}`)))
        )
        exited.catch(() => undefined)
        /** The first output line matching `want` (rejects if the replica exits first). */
        const line = (want: (l: string) => boolean) =>
          Promise.race([
            new Promise<string>((resolve) => {
              const check = () => {
                const found = lines.find(want)
                if (found === undefined) return
                waiters.delete(check)
                resolve(found)
              }
              waiters.add(check)
              check()
            }),
            exited
          ])
        return { child, line }
      })
      await Promise.all(replicas.map((r) => r.line((l) => l === "ready")))
      const results = replicas.map((r) => r.line((l) => l.startsWith("{")))
      for (const r of replicas) r.child.stdin.end("go\n")
      const counts = (await Promise.all(results)).map((l) => JSON.parse(l) as Record<string, number>)
      expect(counts.reduce((n, c) => n + (c.Admitted ?? 0), 0)).toBe(100)
      expect(counts.reduce((n, c) => n + (c.Refused ?? 0), 0)).toBe(200)
      // Both replicas took part (a fixed split would be luck; any split summing to 100 is right).
      expect(counts.every((c) => (c.Admitted ?? 0) + (c.Refused ?? 0) === 150)).toBe(true)
      await Promise.all(
        replicas.map((r) => new Promise((ok) => (r.child.exitCode !== null ? ok(0) : r.child.once("exit", ok))))
      )
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it("tokens 10,000/min with known usage: never above the limit by more than one reservation's error", async () => {
    const p = fresh()
    const [a, b] = [await replica(p), await replica(p)]
    const spec: LimitSpec = { tokensPerMinute: 10_000 }
    let total = 0
    let maxError = 0
    let refusals = 0
    for (let i = 0; i < 40; i++) {
      const estimate = 800 + ((i * 37) % 700)
      const usage = 400 + ((i * 53) % 1500)
      const store = i % 2 === 0 ? a : b
      const r = await store.admit("k", spec, estimate, Date.now())
      if (!r.admitted) {
        refusals++
        expect(r.limit).toBe("tokens_per_minute")
        expect(r.retryAfterMs).toBeLessThanOrEqual(60_000)
        continue
      }
      await store.settle(r.reservation, usage)
      total += usage
      maxError = Math.max(maxError, usage - estimate)
    }
    expect(refusals).toBeGreaterThan(0)
    expect(total).toBeGreaterThan(8000)
    expect(total).toBeLessThanOrEqual(10_000 + maxError)
    const c = await a.inspect("k", Date.now())
    expect(c.tokens).toBe(total)
    offset += 60_001
    expect((await b.admit("k", spec, 1000, Date.now())).admitted).toBe(true)
    expect((await a.inspect("k", Date.now())).tokens).toBe(1000)
  })

  it("concurrent_requests 3: the fourth is refused, admitted when one ends; 100 aborts leak no slot", async () => {
    const p = fresh()
    const [a, b] = [await replica(p), await replica(p)]
    const spec: LimitSpec = { concurrentRequests: 3, tokensPerMinute: 1_000_000 }
    const held = [admitted(await a.admit("k", spec, 10, 0)), admitted(await b.admit("k", spec, 10, 0))]
    held.push(admitted(await a.admit("k", spec, 10, 0)))
    const fourth = await b.admit("k", spec, 10, 0)
    expect(fourth.admitted ? "admitted" : fourth.limit).toBe("concurrent_requests")
    await a.settle(held[0], 5)
    held[0] = admitted(await b.admit("k", spec, 10, 0))
    for (let i = 0; i < 100; i++) {
      const store = i % 2 === 0 ? a : b
      // An abort settles with the tokens streamed so far; a failure releases.
      await store.settle(held[i % 3], i % 4 === 0 ? 0 : 7)
      held[i % 3] = admitted(await store.admit("k", spec, 10, 0))
      expect((await (i % 2 === 0 ? b : a).admit("k", spec, 10, 0)).admitted).toBe(false)
    }
    for (const r of held) await a.settle(r, 1)
    expect((await b.inspect("k", 0)).concurrent).toBe(0)
  })

  it("a crashed replica's slots expire after the lease TTL; a live one keeps its slot by refreshing", async () => {
    const p = fresh()
    const ttl = 5000
    const a = await replica(p, { leaseTtlMs: ttl })
    const b = await replica(p, { leaseTtlMs: ttl })
    const spec: LimitSpec = { concurrentRequests: 1 }
    admitted(await a.admit("k", spec, 0, 0))
    for (let i = 0; i < 4; i++) {
      offset += ttl / 2
      await a.refreshLeases()
      expect((await b.admit("k", spec, 0, 0)).admitted).toBe(false)
    }
    // Replica a "crashes": it stops refreshing without settling.
    await a.close()
    offset += ttl / 2
    expect((await b.admit("k", spec, 0, 0)).admitted).toBe(false)
    offset += ttl / 2 + 1
    expect((await b.admit("k", spec, 0, 0)).admitted).toBe(true)
  })
})

describe("UTC calendar budgets on the server's clock", () => {
  it("the day and month roll over at UTC midnight, as the memory engine computes them", async () => {
    const s = await replica(fresh())
    const saved = offset
    for (const target of [
      Date.UTC(2027, 1, 28, 23, 59, 50),
      Date.UTC(2028, 1, 29, 12),
      Date.UTC(2026, 11, 31, 23, 0),
      Date.UTC(2100, 1, 28, 1),
      Date.UTC(2030, 6, 31, 23, 59, 59)
    ]) {
      offset = target - Date.now()
      const c = await s.inspect("calendar", 0)
      expect(c.now - target).toBeLessThan(5000)
      expect(c.dayEnd).toBe(dayEnd(c.now))
      expect(c.monthEnd).toBe(monthEnd(c.now))
    }
    offset = Date.UTC(2027, 1, 28, 23, 59, 30) - Date.now()
    const spec: LimitSpec = { tokensPerDay: 1000, tokensPerMonth: 100_000 }
    await s.settle(admitted(await s.admit("budget", spec, 100, 0)), 1000)
    const refused = await s.admit("budget", spec, 1, 0)
    expect(refused.admitted ? "admitted" : refused.limit).toBe("tokens_per_day")
    if (!refused.admitted) expect(refused.retryAfterMs).toBe(Date.UTC(2027, 2, 1) - refused.counts.now)
    offset += 60_000
    const march = await s.admit("budget", spec, 5, 0)
    expect(march.admitted).toBe(true)
    expect(march.counts.dayTokens).toBe(5)
    expect(march.counts.monthTokens).toBe(5)
    offset = saved + 86_400_000 * 400
  })
})

describe("Redis unreachable or slow: on_store_error", () => {
  const capture = () => {
    const lines: Array<string> = []
    return { lines, logger: makeLogger("text", "debug", (l) => lines.push(l)) }
  }
  const spec: LimitSpec = { requestsPerMinute: 5 }

  /** Polls `cond` every 10 ms (at most 20 s). */
  const until = async (cond: () => boolean) => {
    for (let i = 0; i < 2000 && !cond(); i++) await new Promise((r) => setTimeout(r, 10))
    expect(cond()).toBe(true)
  }

  /** Eight lanes of admit-then-settle, bounded in count, until stopped. */
  const load = (limiter: Limiter, spec: LimitSpec) => {
    const tags: Array<string> = []
    let stopped = false
    const lane = async () => {
      for (let n = 0; n < 5000 && !stopped; n++) {
        const a = await limiter.admit("load", spec, 10)
        tags.push(a._tag)
        if (a._tag === "Admitted") await limiter.settle(a.reservation, 3)
        // Failures are immediate while Redis is down: let I/O (the reconnection) run between calls.
        await new Promise((r) => setImmediate(r))
      }
    }
    const lanes = Promise.all(Array.from({ length: 8 }, lane))
    return {
      tags,
      stop: async () => {
        stopped = true
        await lanes
      }
    }
  }

  it("open keeps admitting under load and logs the transition once; Redis back: limits resume without a restart", async () => {
    const { lines, logger } = capture()
    const store = await replica(fresh(), { timeoutMs: 1000 })
    let failures = 0
    const limiter = makeLimiter({
      store,
      onStoreError: "open",
      logger,
      storeName: describeRedisUrl(Redacted.make(redis.url)),
      onStoreFailure: () => failures++
    })
    const running = load(limiter, { requestsPerMinute: 1_000_000, concurrentRequests: 1000 })
    try {
      await until(() => running.tags.length >= 100)
      await redis.stop()
      const down = running.tags.length
      await until(() => running.tags.length >= down + 200)
      expect(failures).toBeGreaterThan(150)
      expect(limiter.stats()).toMatchObject({ storeDown: true, outages: 1 })
      await redis.restart()
      expect(await store.ready(15_000)).toBe(true)
      const back = running.tags.length
      await until(() => running.tags.length >= back + 100 && !limiter.stats().storeDown)
    } finally {
      await running.stop()
    }
    expect(new Set(running.tags)).toEqual(new Set(["Admitted"]))
    expect(lines.filter((l) => l.includes("limits store unavailable")).length).toBe(1)
    expect(lines.filter((l) => l.includes("limits store available again")).length).toBe(1)
    expect(limiter.stats().outages).toBe(1)
    // Every admission after the restart was settled: no slot is left.
    expect((await store.inspect("load", 0)).concurrent).toBe(0)
    const after = await Promise.all(Array.from({ length: 8 }, () => limiter.admit("k", spec, 0)))
    expect(after.filter((a) => a._tag === "Admitted").length).toBe(5)
    expect(after.filter((a) => a._tag === "Refused").length).toBe(3)
    expect(lines.join("\n")).not.toContain(PASSWORD)
    expect(lines.join("\n")).toContain(`127.0.0.1:${redis.port}`)
  })

  it("closed refuses with a store error while Redis is down", async () => {
    const { lines, logger } = capture()
    const store = await replica(fresh(), { timeoutMs: 1000 })
    const limiter = makeLimiter({ store, onStoreError: "closed", logger })
    expect((await limiter.admit("k", spec, 0))._tag).toBe("Admitted")
    await redis.stop()
    const during = await Promise.all(Array.from({ length: 20 }, () => limiter.admit("k", spec, 0)))
    expect(during.every((a) => a._tag === "StoreError")).toBe(true)
    expect(lines.filter((l) => l.includes("limits store unavailable")).length).toBe(1)
    await redis.restart()
    expect(await store.ready(15_000)).toBe(true)
    // On a loaded machine a call can still exceed the 50 ms time-out: the store is back once calls are answered.
    let tag = "StoreError"
    for (let i = 0; i < 100 && tag === "StoreError"; i++) tag = (await limiter.admit("k", spec, 0))._tag
    expect(tag).toBe("Admitted")
  })

  it("a Redis slower than redis_timeout counts as unreachable (no call hangs), and is used again once it answers", async () => {
    const { lines, logger } = capture()
    const store = await replica(fresh(), { timeoutMs: 250 })
    const limiter = makeLimiter({ store, onStoreError: "closed", logger })
    expect((await limiter.admit("k", spec, 0))._tag).toBe("Admitted")
    redis.pause()
    try {
      const during = await Promise.all(Array.from({ length: 10 }, () => limiter.admit("k", spec, 0)))
      expect(during.map((a) => a._tag)).toEqual(Array(10).fill("StoreError"))
      expect(lines.filter((l) => l.includes("limits store unavailable")).length).toBe(1)
    } finally {
      redis.resume()
    }
    const wide: LimitSpec = { requestsPerMinute: 100 }
    let tag = "StoreError"
    for (let i = 0; i < 100 && tag === "StoreError"; i++) tag = (await limiter.admit("k", wide, 0))._tag
    expect(tag).toBe("Admitted")
    expect(lines.filter((l) => l.includes("limits store available again")).length).toBe(1)
    // The 10 calls that timed out here still ran when Redis resumed, and Redis admitted 4 of them (its limit is 5):
    // they count (conservative, docs/limits.md), so the window holds 1 + 4 + 1 (more if a call after the resume
    // also timed out on a loaded machine).
    expect((await store.inspect("k", 0)).requests).toBeGreaterThanOrEqual(6)
  })

  it("openLimiter: Redis from the settings; an unreachable Redis at start-up is logged once and the policy applies", async () => {
    const { lines, logger } = capture()
    const good = await openLimiter(
      { store: "redis", redisUrl: Redacted.make(redis.url), redisTimeoutMs: 5000 },
      { logger, redisReadyMs: 10_000 }
    )
    const key = `open-${Date.now()}`
    const tags: Array<string> = []
    for (let i = 0; i < 3; i++) tags.push((await good.admit(key, { requestsPerMinute: 2 }, 0))._tag)
    expect(tags).toEqual(["Admitted", "Admitted", "Refused"])
    await good.close()
    const unused = await startRedis()
    const deadPort = unused.port
    await unused.dispose()
    const dead = await openLimiter(
      { store: "redis", redisUrl: Redacted.make(`redis://:${PASSWORD}@127.0.0.1:${deadPort}`), onStoreError: "closed" },
      { logger, redisReadyMs: 200 }
    )
    expect((await dead.admit("k", spec, 0))._tag).toBe("StoreError")
    expect((await dead.admit("k", spec, 0))._tag).toBe("StoreError")
    await dead.close()
    expect(lines.filter((l) => l.includes("limits store not reachable yet")).length).toBe(1)
    expect(lines.filter((l) => l.includes("limits store unavailable")).length).toBe(1)
    expect(lines.join("\n")).toContain(`127.0.0.1:${deadPort}`)
    expect(lines.join("\n")).not.toContain(PASSWORD)
  })

  it("the Redis URL in log lines carries no password", () => {
    expect(describeRedisUrl(Redacted.make(`redis://user:${PASSWORD}@127.0.0.1:6379/2`))).toBe(
      "redis://127.0.0.1:6379/2"
    )
    expect(String(Redacted.make(redis.url))).not.toContain(PASSWORD)
  })
})
