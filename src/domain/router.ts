// Routing and selection (SPEC §3) over one config snapshot: host/port/prefix matching, client-key checks,
// health, fallback, priority tiers and weighted random choice of an upstream identity (provider + key).
// A Router is immutable; a new one is built for every config snapshot, and a request keeps the one it started with.
import { timingSafeEqual } from "node:crypto"
import * as Redacted from "effect/Redacted"
import { hashName } from "../config/clientKeys.js"
import type { ConfigSnapshot, ProviderConfig, ProviderKey, ProviderType } from "../config/types.js"
import { keyDigest } from "./credentials.js"
import { providerIdOf } from "./providers.js"
import { type CoolingView, coolingWait, nextIdentity } from "./retry/order.js"
import { identityId } from "./retry/registry.js"

/** One upstream identity: a provider and one of its keys (or none), with its selection weight. */
export interface Identity {
  readonly provider: ProviderConfig
  /** Stable across reloads while the provider's routing-relevant settings are unchanged (SPEC §6). */
  readonly providerId: string
  /** `identityId(providerId, keyIndex)`: the key of the cool-down registry and of a request's tried set (SPEC §11). */
  readonly id: string
  readonly key: ProviderKey | undefined
  readonly weight: number
}

/**
 * What a request avoids besides unhealthy and excluded providers (SPEC §11): identities it already tried and
 * identities cooling down. The exchange itself is one (no allocation per route call).
 */
export interface Avoid {
  readonly tried: ReadonlySet<string> | undefined
  readonly cooling: CoolingView | undefined
  /** Epoch ms the cool-downs are compared with. */
  readonly now: number
}

interface Entry {
  readonly provider: ProviderConfig
  readonly providerId: string
  /** No client auth for this provider (forward, or no global nor provider-level keys). */
  readonly open: boolean
  readonly accepted: ReadonlyArray<Buffer>
  /** The name of each accepted key (SPEC §10), same order as `accepted`. */
  readonly acceptedNames: ReadonlyArray<string>
  readonly identities: ReadonlyArray<Identity>
}

export type RouteResult =
  | { readonly _tag: "NotFound" }
  | { readonly _tag: "Unauthorized" }
  | { readonly _tag: "Unavailable" }
  | {
      readonly _tag: "Ok"
      readonly identity: Identity
      readonly path: string
      readonly candidates: number
      /** The name of the client key that was accepted (SPEC §10); undefined when no key was checked. */
      readonly keyName: string | undefined
    }
  | {
      /** Every identity of the route not yet tried is cooling down: `identity` is free first, in `waitMs`. */
      readonly _tag: "Cooling"
      readonly identity: Identity
      readonly path: string
      readonly waitMs: number
      readonly keyName: string | undefined
    }

const NOT_FOUND: RouteResult = { _tag: "NotFound" }
const UNAUTHORIZED: RouteResult = { _tag: "Unauthorized" }
const UNAVAILABLE: RouteResult = { _tag: "Unavailable" }

/** True when `prefix` covers `url`: equal, or followed by `/` or `?` (SPEC §3.2; `/openai` not `/openai-x`). */
const prefixCovers = (prefix: string, url: string): boolean => {
  if (prefix === "") return true
  if (!url.startsWith(prefix)) return false
  if (url.length === prefix.length) return true
  const c = url.charCodeAt(prefix.length)
  return c === 47 /* / */ || c === 63 /* ? */
}

/** Path after removing a prefix that covers it (`/openai` alone and `/openai?x` become `/` and `/?x`). */
const stripPrefix = (prefix: string, url: string): string => {
  if (prefix === "") return url
  const rest = url.slice(prefix.length)
  if (rest === "") return "/"
  return rest.charCodeAt(0) === 63 /* ? */ ? "/" + rest : rest
}

/**
 * The index in `accepted` of the entry equal to `digest`, or -1; every entry is compared, whatever matches
 * first (constant time with respect to which key matched).
 */
const acceptedIndex = (digest: Buffer, accepted: ReadonlyArray<Buffer>): number => {
  let found = -1
  for (let i = 0; i < accepted.length; i++) {
    if (timingSafeEqual(digest, accepted[i])) found = i
  }
  return found
}

