// Phase 2, route (SPEC §3.1): the request's host (`Host` / `:authority`, listener default port) and its target in
// origin form, into the exchange. Which providers match is the select phase's question (the router answers host,
// prefix, key and health in one pass over the snapshot's index).
import type { ErrorKind } from "../../errors.js"
import type { Exchange } from "../exchange.js"
import { originForm } from "../host.js"

export const route = (
  ex: Exchange,
  hostValue: string | undefined,
  target: string,
  defaultPort: number
): ErrorKind | undefined => {
  if (hostValue === undefined || hostValue.length === 0) return "missingHost"
  if (!ex.ctx.hosts.parseInto(ex, hostValue, defaultPort)) return "badRequest"
  const url = originForm(target)
  if (url === undefined) return "badRequest"
  ex.url = url
  return undefined
}
