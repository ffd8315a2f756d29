// The mock provider's state: the keys it accepts, its fault rules and counts, the requests it recorded and the
// gates a gated SSE waits on; and provider authentication (each family's credential rules, then a fault if one
// matches), which every API route goes through.
import { applyFault, type Family, Faults } from "./faults.js"
import * as F from "./fixtures.js"
import { bearer, EMPTY_SHA256, hasHeader, headerValues, type In, keySet, noop, type Out, sendJson } from "./http.js"
import { DEFAULT_KEYS, type MockOptions, type RecordedRequest } from "./types.js"

export type MockState = ReturnType<typeof makeMockState>

export const makeMockState = (opts: MockOptions) => {
  const keys = {
    openai: keySet(opts.keys?.openai ?? DEFAULT_KEYS.openai),
    anthropic: keySet(opts.keys?.anthropic ?? DEFAULT_KEYS.anthropic),
    gemini: keySet(opts.keys?.gemini ?? DEFAULT_KEYS.gemini)
  }
  const faults = new Faults()
  if (opts.faults !== undefined) faults.add(opts.faults)
  const record = opts.record !== false
  const received: RecordedRequest[] = []
  const pendingReleases = new Set<string>()
  const gateWaiters = new Map<string, Set<() => void>>()

  const release = (gate: string): void => {
    const waiters = gateWaiters.get(gate)
    if (waiters === undefined || waiters.size === 0) {
      pendingReleases.add(gate)
      return
    }
    gateWaiters.delete(gate)
    for (const w of waiters) w()
  }

  /** Calls `go` once `gate` is released; returns a canceller. */
  const waitGate = (gate: string, go: () => void): (() => void) => {
    if (pendingReleases.delete(gate)) {
      go()
      return noop
    }
    let set = gateWaiters.get(gate)
    if (set === undefined) {
      set = new Set()
      gateWaiters.set(gate, set)
    }
    set.add(go)
    const s = set
    return () => {
      s.delete(go)
    }
  }

  const recordRequest = (req: In, url: string): RecordedRequest | undefined => {
    if (!record) return undefined
    const rec: RecordedRequest = {
      method: req.method ?? "",
      path: url,
      httpVersion: req.httpVersion,
      rawHeaders: req.rawHeaders,
      bodyBytes: 0,
      bodySha256: EMPTY_SHA256,
      time: Date.now()
    }
    received.push(rec)
    return rec
  }

  // ----- auth -----

  const accepts = (set: ReadonlySet<string>, key: string | undefined): boolean => key !== undefined && set.has(key)

  const authOpenAI = (raw: string[]): string | undefined => {
    const values = headerValues(raw, "authorization")
    return values.length === 1 && accepts(keys.openai, bearer(values[0])) ? "authorization" : undefined
  }

  const authAnthropic = (raw: string[]): string | undefined => {
    const x = headerValues(raw, "x-api-key")
    const a = headerValues(raw, "authorization")
    if (x.length + a.length !== 1) return undefined
    if (x.length === 1) return accepts(keys.anthropic, x[0]) ? "x-api-key" : undefined
    return accepts(keys.anthropic, bearer(a[0])) ? "authorization" : undefined
  }

  const authGemini = (raw: string[], q: URLSearchParams): string | undefined => {
    const x = headerValues(raw, "x-goog-api-key")
    const k = q.getAll("key")
    if (x.length + k.length !== 1) return undefined
    if (x.length === 1) return accepts(keys.gemini, x[0]) ? "x-goog-api-key" : undefined
    return accepts(keys.gemini, k[0]) ? "query" : undefined
  }

  /** The provider key a request presents as `family` reads it (first found), valid or not; for counts and faults. */
  const presentedKey = (family: Family, raw: string[], q: URLSearchParams): string | undefined => {
    if (family === "gemini") return headerValues(raw, "x-goog-api-key")[0] ?? q.get("key") ?? undefined
    if (family === "anthropic") {
      const x = headerValues(raw, "x-api-key")[0]
      if (x !== undefined) return x
    }
    const a = headerValues(raw, "authorization")[0]
    return a === undefined ? undefined : bearer(a)
  }

  /** For paths several APIs share (/v1/models): guess the family from the credential headers. */
  const familyOf = (raw: string[], q: URLSearchParams): Family => {
    if (hasHeader(raw, "x-goog-api-key") || q.has("key")) return "gemini"
    if (hasHeader(raw, "x-api-key") || hasHeader(raw, "anthropic-version")) return "anthropic"
    return "openai"
  }

  const authenticate = (
    family: Family,
    req: In,
    res: Out,
    q: URLSearchParams,
    rec: RecordedRequest | undefined
  ): boolean => {
    const key = presentedKey(family, req.rawHeaders, q)
    faults.count(key)
    const how =
      family === "openai"
        ? authOpenAI(req.rawHeaders)
        : family === "anthropic"
          ? authAnthropic(req.rawHeaders)
          : authGemini(req.rawHeaders, q)
    if (how !== undefined) {
      if (rec) rec.auth = how
      const fault = faults.take(req.url ?? "/", key)
      return fault === undefined || !applyFault(fault, family, req, res)
    }
    req.resume()
    if (family === "openai") sendJson(res, 401, F.openaiAuthError)
    else if (family === "anthropic") sendJson(res, 401, F.anthropicAuthError)
    else sendJson(res, 401, F.geminiAuthError)
    return false
  }

  return {
    keys,
    faults,
    received,
    pendingReleases,
    gateWaiters,
    release,
    waitGate,
    recordRequest,
    authOpenAI,
    presentedKey,
    authenticate,
    familyOf
  }
}
