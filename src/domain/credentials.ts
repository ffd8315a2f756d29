// Credential rules (SPEC §4): where each provider type reads the client's key, constant-time comparison,
// removal of the `key` query parameter, and the provider credential the upstream receives. Policy only: the
// header bytes are read and written by src/proxy/headers.ts.
import { hash, timingSafeEqual } from "node:crypto"
import * as Redacted from "effect/Redacted"
import type { ProviderType } from "../config/types.js"

/** The credential-bearing request headers (first occurrence of each), as src/proxy/headers.ts scans them. */
export interface CredentialHeaders {
  readonly authorization: string | undefined
  readonly proxyAuthorization: string | undefined
  readonly xApiKey: string | undefined
  readonly xGoogApiKey: string | undefined
  readonly anthropicBeta: string | undefined
}

/** SHA-256 of a key: comparing fixed-size digests makes the comparison constant-time in the key's length too. */
export const keyDigest = (key: string): Buffer => hash("sha256", key, "buffer")

/**
 * `keyDigest`, remembered per connection: a kept-alive connection usually sends the same key on every request.
 * Comparing a key with the same connection's previous key reveals nothing about the configured keys, so the
 * shortcut keeps the check against them constant-time. One per request path (held by its context), not a
 * module global: two proxies embedded in one process share nothing.
 */
export class ConnectionKeyDigests {
  private readonly last = new WeakMap<object, { readonly key: string; readonly digest: Buffer }>()
  of(connection: object, key: string): Buffer {
    const last = this.last.get(connection)
    if (last !== undefined && last.key === key) return last.digest
    const digest = keyDigest(key)
    this.last.set(connection, { key, digest })
    return digest
  }
}

/** True when `digest` equals one of `accepted`; every entry is compared, whatever matches first. */
export const digestAccepted = (digest: Buffer, accepted: ReadonlyArray<Buffer>): boolean => {
  let ok = false
  for (let i = 0; i < accepted.length; i++) {
    if (timingSafeEqual(digest, accepted[i])) ok = true
  }
  return ok
}

const bearer = (value: string | undefined): string | undefined => {
  if (value === undefined) return undefined
  if (value.length > 7 && value.slice(0, 7).toLowerCase() === "bearer ") {
    const token = value.slice(7).trim()
    return token.length > 0 ? token : undefined
  }
  return undefined
}

/** Splits `/a/b?x=1&key=K` into path and query (query without "?", or undefined). */
export const splitPath = (url: string): { path: string; query: string | undefined } => {
  const q = url.indexOf("?")
  return q === -1 ? { path: url, query: undefined } : { path: url.slice(0, q), query: url.slice(q + 1) }
}

/** A query string that may hold a `key` parameter in some spelling (any case, percent-encoded). */
export const mayHoldKey = (query: string): boolean => /key|%/i.test(query)

/** The parameter's name, decoded; undefined when it cannot be decoded. */
const paramName = (segment: string): string | undefined => {
  const eq = segment.indexOf("=")
  const name = eq === -1 ? segment : segment.slice(0, eq)
  if (!name.includes("%") && !name.includes("+")) return name
  try {
    return decodeURIComponent(name.replace(/\+/g, " "))
  } catch {
    return undefined
  }
}

/** `key` in any letter case or encoding: every spelling is removed before forwarding (SPEC §4). */
const isKeyParam = (segment: string): boolean => paramName(segment)?.toLowerCase() === "key"

/** The first `key` query parameter's value (decoded), for gemini clients. */
export const queryKey = (query: string | undefined): string | undefined => {
  if (query === undefined || !mayHoldKey(query)) return undefined
  for (const segment of query.split("&")) {
    // the client key is read from `key` itself (Google's parameter); other spellings are only removed
    if (paramName(segment) === "key") {
      const eq = segment.indexOf("=")
      if (eq === -1) return undefined
      try {
        const v = decodeURIComponent(segment.slice(eq + 1).replace(/\+/g, " "))
        return v.length > 0 ? v : undefined
      } catch {
        return undefined
      }
    }
  }
  return undefined
}

