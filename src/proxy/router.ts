// Routing and selection (SPEC §3) over one config snapshot: host/port/prefix matching, client-key checks,
// health, fallback, priority tiers and weighted random choice of an upstream identity (provider + key).
// A Router is immutable; a new one is built for every config snapshot, and a request keeps the one it started with.
import { createHash } from "node:crypto"
import * as Redacted from "effect/Redacted"
import type { ConfigSnapshot, ProviderConfig, ProviderKey, ProviderType } from "../config/types.js"
import { digestAccepted, keyDigest } from "./credentials.js"

/** One upstream identity: a provider and one of its keys (or none), with its selection weight. */
export interface Identity {
  readonly provider: ProviderConfig
  /** Stable across reloads while the provider's routing-relevant settings are unchanged (SPEC §6). */
  readonly providerId: string
  readonly key: ProviderKey | undefined
  readonly weight: number
}

interface Entry {
  readonly provider: ProviderConfig
  readonly providerId: string
  /** No client auth for this provider (forward, or no global nor provider-level keys). */
  readonly open: boolean
  readonly accepted: ReadonlyArray<Buffer>
  readonly identities: ReadonlyArray<Identity>
}

export type RouteResult =
  | { readonly _tag: "NotFound" }
  | { readonly _tag: "Unauthorized" }
  | { readonly _tag: "Unavailable" }
  | { readonly _tag: "Ok"; readonly identity: Identity; readonly path: string; readonly candidates: number }

const NOT_FOUND: RouteResult = { _tag: "NotFound" }
const UNAUTHORIZED: RouteResult = { _tag: "Unauthorized" }
const UNAVAILABLE: RouteResult = { _tag: "Unavailable" }

/** Identity of a provider for health bookkeeping: same type, host, endpoint, port, TLS settings and keys. */
export const providerIdOf = (p: ProviderConfig): string => {
  const h = createHash("sha256")
  h.update(
    JSON.stringify([p.type, p.hostRaw, p.endpointHost, p.endpointPort, p.tls, p.http2, p.caFile ?? "", p.ca ?? ""])
  )
  for (const k of p.keys) {
    h.update(k.source._tag === "Static" ? Redacted.value(k.source.value) : `$(${Redacted.value(k.source.command)})`)
    h.update("\0")
  }
  return `${p.index}:${p.type}:${h.digest("hex").slice(0, 16)}`
}

/** Path after removing a provider's prefix; `undefined` when the prefix does not match (SPEC §3.2). */
const matchPrefix = (prefix: string, path: string): string | undefined => {
  if (prefix === "") return path
  if (!path.startsWith(prefix)) return undefined
  const rest = path.slice(prefix.length)
  if (rest === "") return "/"
  const c = rest.charCodeAt(0)
  if (c === 47 /* / */) return rest
  if (c === 63 /* ? */) return "/" + rest
  return undefined
}

export class Router {
  /** Entries by lower-cased host name, longest path prefix first. */
  private readonly byHost = new Map<string, Array<Entry>>()
  readonly providerIds: ReadonlyArray<string>

  constructor(
    readonly snapshot: ConfigSnapshot,
    private readonly isHealthy: (providerId: string) => boolean = () => true
  ) {
    const globalDigests = snapshot.authKeys.map((k) => keyDigest(Redacted.value(k)))
    const ids: Array<string> = []
    for (const p of snapshot.providers) {
      const providerId = providerIdOf(p)
      ids.push(providerId)
      const accepted = [...globalDigests, ...p.authKeys.map((k) => keyDigest(Redacted.value(k)))]
      const identities: Array<Identity> =
        p.keys.length === 0
          ? [{ provider: p, providerId, key: undefined, weight: p.weight }]
          : p.keys.map((key) => ({ provider: p, providerId, key, weight: key.weight }))
      const entry: Entry = {
        provider: p,
        providerId,
        open: p.type === "forward" || accepted.length === 0,
        accepted,
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

  /** Providers whose host matches, restricted to the longest matching path prefix; with the stripped path. */
  match(hostname: string, port: number, url: string): { entries: Array<Entry>; path: string } | undefined {
    const list = this.byHost.get(hostname)
    if (list === undefined) return undefined
    let bestLen = -1
    let path = url
    let entries: Array<Entry> | undefined
    for (const e of list) {
      const hp = e.provider.host
      if (hp.port !== undefined && hp.port !== port) continue
      if (bestLen !== -1 && hp.pathPrefix.length < bestLen) break
      const stripped = matchPrefix(hp.pathPrefix, url)
      if (stripped === undefined) continue
      if (entries === undefined) {
        entries = [e]
        bestLen = hp.pathPrefix.length
        path = stripped
      } else entries.push(e)
    }
    return entries === undefined ? undefined : { entries, path }
  }

  /**
   * SPEC §3.3: matching → accepting the client's key (none: 401) → healthy (none: 503) → non-fallback if any
   * → highest priority → weighted random. `clientKey(type)` yields the client's key as that type reads it.
   */
  route(
    hostname: string,
    port: number,
    url: string,
    clientKey: (type: ProviderType) => string | undefined,
    exclude?: ReadonlySet<string>,
    digest: (key: string) => Buffer = keyDigest
  ): RouteResult {
    const m = this.match(hostname, port, url)
    if (m === undefined) return NOT_FOUND
    if (m.entries.length === 1 && exclude === undefined) {
      // The common case, one provider for the route: no intermediate arrays.
      const e = m.entries[0]
      if (!e.open) {
        const k = clientKey(e.provider.type)
        if (k === undefined || !digestAccepted(digest(k), e.accepted)) return UNAUTHORIZED
      }
      if (!this.isHealthy(e.providerId)) return UNAVAILABLE
      const identity = e.identities.length === 1 ? e.identities[0] : pickWeighted([e])
      return { _tag: "Ok", identity, path: m.path, candidates: 1 }
    }
    const digests = new Map<ProviderType, Buffer | null>()
    const accepting: Array<Entry> = []
    for (const e of m.entries) {
      if (e.open) {
        accepting.push(e)
        continue
      }
      let d = digests.get(e.provider.type)
      if (d === undefined) {
        const k = clientKey(e.provider.type)
        d = k === undefined ? null : digest(k)
        digests.set(e.provider.type, d)
      }
      if (d !== null && digestAccepted(d, e.accepted)) accepting.push(e)
    }
    if (accepting.length === 0) return UNAUTHORIZED
    let healthy = accepting.filter((e) => this.isHealthy(e.providerId) && !exclude?.has(e.providerId))
    if (healthy.length === 0) return UNAVAILABLE
    const primary = healthy.filter((e) => !e.provider.isFallback)
    if (primary.length > 0) healthy = primary
    let top = Number.NEGATIVE_INFINITY
    for (const e of healthy) if (e.provider.priority > top) top = e.provider.priority
    const tier = healthy.filter((e) => e.provider.priority === top)
    return { _tag: "Ok", identity: pickWeighted(tier), path: m.path, candidates: healthy.length }
  }
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
