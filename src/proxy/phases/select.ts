// Phase 4, select (SPEC §3.3): matching providers → those accepting the client's key → healthy and not tried
// yet → longest prefix, non-fallback, priority, weighted random (src/domain/router.ts). A fail-over re-enters here
// with the providers already tried excluded; cool-downs (SPEC §11) will be skipped here like unhealthy providers.
import type { RouteResult } from "../../domain/router.js"
import type { ErrorKind } from "../../errors.js"
import type { Exchange } from "../exchange.js"

/** The router's answer for the exchange's host, target and client key, excluding the providers already tried. */
export const routeOnce = (ex: Exchange): RouteResult =>
  ex.router.route(ex.hostName, ex.port, ex.url, ex.clientKey, ex.excluded, ex.digest)

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
  }
  ex.identity = r.identity
  ex.path = r.path
  ex.keyName = r.keyName
  return undefined
}