/** The client's key digest per provider type, computed at most once per route() call. */
class KeyDigests {
  private openai: Buffer | null | undefined
  private anthropic: Buffer | null | undefined
  private gemini: Buffer | null | undefined
  constructor(
    private readonly clientKey: (type: ProviderType) => string | undefined,
    private readonly digest: (key: string) => Buffer
  ) {}
  get(type: ProviderType): Buffer | null {
    switch (type) {
      case "openai":
        if (this.openai === undefined) this.openai = this.compute(type)
        return this.openai
      case "anthropic":
        if (this.anthropic === undefined) this.anthropic = this.compute(type)
        return this.anthropic
      case "gemini":
        if (this.gemini === undefined) this.gemini = this.compute(type)
        return this.gemini
      case "forward":
        return null
    }
  }
  private compute(type: ProviderType): Buffer | null {
    const k = this.clientKey(type)
    return k === undefined ? null : this.digest(k)
  }
}

export class Router {
  /** Entries by lower-cased host name, longest path prefix first. */
  private readonly byHost = new Map<string, Array<Entry>>()
  readonly providerIds: ReadonlyArray<string>

  constructor(
    readonly snapshot: ConfigSnapshot,
    private readonly isHealthy: (providerId: string) => boolean = () => true
  ) {
    const names = new Map<string, string>()
    for (const k of snapshot.clientKeys ?? []) names.set(Redacted.value(k.key), k.name)
    const nameOf = (k: Redacted.Redacted<string>) => names.get(Redacted.value(k)) ?? hashName(k)
    const globalDigests = snapshot.authKeys.map((k) => keyDigest(Redacted.value(k)))
    const globalNames = snapshot.authKeys.map(nameOf)
    const ids: Array<string> = []
    for (const p of snapshot.providers) {
      const providerId = providerIdOf(p)
      ids.push(providerId)
      const accepted = [...globalDigests, ...p.authKeys.map((k) => keyDigest(Redacted.value(k)))]
      const acceptedNames = [...globalNames, ...p.authKeys.map(nameOf)]
      const identities: Array<Identity> =
        p.keys.length === 0
          ? [{ provider: p, providerId, id: identityId(providerId, 0), key: undefined, weight: p.weight }]
          : p.keys.map((key, k) => ({
              provider: p,
              providerId,
              id: identityId(providerId, k),
              key,
              weight: key.weight
            }))
      const entry: Entry = {
        provider: p,
        providerId,
        open: p.type === "forward" || accepted.length === 0,
        accepted,
        acceptedNames,
        identities
      }
      const list = this.byHost.get(p.host.name) ?? []
      list.push(entry)
      this.byHost.set(p.host.name, list)
    }
    for (const list of this.byHost.values())
      list.sort((a, b) => b.provider.host.pathPrefix.length - a.provider.host.pathPrefix.length)
    this.providerIds = ids
  }

