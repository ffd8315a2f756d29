// The limits engine on this process's memory: exact sliding logs for the minute windows, a counter for concurrent
// requests, and UTC day/month counters for the budgets. Synchronous (one Map lookup and a few array operations per
// admission); `memoryStore` wraps it in the LimitStore interface, and the node:cluster primary serves it to its
// workers (src/limits/cluster.ts). The Redis script (src/limits/lua.ts) is the same algorithm, line for line.
import { dayEnd, dayOf, monthEnd, monthOf } from "./periods.js"
import type { Counts, LimitName, LimitSpec, LimitStore, Reservation, StoreAdmission } from "./types.js"
import { WINDOW_MS } from "./types.js"
import { SlidingLog } from "./window.js"

/** How long a concurrency refusal asks the client to wait: the store cannot know when a stream ends. */
export const CONCURRENCY_RETRY_MS = 1000

class KeyState {
  readonly requests = new SlidingLog()
  readonly tokens = new SlidingLog()
  concurrent = 0
  day = -1
  dayTokens = 0
  /** End of the current day/month: the period ids are recomputed only when time passes them (no Date per call). */
  dayEndAt = Number.NEGATIVE_INFINITY
  month = -1
  monthTokens = 0
  monthEndAt = Number.NEGATIVE_INFINITY
  /** The latest time seen: time never goes backwards for a key (the logs stay sorted). */
  last = 0
}

export interface MemoryReservation extends Reservation {
  readonly state: KeyState
  /** The admission's estimate: what an abandoned reservation (its worker died) is settled to. */
  readonly estimate: number
  /** Sequence number of the token log entry, -1 when no per-minute token limit applied. */
  readonly tokenSeq: number
  readonly day: number
  /** What was added to the day's budget (-1: none). */
  readonly dayNeed: number
  readonly month: number
  readonly monthNeed: number
  readonly concurrent: boolean
}

/** Tokens a request reserves against a limit: its estimate, capped by the limit so a big request can ever pass. */
const need = (estimate: number, limit: number): number => Math.min(estimate, limit)

/** Room for `n` more when `used` is counted: some room left, and `n` fits. */
const fits = (used: number, n: number, limit: number): boolean => used < limit && used + n <= limit

export class MemoryEngine {
  private readonly keys = new Map<string, KeyState>()

  private stateOf(key: string): KeyState {
    let s = this.keys.get(key)
    if (s === undefined) {
      s = new KeyState()
      this.keys.set(key, s)
    }
    return s
  }

  /** Brings a key's windows and periods to `now` (which never goes backwards for a key). */
  private advance(s: KeyState, now: number): number {
    const t = Math.max(now, s.last)
    s.last = t
    s.requests.prune(t)
    s.tokens.prune(t)
    if (t >= s.dayEndAt) {
      s.day = dayOf(t)
      s.dayEndAt = dayEnd(t)
      s.dayTokens = 0
    }
    if (t >= s.monthEndAt) {
      s.month = monthOf(t)
      s.monthEndAt = monthEnd(t)
      s.monthTokens = 0
    }
    return t
  }

  private counts(s: KeyState, now: number): Counts {
    return {
      now,
      requests: s.requests.size,
      requestsOldest: s.requests.oldest(),
      tokens: s.tokens.total,
      tokensOldest: s.tokens.oldest(),
      concurrent: s.concurrent,
      dayTokens: s.dayTokens,
      dayEnd: s.dayEndAt,
      monthTokens: s.monthTokens,
      monthEnd: s.monthEndAt
    }
  }