/** The query without any `key` parameter, other parameters byte for byte; undefined when nothing is left. */
export const stripKeyParam = (query: string | undefined): string | undefined => {
  if (query === undefined) return undefined
  if (!mayHoldKey(query)) return query
  const kept = query.split("&").filter((s) => !isKeyParam(s))
  return kept.length === 0 ? undefined : kept.join("&")
}

/** The client's key for a provider type, from the places SPEC §4 lists, first present wins. */
export const clientKeyFor = (
  type: ProviderType,
  info: CredentialHeaders,
  query: string | undefined,
  wsProtocolKey?: string
): string | undefined => {
  switch (type) {
    case "openai":
      return bearer(info.authorization) ?? bearer(info.proxyAuthorization) ?? wsProtocolKey
    case "anthropic":
      return nonEmpty(info.xApiKey) ?? bearer(info.authorization) ?? bearer(info.proxyAuthorization)
    case "gemini":
      return nonEmpty(info.xGoogApiKey) ?? queryKey(query) ?? bearer(info.proxyAuthorization)
    case "forward":
      return undefined
  }
}

const nonEmpty = (v: string | undefined): string | undefined => {
  if (v === undefined) return undefined
  const t = v.trim()
  return t.length > 0 ? t : undefined
}

const OAUTH_BETA = "oauth-2025-04-20"

/**
 * Anthropic: whether the client authenticated with a Bearer token (`Authorization` or `Proxy-Authorization`)
 * rather than `x-api-key`, read in the order of `clientKeyFor`.
 */
const clientUsedBearer = (info: CredentialHeaders): boolean =>
  nonEmpty(info.xApiKey) === undefined &&
  (bearer(info.authorization) !== undefined || bearer(info.proxyAuthorization) !== undefined)

/**
 * The header pairs that carry the provider key upstream (added exactly once), spelled as OpenProxy writes them:
 * `Authorization`, `X-API-Key`, `x-goog-api-key` (some upstream harnesses compare raw header bytes).
 * Anthropic uses the form the client used (SPEC §4): Bearer when the client sent a Bearer token, so a static
 * OAuth token configured as `api_key` works for clients that send one, else `X-API-Key`. A `$(command)` key
 * (`fromCommand`) is always Bearer plus the OAuth beta flag, merged into the client's `anthropic-beta` (whose
 * original headers are then dropped, see `ANTHROPIC_BETA_DROP`) and joined with ", ".
 * `client` is the request's header scan (undefined for the proxy's own requests, such as health probes).
 */
export const providerCredentialHeaders = (
  type: ProviderType,
  key: Redacted.Redacted<string> | undefined,
  fromCommand: boolean,
  client: CredentialHeaders | undefined
): Array<string> => {
  if (key === undefined) return []
  const value = Redacted.value(key)
  switch (type) {
    case "openai":
      return ["Authorization", `Bearer ${value}`]
    case "anthropic": {
      if (fromCommand) return ["Authorization", `Bearer ${value}`, "anthropic-beta", mergeBeta(client?.anthropicBeta)]
      return client !== undefined && clientUsedBearer(client)
        ? ["Authorization", `Bearer ${value}`]
        : ["X-API-Key", value]
    }
    case "gemini":
      return ["x-goog-api-key", value]
    case "forward":
      return []
  }
}

/** The client's `anthropic-beta` values (all its headers, comma lists) plus the OAuth flag, once, joined ", ". */
const mergeBeta = (client: string | undefined): string => {
  if (client === undefined) return OAUTH_BETA
  let out = ""
  for (const raw of client.split(",")) {
    const b = raw.trim()
    if (b.length === 0 || b === OAUTH_BETA) continue
    out += `${b}, `
  }
  return out + OAUTH_BETA
}

/** Headers the credential injection replaces, to drop from the client's copy. */
export const ANTHROPIC_BETA_DROP: ReadonlySet<string> = new Set(["anthropic-beta"])
