// Phase 4, select (SPEC §3.3): matching providers → those accepting the client's key → healthy and not tried
// yet → longest prefix, non-fallback, priority, weighted random (src/domain/router.ts). A retry re-enters here
// with the providers that failed to connect excluded and the identities already tried avoided; identities cooling
// down (SPEC §11) are skipped like unhealthy providers. Every identity of the route cooling: wait for the first
// one within `retry.max_wait`, else the proxy's 429 (`coolingRefusal`).

import { coolingRefusal } from "../../domain/retry/index.js"
import type { RouteResult } from "../../domain/router.js"
import type { ErrorKind } from "../../errors.js"
import type { Exchange } from "../exchange.js"

/**
 * The router's answer for the exchange's host, target and client key, excluding the providers already tried. The
 * exchange's retry state is the router's `Avoid` once it has tried an identity or some key is cooling; a request
 * without either (the usual one) takes the router's fast path and never makes that state.
 */
export const routeOnce = (ex: Exchange): RouteResult => {
  const reg = ex.ctx.cooldowns
  let state = ex.retryState
  let avoid = state?.tried !== undefined
  if (avoid || reg.size > 0) {
    const now = Date.now()
    avoid ||= reg.anyCooling(now)
    if (avoid) {
      state ??= ex.retrying()
      state.now = now
    }
  }
  return ex.router.route(
    ex.hostName,
    ex.port,
    ex.url,
    ex.clientKey,
    state?.excluded,
    ex.digest,
    avoid ? state : undefined
  )
}

/** Selects into the exchange (identity, path, key name); the refusal when there is nothing to select. */
export const select = (ex: Exchange): ErrorKind | undefined => {
  const r = routeOnce(ex)
  switch (r._tag) {
    case "NotFound":
      return "noProvider"
    case "Unauthorized":
      return "unauthorized"
    case "Unavailable":
      return "noHealthy"
    case "Cooling":
      // only a selection with an `Avoid` answers Cooling, so the retry state exists
      if (r.waitMs > ex.router.snapshot.retry.maxWaitMs) {
        ex.retrying().refusal = coolingRefusal(r.identity.provider.type, r.waitMs)
        return "coolingDown"
      }
      ex.retrying().waitMs = r.waitMs
  }
  // Ok, or Cooling within max_wait (the attempt waits `waitMs`)
  ex.identity = r.identity
  ex.path = r.path
  ex.keyName = r.keyName
  return undefined
}