  /**
   * SPEC §3.3: matching providers (host, port, a prefix covering the path or none) → those accepting the client's
   * key (none: 401) → healthy and not `exclude`d (none: 503) → the longest matching prefix among those →
   * non-fallback if any → highest priority → weighted random. The key is checked before any prefix preference,
   * so a key accepted only by an un-prefixed provider reaches it with the path unchanged.
   * `clientKey(type)` yields the client's key as that type reads it. With `avoid` (SPEC §11), an entry whose
   * identities are all tried or cooling is skipped like an unhealthy one, and the pick is `nextIdentity`'s (same
   * tiers, weighted among the eligible identities); when only cooling ones are left: `Cooling`.
   */
  route(
    hostname: string,
    port: number,
    url: string,
    clientKey: (type: ProviderType) => string | undefined,
    exclude?: ReadonlySet<string>,
    digest: (key: string) => Buffer = keyDigest,
    avoid?: Avoid
  ): RouteResult {
    const list = this.byHost.get(hostname)
    if (list === undefined) return NOT_FOUND
    if (list.length === 1 && exclude === undefined && avoid === undefined) {
      // The common case, one provider for the host name: no intermediate state.
      const e = list[0]
      const hp = e.provider.host
      if ((hp.port !== undefined && hp.port !== port) || !prefixCovers(hp.pathPrefix, url)) return NOT_FOUND
      let keyName: string | undefined
      if (!e.open) {
        const k = clientKey(e.provider.type)
        const i = k === undefined ? -1 : acceptedIndex(digest(k), e.accepted)
        if (i < 0) return UNAUTHORIZED
        keyName = e.acceptedNames[i]
      }
      if (!this.isHealthy(e.providerId)) return UNAVAILABLE
      const identity = e.identities.length === 1 ? e.identities[0] : pickWeighted([e])
      return { _tag: "Ok", identity, path: stripPrefix(hp.pathPrefix, url), candidates: 1, keyName }
    }
    let digests: KeyDigests | undefined
    // A key has one name wherever it is accepted (the config loader checks), so the first match names it.
    let keyName: string | undefined
    let matched = false
    let accepted = false
    // The list is sorted by prefix length, longest first: the first usable entry fixes the prefix, and the pool
    // ends where the prefix gets shorter (two prefixes of equal length covering one path are the same prefix).
    let pool: Array<Entry> | undefined
    let prefixLen = -1
    /** Entries skipped only because every identity is tried or cooling (SPEC §11). */
    let cooling: Array<Entry> | undefined
    for (const e of list) {
      const hp = e.provider.host
      if (pool !== undefined && hp.pathPrefix.length < prefixLen) break
      if (hp.port !== undefined && hp.port !== port) continue
      if (!prefixCovers(hp.pathPrefix, url)) continue
      matched = true
      if (!e.open) {
        digests ??= new KeyDigests(clientKey, digest)
        const d = digests.get(e.provider.type)
        const i = d === null ? -1 : acceptedIndex(d, e.accepted)
        if (i < 0) continue
        keyName ??= e.acceptedNames[i]
      }
      accepted = true
      if (exclude?.has(e.providerId) || !this.isHealthy(e.providerId)) continue
      if (avoid !== undefined && !hasEligible(e, avoid)) {
        cooling ??= []
        cooling.push(e)
        continue
      }
      if (pool === undefined) {
        pool = [e]
        prefixLen = hp.pathPrefix.length
      } else pool.push(e)
    }
    if (pool === undefined) {
      if (cooling !== undefined && avoid?.cooling !== undefined) {
        const w = coolingWait(cooling, avoid.tried, avoid.cooling, avoid.now)
        if (w !== undefined) {
          const path = stripPrefix(w.identity.provider.host.pathPrefix, url)
          return { _tag: "Cooling", identity: w.identity, path, waitMs: w.waitMs, keyName }
        }
      }
      return !matched ? NOT_FOUND : !accepted ? UNAUTHORIZED : UNAVAILABLE
    }
    const path = stripPrefix(pool[0].provider.host.pathPrefix, url)
    if (avoid !== undefined) {
      // Every pool entry has an eligible identity, so there is one.
      const identity = nextIdentity(pool, avoid.tried, avoid.cooling, avoid.now) as Identity
      return { _tag: "Ok", identity, path, candidates: pool.length, keyName }
    }
    if (pool.length === 1) {
      const e = pool[0]
      const identity = e.identities.length === 1 ? e.identities[0] : pickWeighted(pool)
      return { _tag: "Ok", identity, path, candidates: 1, keyName }
    }
    let primaries = 0
    for (const e of pool) if (!e.provider.isFallback) primaries++
    const fallback = primaries === 0
    let top = Number.NEGATIVE_INFINITY
    for (const e of pool) if (e.provider.isFallback === fallback && e.provider.priority > top) top = e.provider.priority
    const tier = pool.filter((e) => e.provider.isFallback === fallback && e.provider.priority === top)
    return {
      _tag: "Ok",
      identity: pickWeighted(tier),
      path,
      candidates: fallback ? pool.length : primaries,
      keyName
    }
  }
}

/** Whether an entry has an identity not tried by the request and not cooling down. */
const hasEligible = (e: Entry, avoid: Avoid): boolean => {
  for (const i of e.identities) {
    if (avoid.tried?.has(i.id) === true) continue
    if (avoid.cooling?.isCooling(i.id, avoid.now) === true) continue
    return true
  }
  return false
}

const pickWeighted = (tier: ReadonlyArray<Entry>): Identity => {
  if (tier.length === 1 && tier[0].identities.length === 1) return tier[0].identities[0]
  let total = 0
  for (const e of tier) for (const i of e.identities) total += i.weight
  let r = Math.random() * total
  for (const e of tier) {
    for (const i of e.identities) {
      r -= i.weight
      if (r < 0) return i
    }
  }
  const last = tier[tier.length - 1].identities
  return last[last.length - 1]
}