  admit(key: string, spec: LimitSpec, estimateTokens: number, nowIn: number): StoreAdmission {
    const s = this.stateOf(key)
    const now = this.advance(s, nowIn)
    const estimate = Math.max(0, Math.ceil(estimateTokens))
    let refused: LimitName | undefined
    let retry = 0
    const refuse = (limit: LimitName, ms: number) => {
      if (refused === undefined || ms > retry) {
        refused = limit
        retry = ms
      }
    }
    const { concurrentRequests: conc, requestsPerMinute: rpm, tokensPerMinute: tpm } = spec
    const { tokensPerDay: tpd, tokensPerMonth: tpmo } = spec
    if (conc !== undefined && s.concurrent >= conc) refuse("concurrent_requests", CONCURRENCY_RETRY_MS)
    if (rpm !== undefined && s.requests.size >= rpm) {
      // Room once the entry at index size - rpm has left the window (then size - rpm - 1 ... are gone too).
      const i = s.requests.size - rpm
      refuse("requests_per_minute", i < s.requests.size ? s.requests.timeAt(i) + WINDOW_MS - now : WINDOW_MS)
    }
    if (tpm !== undefined && !fits(s.tokens.total, need(estimate, tpm), tpm)) {
      refuse("tokens_per_minute", this.tokenRetry(s.tokens, need(estimate, tpm), tpm, now))
    }
    if (tpd !== undefined && !fits(s.dayTokens, need(estimate, tpd), tpd)) refuse("tokens_per_day", s.dayEndAt - now)
    if (tpmo !== undefined && !fits(s.monthTokens, need(estimate, tpmo), tpmo)) {
      refuse("tokens_per_month", s.monthEndAt - now)
    }
    if (refused !== undefined) {
      return { admitted: false, limit: refused, retryAfterMs: Math.max(1, retry), counts: this.counts(s, now) }
    }
    if (rpm !== undefined) s.requests.push(now, 1)
    const tokenSeq = tpm === undefined ? -1 : s.tokens.push(now, need(estimate, tpm))
    const dayNeed = tpd === undefined ? -1 : need(estimate, tpd)
    if (dayNeed >= 0) s.dayTokens += dayNeed
    const monthNeed = tpmo === undefined ? -1 : need(estimate, tpmo)
    if (monthNeed >= 0) s.monthTokens += monthNeed
    if (conc !== undefined) s.concurrent++
    const reservation: MemoryReservation = {
      key,
      done: false,
      state: s,
      estimate,
      tokenSeq,
      day: s.day,
      dayNeed,
      month: s.month,
      monthNeed,
      concurrent: conc !== undefined
    }
    return { admitted: true, reservation, counts: this.counts(s, now) }
  }

  /** Milliseconds until enough of the oldest token entries have left the window for `n` more tokens. */
  private tokenRetry(log: SlidingLog, n: number, limit: number, now: number): number {
    let remaining = log.total
    for (let i = 0; i < log.size; i++) {
      remaining -= log.amountAt(i)
      if (fits(remaining, n, limit)) return log.timeAt(i) + WINDOW_MS - now
    }
    return WINDOW_MS
  }

  /** Replaces the reservation's estimates by the exact usage (0 for a release) and frees its concurrency slot. */
  settle(reservation: Reservation, exactTokens: number): void {
    const r = reservation as MemoryReservation
    if (r.done) return
    r.done = true
    const s = r.state
    const exact = Math.max(0, Math.ceil(exactTokens))
    if (r.concurrent && s.concurrent > 0) s.concurrent--
    if (r.tokenSeq >= 0) s.tokens.setAmount(r.tokenSeq, exact)
    if (r.dayNeed >= 0 && r.day === s.day) s.dayTokens = Math.max(0, s.dayTokens + exact - r.dayNeed)
    if (r.monthNeed >= 0 && r.month === s.month) s.monthTokens = Math.max(0, s.monthTokens + exact - r.monthNeed)
  }

  /** A failed request: frees its slot and its token reservation (its request count stays: it was made). */
  release(reservation: Reservation): void {
    this.settle(reservation, 0)
  }

  inspect(key: string, nowIn: number): Counts {
    const s = this.stateOf(key)
    return this.counts(s, this.advance(s, nowIn))
  }
}

/** The single-process store. */
export const memoryStore = (engine: MemoryEngine = new MemoryEngine()): LimitStore => ({
  admit: (key, spec, estimate, now) => Promise.resolve(engine.admit(key, spec, estimate, now)),
  settle: (r, exact) => Promise.resolve(engine.settle(r, exact)),
  inspect: (key, now) => Promise.resolve(engine.inspect(key, now)),
  close: () => Promise.resolve()
})
