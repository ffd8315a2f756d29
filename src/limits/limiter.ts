// What the request path talks to: admission against a key's limits, settlement at the end, and the
// `on_store_error` policy (SPEC §12) around whichever store holds the counts. A store that cannot answer (Redis
// unreachable, slower than `redis_timeout`) admits the request (`open`) or refuses it with a StoreError (`closed`:
// the request path answers 503). The change between "store answers" and "store fails" is logged once per
// transition, never per request, and every failed call is counted (`stats`, and the `onStoreError` hook for
// metrics). Settlement never throws: a failed settlement is counted and the request ends normally.
import type { Logger } from "../log.js"
import { figuresOf, isUnlimited, usageOf } from "./figures.js"
import type { Admission, KeyUsage, LimitSpec, LimitStore, Reservation } from "./types.js"

export type OnStoreError = "open" | "closed"

export interface LimiterOptions {
  readonly store: LimitStore
  /** Default `open`. */
  readonly onStoreError?: OnStoreError
  readonly logger?: Logger
  /** Called on every failed store call (for a metrics counter). */
  readonly onStoreFailure?: (op: "admit" | "settle" | "inspect") => void
  /** Called on each transition: `false` when the store starts failing, `true` when it answers again. */
  readonly onStoreTransition?: (available: boolean) => void
  /** A few words naming the store in log lines (never a password: pass `describeRedisUrl`'s output). */
  readonly storeName?: string
}

export interface LimiterStats {
  /** Store calls that failed (time-out, connection refused, …) since start. */
  readonly storeErrors: number
  /** True while the last store call failed. */
  readonly storeDown: boolean
  /** How many times the store went from answering to failing. */
  readonly outages: number
}

export interface Limiter {
  /** `now`: epoch ms (the memory and cluster stores use it; Redis uses the server's clock). */
  readonly admit: (key: string, spec: LimitSpec, estimateTokens: number, now?: number) => Promise<Admission>
  /** At the end of an admitted request (success, upstream error with usage, client abort): the exact tokens. */
  readonly settle: (reservation: Reservation, exactTokens: number) => Promise<void>
  /** When the request failed before using anything: frees its concurrency slot and token reservation. */
  readonly release: (reservation: Reservation) => Promise<void>
  /** Figures for the admin `/keys` endpoint, one entry per key, in the order given. */
  readonly inspect: (
    keys: ReadonlyArray<{ readonly name: string; readonly spec: LimitSpec }>,
    now?: number
  ) => Promise<ReadonlyArray<KeyUsage>>
  readonly stats: () => LimiterStats
  readonly close: () => Promise<void>
}

/** The reservation of a request no store counted (no limits, or the store failed under `open`). */
const noMeter = (key: string): Reservation => ({ key, done: false, unmetered: true })

export const makeLimiter = (options: LimiterOptions): Limiter => {
  const { store, logger } = options
  const policy = options.onStoreError ?? "open"
  const storeName = options.storeName ?? "limits store"
  let storeErrors = 0
  let storeDown = false
  let outages = 0

  const failed = (op: "admit" | "settle" | "inspect", error: unknown) => {
    storeErrors++
    options.onStoreFailure?.(op)
    if (storeDown) return
    storeDown = true
    outages++
    logger?.log("error", "limits store unavailable", {
      store: storeName,
      on_store_error: policy,
      error: error instanceof Error ? error.message : String(error)
    })
    options.onStoreTransition?.(false)
  }
  const answered = () => {
    if (!storeDown) return
    storeDown = false
    logger?.log("info", "limits store available again", { store: storeName })
    options.onStoreTransition?.(true)
  }
  const finish = async (reservation: Reservation, exact: number): Promise<void> => {
    if (reservation.done) return
    if (reservation.unmetered === true) {
      reservation.done = true
      return
    }
    try {
      await store.settle(reservation, exact)
      answered()
    } catch (e) {
      reservation.done = true
      failed("settle", e)
    }
  }

  return {
    admit: async (key, spec, estimateTokens, now = Date.now()) => {
      if (isUnlimited(spec)) return { _tag: "Admitted", reservation: noMeter(key), figures: undefined }
      let a: Awaited<ReturnType<LimitStore["admit"]>>
      try {
        a = await store.admit(key, spec, estimateTokens, now)
      } catch (e) {
        failed("admit", e)
        return policy === "open"
          ? { _tag: "Admitted", reservation: noMeter(key), figures: undefined }
          : { _tag: "StoreError" }
      }
      answered()
      if (a.admitted) return { _tag: "Admitted", reservation: a.reservation, figures: figuresOf(spec, a.counts) }
      return {
        _tag: "Refused",
        limit: a.limit,
        retryAfterMs: a.retryAfterMs,
        retryAfterSeconds: Math.max(1, Math.ceil(a.retryAfterMs / 1000)),
        figures: figuresOf(spec, a.counts)
      }
    },
    settle: finish,
    release: (reservation) => finish(reservation, 0),
    inspect: async (keys, now = Date.now()) => {
      try {
        const all = await Promise.all(keys.map((k) => store.inspect(k.name, now)))
        answered()
        return all.map((c, i) => usageOf(keys[i].name, keys[i].spec, c))
      } catch (e) {
        failed("inspect", e)
        throw e
      }
    },
    stats: () => ({ storeErrors, storeDown, outages }),
    close: () => store.close()
  }
}
