// Which upstream identities (a provider key) are cooling down after a rate limit (SPEC §11), so selection skips
// them like unhealthy ones. Keyed by a stable identity id (`identityId`: the provider id health uses, which is
// stable across reloads while the provider is unchanged, plus the key's index), so one registry kept for the life
// of the process carries a cool-down across a reload for an unchanged identity and lets a removed one expire.
// Per process: each worker learns a key's limit from its own 429 (documented in docs/retries.md).
// A check is one Map lookup and no allocation; expired entries are dropped when met and swept as the map grows.
// Why each identity cools (the answer's status, which header named the time, when) is kept beside it, read only
// by the admin listener's `/providers` (observability/cooldownView.ts).
import type { CooldownSource } from "./cooldown.js"

/** The id of a provider's key `keyIndex` (0 for a provider without keys). */
export const identityId = (providerId: string, keyIndex: number): string => `${providerId}#${keyIndex}`

/** Why an identity cools down: the provider's answer that asked for it. */
export interface CooldownCause {
  /** 429, or a 503/529 that named a time. */
  readonly status: number
  /** The header the time came from (`default`: a 429 naming none, 1 s). */
  readonly source: CooldownSource
  /** Epoch ms the answer arrived. */
  readonly sinceMs: number
}

/** One cooling identity as the admin listener shows it. */
export interface CooldownEntry extends CooldownCause {
  /** Epoch ms it is free again. */
  readonly untilMs: number
}

/** Swept for expired entries whenever it grows past this (a config has far fewer identities). */
const SWEEP_AT = 1024

export class CooldownRegistry {
  private readonly until = new Map<string, number>()
  /** The cause of each entry of `until` that was given one (same keys; dropped with them). */
  private readonly causes = new Map<string, CooldownCause>()
  private sweepAt = SWEEP_AT
  private nextSweep = 0

  /** Cools `id` down until `untilMs` (epoch ms), for `cause`; an existing later cool-down (and its cause) is kept. */
  cool(id: string, untilMs: number, nowMs: number = Date.now(), cause?: CooldownCause): void {
    const prev = this.until.get(id)
    if (prev !== undefined && prev >= untilMs) return
    this.until.set(id, untilMs)
    if (cause === undefined) this.causes.delete(id)
    else this.causes.set(id, cause)
    if (this.until.size >= this.sweepAt) this.sweep(nowMs)
  }

  /** True while `id` is cooling down at `nowMs`. */
  isCooling(id: string, nowMs: number): boolean {
    const t = this.until.get(id)
    if (t === undefined) return false
    if (t > nowMs) return true
    this.drop(id)
    return false
  }

  /** Milliseconds until `id` is free (0 when it is). */
  remainingMs(id: string, nowMs: number): number {
    const t = this.until.get(id)
    return t === undefined || t <= nowMs ? 0 : t - nowMs
  }

  /** Milliseconds until the first of `ids` is free: 0 when one is free now (or `ids` is empty). */
  earliest(ids: Iterable<string>, nowMs: number): number {
    let min = Number.POSITIVE_INFINITY
    for (const id of ids) {
      const r = this.remainingMs(id, nowMs)
      if (r === 0) return 0
      if (r < min) min = r
    }
    return min === Number.POSITIVE_INFINITY ? 0 : min
  }

  /** Ends a cool-down early (a key that answered again). */
  clear(id: string): void {
    this.drop(id)
  }

  /** `id`'s cool-down now, with its cause (status 0, source `default` when none was given); undefined: free. */
  entry(id: string, nowMs: number): CooldownEntry | undefined {
    const t = this.until.get(id)
    if (t === undefined || t <= nowMs) return undefined
    const c = this.causes.get(id)
    return { untilMs: t, status: c?.status ?? 0, source: c?.source ?? "default", sinceMs: c?.sinceMs ?? nowMs }
  }

  /** Identities cooling down at `nowMs` and the ms each has left (admin `/keys`, tests). */
  cooling(nowMs: number): Array<[string, number]> {
    const out: Array<[string, number]> = []
    for (const [id, t] of this.until) if (t > nowMs) out.push([id, t - nowMs])
    return out
  }

  /**
   * True while some identity may be cooling down: false at once when none ever was (the request path's fast
   * path); otherwise sweeps expired entries at most once a second, so an idle registry turns false again.
   */
  anyCooling(nowMs: number): boolean {
    if (this.until.size === 0) return false
    if (nowMs >= this.nextSweep) {
      this.sweep(nowMs)
      this.nextSweep = nowMs + 1000
    }
    return this.until.size > 0
  }

  /** Entries held, expired ones included until met or swept. */
  get size(): number {
    return this.until.size
  }

  /** Drops expired entries. */
  sweep(nowMs: number): void {
    for (const [id, t] of this.until) if (t <= nowMs) this.drop(id)
    this.sweepAt = Math.max(SWEEP_AT, this.until.size * 2)
  }

  private drop(id: string): void {
    this.until.delete(id)
    this.causes.delete(id)
  }
}
