// The limits engine on memory (src/limits/memory.ts) with an injected clock: exact sliding windows (never 2x across
// a boundary), token reservations settled to the exact usage, concurrency without leaks, UTC day/month budgets.
import { describe, expect, it } from "vitest"
import { MemoryEngine } from "../src/limits/memory.js"
import { dayEnd, dayOf, monthEnd, monthOf } from "../src/limits/periods.js"
import type { Reservation, StoreAdmission } from "../src/limits/types.js"

const T0 = Date.UTC(2026, 10, 30, 12, 0, 0)

const admitted = (a: StoreAdmission): Reservation => {
  if (!a.admitted) throw new Error(`refused on ${a.limit}`)
  return a.reservation
}

/** A deterministic pseudo-random sequence (tests must be reproducible). */
const rng = (seed: number) => () => {
  seed = (seed * 1103515245 + 12345) % 2147483648
  return seed / 2147483648
}

describe("requests per minute: exact sliding log", () => {
  it("admits exactly the limit out of 300 requests spread over 3 s, and tells when the next fits", () => {
    const e = new MemoryEngine()
    const spec = { requestsPerMinute: 100 }
    let n = 0
    let last: StoreAdmission | undefined
    for (let i = 0; i < 300; i++) {
      last = e.admit("team", spec, 0, T0 + i * 10)
      if (last.admitted) n++
    }
    expect(n).toBe(100)
    // The first 100 were admitted at T0 .. T0 + 990 ms: room again when the first leaves the window.
    if (last === undefined || last.admitted) throw new Error("expected a refusal")
    expect(last.limit).toBe("requests_per_minute")
    expect(last.retryAfterMs).toBe(T0 + 60_000 - (T0 + 2990))
    expect(e.admit("team", spec, 0, T0 + 59_999).admitted).toBe(false)
    expect(e.admit("team", spec, 0, T0 + 60_000).admitted).toBe(true)
    expect(e.admit("team", spec, 0, T0 + 60_001).admitted).toBe(false)
    expect(e.admit("team", spec, 0, T0 + 60_010).admitted).toBe(true)
  })

  it("never admits twice the limit across a minute boundary (a fixed window would)", () => {
    const e = new MemoryEngine()
    const spec = { requestsPerMinute: 50 }
    const minute = Date.UTC(2026, 10, 30, 12, 1, 0)
    for (let i = 0; i < 50; i++) admitted(e.admit("k", spec, 0, minute - 100 + i))
    let after = 0
    for (let i = 0; i < 50; i++) if (e.admit("k", spec, 0, minute + 100 + i).admitted) after++
    expect(after).toBe(0)
    // Property: over a long random run, no 60 s span ever holds more than the limit.
    const r = rng(7)
    const times: Array<number> = []
    let t = minute
    for (let i = 0; i < 5000; i++) {
      t += Math.floor(r() * 2000)
      if (e.admit("p", spec, 0, t).admitted) times.push(t)
    }
    for (let i = 0, j = 0; i < times.length; i++) {
      while (times[j] <= times[i] - 60_000) j++
      expect(i - j + 1).toBeLessThanOrEqual(50)
    }
    expect(times.length).toBeGreaterThan(50 * 3)
  })

  it("keys are independent", () => {
    const e = new MemoryEngine()
    admitted(e.admit("a", { requestsPerMinute: 1 }, 0, T0))
    expect(e.admit("a", { requestsPerMinute: 1 }, 0, T0).admitted).toBe(false)
    expect(e.admit("b", { requestsPerMinute: 1 }, 0, T0).admitted).toBe(true)
  })
})

describe("tokens per minute: reserve the estimate, settle the exact usage", () => {
  it("total admitted usage within any minute exceeds the limit by at most one reservation's error", () => {
    const e = new MemoryEngine()
    const limit = 10_000
    const spec = { tokensPerMinute: limit }
    const r = rng(42)
    const used: Array<{ t: number; u: number }> = []
    let maxError = 0
    let t = T0
    for (let i = 0; i < 3000; i++) {
      t += Math.floor(r() * 400)
      const estimate = 500 + Math.floor(r() * 1500)
      const a = e.admit("k", spec, estimate, t)
      if (!a.admitted) {
        expect(a.limit).toBe("tokens_per_minute")
        expect(a.retryAfterMs).toBeGreaterThan(0)
        expect(a.retryAfterMs).toBeLessThanOrEqual(60_000)
        continue
      }
      // The mock's known usage: sometimes above the estimate, sometimes below.
      const u = Math.floor(estimate * (0.5 + r()))
      maxError = Math.max(maxError, u - estimate)
      e.settle(a.reservation, u)
      used.push({ t, u })
    }
    let worst = 0
    for (let i = 0, j = 0, sum = 0; i < used.length; i++) {
      sum += used[i].u
      while (used[j].t <= used[i].t - 60_000) sum -= used[j++].u
      worst = Math.max(worst, sum)
    }
    expect(worst).toBeGreaterThan(limit * 0.8)
    expect(worst).toBeLessThanOrEqual(limit + maxError)
  })

  it("refuses while the reservation is held, admits once the window allows, and settles to the exact figure", () => {
    const e = new MemoryEngine()
    const spec = { tokensPerMinute: 10_000 }
    const a = admitted(e.admit("k", spec, 6000, T0))
    const refused = e.admit("k", spec, 6000, T0 + 1000)
    if (refused.admitted) throw new Error("expected a refusal")
    expect(refused.retryAfterMs).toBe(59_000)
    expect(refused.counts.tokens).toBe(6000)
    e.settle(a, 1000)
    expect(e.inspect("k", T0 + 1000).tokens).toBe(1000)
    const b = admitted(e.admit("k", spec, 6000, T0 + 2000))
    e.settle(b, 9000)
    expect(e.inspect("k", T0 + 2000).tokens).toBe(10_000)
    const c = e.admit("k", spec, 1, T0 + 3000)
    if (c.admitted) throw new Error("expected a refusal")
    // The window is full (10000): room once the oldest entry (1000 tokens at T0) leaves, at T0 + 60 s.
    expect(c.retryAfterMs).toBe(T0 + 60_000 - (T0 + 3000))
    expect(e.admit("k", spec, 1, T0 + 60_000).admitted).toBe(true)
  })

  it("a request larger than the limit is admitted into an empty window only", () => {
    const e = new MemoryEngine()
    const spec = { tokensPerMinute: 1000 }
    const a = admitted(e.admit("k", spec, 5000, T0))
    expect(e.admit("k", spec, 1, T0 + 1).admitted).toBe(false)
    e.release(a)
    expect(e.inspect("k", T0 + 2).tokens).toBe(0)
    expect(e.admit("k", spec, 5000, T0 + 2).admitted).toBe(true)
  })

  it("a settlement after the entry left the window changes nothing (and a second settle is a no-op)", () => {
    const e = new MemoryEngine()
    const spec = { tokensPerMinute: 1000 }
    const a = admitted(e.admit("k", spec, 100, T0))
    const b = admitted(e.admit("k", spec, 100, T0 + 30_000))
    e.inspect("k", T0 + 61_000)
    e.settle(a, 900)
    expect(e.inspect("k", T0 + 61_000).tokens).toBe(100)
    e.settle(b, 50)
    e.settle(b, 999)
    expect(e.inspect("k", T0 + 61_000).tokens).toBe(50)
  })
})

