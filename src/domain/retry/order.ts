// The order of attempts within one request (SPEC §11): the next identity (provider key) among the candidates of
// the request's selection. Tiers in order: non-fallback entries by `priority` (highest first), then fallback
// entries by `priority`; within the first tier that has an eligible identity, weighted random by identity weight.
// Eligible: not already tried by this request and not cooling down. When none is eligible but some untried ones
// are cooling, `coolingWait` says which is free first and when (the caller compares that with `retry.max_wait`).
//
// The input shapes are structural, so the router can pass its own entries: an entry is `{provider: {priority,
// isFallback}, identities}` as in src/proxy/router.ts, and an identity needs a stable `id` (`identityId`, the key
// the CooldownRegistry uses) and a `weight`. The candidates are the router's pool after the prefix preference
// (fallback entries included). `next` allocates nothing: three passes over the entries.

export interface OrderIdentity {
  /** Stable across reloads (`identityId(providerId, keyIndex)`). */
  readonly id: string
  readonly weight: number
}

export interface OrderEntry<I extends OrderIdentity> {
  readonly provider: { readonly priority: number; readonly isFallback: boolean }
  readonly identities: ReadonlyArray<I>
}

/** What order needs of the cool-downs; `CooldownRegistry` is one (an object, not a closure: no allocation per call). */
export interface CoolingView {
  isCooling(id: string, nowMs: number): boolean
  remainingMs(id: string, nowMs: number): number
}

/** Orders tiers: non-fallback above fallback, then higher priority. */
const outranks = (a: OrderEntry<OrderIdentity>, b: OrderEntry<OrderIdentity>): boolean =>
  a.provider.isFallback !== b.provider.isFallback ? !a.provider.isFallback : a.provider.priority > b.provider.priority

const sameTier = (a: OrderEntry<OrderIdentity>, b: OrderEntry<OrderIdentity>): boolean =>
  a.provider.isFallback === b.provider.isFallback && a.provider.priority === b.provider.priority

const eligible = (
  i: OrderIdentity,
  tried: ReadonlySet<string> | undefined,
  cooling: CoolingView | undefined,
  nowMs: number
): boolean => !(tried?.has(i.id) ?? false) && !(cooling?.isCooling(i.id, nowMs) ?? false)

/**
 * The next identity to try: from the highest tier that has one not in `tried` and not cooling, weighted random
 * among those. Undefined when there is none (then see `coolingWait`).
 */
export const nextIdentity = <I extends OrderIdentity>(
  entries: ReadonlyArray<OrderEntry<I>>,
  tried: ReadonlySet<string> | undefined,
  cooling?: CoolingView,
  nowMs = 0,
  random: () => number = Math.random
): I | undefined => {
  // Pass 1: the best tier with an eligible identity.
  let best: OrderEntry<I> | undefined
  for (const e of entries) {
    if (best !== undefined && !outranks(e, best)) continue
    for (const i of e.identities) {
      if (eligible(i, tried, cooling, nowMs)) {
        best = e
        break
      }
    }
  }
  if (best === undefined) return undefined
  // Pass 2: the total weight of that tier's eligible identities (over every entry of the tier).
  let total = 0
  let last: I | undefined
  for (const e of entries) {
    if (!sameTier(e, best)) continue
    for (const i of e.identities) {
      if (eligible(i, tried, cooling, nowMs)) {
        total += i.weight
        last = i
      }
    }
  }
  // Pass 3: the weighted pick.
  let r = random() * total
  for (const e of entries) {
    if (!sameTier(e, best)) continue
    for (const i of e.identities) {
      if (!eligible(i, tried, cooling, nowMs)) continue
      r -= i.weight
      if (r < 0) return i
    }
  }
  return last
}

/**
 * When no identity is eligible: the untried identity that is free first and the ms until then, or undefined when
 * every identity has been tried.
 */
export const coolingWait = <I extends OrderIdentity>(
  entries: ReadonlyArray<OrderEntry<I>>,
  tried: ReadonlySet<string> | undefined,
  cooling: CoolingView,
  nowMs: number
): { readonly identity: I; readonly waitMs: number } | undefined => {
  let identity: I | undefined
  let waitMs = Number.POSITIVE_INFINITY
  for (const e of entries) {
    for (const i of e.identities) {
      if (tried?.has(i.id)) continue
      const r = cooling.remainingMs(i.id, nowMs)
      if (r < waitMs) {
        waitMs = r
        identity = i
      }
    }
  }
  return identity === undefined ? undefined : { identity, waitMs }
}
