// Phase 5, upstream request filter (SPEC §4): what the upstream receives in place of the client's head — hop-by-hop
// headers and (except for `forward`) every client credential removed, `Host` set to the upstream, the provider's
// credential added exactly once in the form its type expects, the `key` query parameter dropped. Shared by HTTP and
// the WebSocket handshake. Usage injection into the request body (SPEC §10 `inject_openai_stream_usage`) is its
// sibling, usageInjection.ts.
import {
  ANTHROPIC_BETA_DROP,
  mayHoldKey,
  providerCredentialHeaders,
  splitPath,
  stripKeyParam
} from "../../domain/credentials.js"
import type { Exchange } from "../exchange.js"
import { buildUpstreamHeaders, type RequestHeadInfo } from "../headers.js"

const union = (a: ReadonlySet<string>, b: ReadonlySet<string> | undefined): ReadonlySet<string> =>
  b === undefined ? a : new Set([...a, ...b])

/**
 * The upstream's header pairs for the current attempt. `drop` names more client headers to leave out;
 * `credential` false leaves the provider key out of the headers (the WebSocket subprotocol form carries it).
 */
export const upstreamHeaders = (
  ex: Exchange,
  raw: ReadonlyArray<string>,
  info: RequestHeadInfo,
  drop?: ReadonlySet<string>,
  credential = true
): Array<string> => {
  const identity = ex.identity!
  const p = identity.provider
  const fromCommand = identity.key?.source._tag === "Command"
  const extra = credential ? providerCredentialHeaders(p.type, ex.key, fromCommand, info) : []
  const betaDrop = p.type === "anthropic" && fromCommand ? ANTHROPIC_BETA_DROP : undefined
  return buildUpstreamHeaders(
    raw,
    info,
    p.type !== "forward",
    p.upstreamHostHeader,
    extra,
    drop === undefined ? betaDrop : union(drop, betaDrop)
  )
}

/** The path (and query) the upstream gets: without any `key` parameter unless the provider is `forward`. */
export const upstreamPath = (ex: Exchange): string => {
  const path = ex.path
  if (ex.identity!.provider.type === "forward" || !mayHoldKey(path)) return path
  const split = splitPath(path)
  const q = stripKeyParam(split.query)
  return q === undefined ? split.path : `${split.path}?${q}`
}