describe("concurrent requests", () => {
  it("the fourth is refused, admitted again when one ends; 100 aborts leak no slot", () => {
    const e = new MemoryEngine()
    const spec = { concurrentRequests: 3 }
    const held = [0, 1, 2].map(() => admitted(e.admit("k", spec, 0, T0)))
    const fourth = e.admit("k", spec, 0, T0)
    if (fourth.admitted) throw new Error("expected a refusal")
    expect(fourth.limit).toBe("concurrent_requests")
    e.settle(held[0], 10)
    held[0] = admitted(e.admit("k", spec, 0, T0))
    for (let i = 0; i < 100; i++) {
      const victim = held[i % 3]
      if (i % 2 === 0) e.settle(victim, 3)
      else e.release(victim)
      held[i % 3] = admitted(e.admit("k", spec, 0, T0 + i))
      expect(e.admit("k", spec, 0, T0 + i).admitted).toBe(false)
    }
    for (const r of held) e.settle(r, 0)
    expect(e.inspect("k", T0 + 200).concurrent).toBe(0)
  })
})

describe("daily and monthly budgets (UTC calendar periods)", () => {
  it("resets at UTC midnight and at the first of the month", () => {
    const e = new MemoryEngine()
    const spec = { tokensPerDay: 1000, tokensPerMonth: 1500 }
    const end = Date.UTC(2027, 1, 28, 23, 59, 50)
    e.settle(admitted(e.admit("k", spec, 100, end - 86_400_000)), 600)
    e.settle(admitted(e.admit("k", spec, 100, end)), 800)
    const day = e.admit("k", spec, 200, end + 1000)
    if (day.admitted) throw new Error("expected a refusal")
    expect(day.limit).toBe("tokens_per_month")
    expect(day.retryAfterMs).toBe(Date.UTC(2027, 2, 1) - (end + 1000))
    expect(day.counts.dayTokens).toBe(800)
    expect(day.counts.monthTokens).toBe(1400)
    const march = e.admit("k", spec, 100, Date.UTC(2027, 2, 1))
    expect(march.admitted).toBe(true)
    expect(march.counts.monthTokens).toBe(100)
    expect(march.counts.dayTokens).toBe(100)
  })

  it("the day budget refuses until midnight", () => {
    const e = new MemoryEngine()
    const spec = { tokensPerDay: 1000 }
    const t = Date.UTC(2026, 5, 15, 22, 0, 0)
    e.settle(admitted(e.admit("k", spec, 10, t)), 1000)
    const r = e.admit("k", spec, 0, t + 1)
    if (r.admitted) throw new Error("expected a refusal")
    expect(r.limit).toBe("tokens_per_day")
    expect(r.retryAfterMs).toBe(2 * 3_600_000 - 1)
    expect(e.admit("k", spec, 0, Date.UTC(2026, 5, 16)).admitted).toBe(true)
  })

  it("period ids and ends match the calendar", () => {
    for (const [y, m, d] of [
      [2024, 1, 29],
      [2026, 11, 31],
      [2100, 1, 28],
      [2000, 1, 29],
      [2027, 0, 1]
    ]) {
      const t = Date.UTC(y, m, d, 23, 59, 59, 999)
      expect(dayEnd(t)).toBe(Date.UTC(y, m, d + 1))
      expect(dayOf(t + 1)).toBe(dayOf(t) + 1)
      expect(monthOf(t)).toBe(y * 12 + m)
      expect(monthEnd(Date.UTC(y, m, 1))).toBe(Date.UTC(y, m + 1, 1))
    }
  })
})

describe("time that goes backwards", () => {
  it("is clamped to the latest time seen, so the window stays exact", () => {
    const e = new MemoryEngine()
    const spec = { requestsPerMinute: 2 }
    admitted(e.admit("k", spec, 0, T0 + 5000))
    admitted(e.admit("k", spec, 0, T0))
    expect(e.admit("k", spec, 0, T0 + 64_999).admitted).toBe(false)
    expect(e.admit("k", spec, 0, T0 + 65_000).admitted).toBe(true)
  })
})
