// Part of phase 5 (upstream request filter): the chosen identity's provider key, resolved (SPEC §2: a static key
// at once, a `$(command)` key through the process's one KeyResolver, cached or run), then the exchange dispatches.
// A command that fails is answered 502 `upstream authentication failed` (the reason goes to the log, never the key),
// unless an earlier attempt of the request kept an upstream answer (SPEC §11): that answer then.
import type * as Redacted from "effect/Redacted"
import type { Exchange } from "../exchange.js"

export const resolveCredential = (ex: Exchange): void => {
  const identity = ex.identity!
  const source = identity.key?.source
  if (source === undefined) {
    ex.key = undefined
    return ex.dispatch()
  }
  const resolved = ex.ctx.keys.resolve(source, identity.provider.apiKeyCacheTtlMs)
  if (!("then" in resolved)) {
    ex.key = resolved
    return ex.dispatch()
  }
  resolved.then(
    (key: Redacted.Redacted<string>) => {
      ex.key = key
      ex.dispatch()
    },
    (err: Error) => {
      ex.ctx.log.log("warn", "api_key command failed", {
        request: ex.requestId,
        provider: identity.provider.index,
        reason: err.message
      })
      // an earlier attempt's kept answer, if any, else 502
      ex.failAttempt("upstreamAuth")
    }
  )
}
