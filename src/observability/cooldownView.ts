// The admin listener's view of provider keys cooling down after a rate limit (SPEC §11): per provider of
// `/providers`, each cooling key by its index, until when, and why (the status and the header that named the time),
// from the request path's CooldownRegistry. Never a key: identities are named by provider and key index only.
// With `workers: N` every worker has its own registry; the primary merges the workers' lists (`mergeCooldowns`).
import { type CooldownRegistry, identityId } from "../domain/retry/index.js"
import type { KeyCooldownView } from "./adminHttp.js"

const NONE: ReadonlyArray<KeyCooldownView> = []

/** The keys of provider `providerId` (`keyCount` keys; a provider without keys has one identity) cooling now. */
export const keyCooldowns = (
  registry: CooldownRegistry | undefined,
  providerId: string,
  keyCount: number,
  nowMs: number
): ReadonlyArray<KeyCooldownView> => {
  if (registry === undefined || registry.size === 0) return NONE
  const out: Array<KeyCooldownView> = []
  for (let k = 0; k < Math.max(1, keyCount); k++) {
    const e = registry.entry(identityId(providerId, k), nowMs)
    if (e === undefined) continue
    out.push({
      key: k,
      until: new Date(e.untilMs).toISOString(),
      remaining_ms: e.untilMs - nowMs,
      status: e.status,
      source: e.source,
      since: new Date(e.sinceMs).toISOString(),
      workers: 1
    })
  }
  return out
}

/**
 * Two processes' lists for one provider as one: per key, the cool-down that lasts longest (its cause with it), and
 * `workers` summed. A key cooling in some workers only is still avoided by those; the count says how many.
 */
export const mergeCooldowns = (
  a: ReadonlyArray<KeyCooldownView>,
  b: ReadonlyArray<KeyCooldownView>
): ReadonlyArray<KeyCooldownView> => {
  if (b.length === 0) return a
  if (a.length === 0) return b
  const byKey = new Map<number, KeyCooldownView>()
  for (const c of [...a, ...b]) {
    const seen = byKey.get(c.key)
    if (seen === undefined) {
      byKey.set(c.key, c)
      continue
    }
    const later = c.until > seen.until ? c : seen
    byKey.set(c.key, { ...later, workers: seen.workers + c.workers })
  }
  return [...byKey.values()].sort((x, y) => x.key - y.key)
}
