// Phase 8, log (ARCHITECTURE "The request as phases"): runs exactly once when an exchange ends, whatever the
// outcome (answered, refused, failed, client gone), with everything the exchange learnt (status, outcome,
// attempts, identity, key name, timings). The seam for the access log line, `Metrics.record` and the limits'
// settlement (SPEC §10, §12): the request path's context hands over the sink (`ProxyContext.onEnd`).
import type { Exchange } from "../exchange.js"
import { settleLimits } from "./admit.js"

export const logEnd = (ex: Exchange): void => {
  if (ex.limitsHold !== undefined) settleLimits(ex)
  const sink = ex.ctx.onEnd
  if (sink !== undefined) sink(ex)
}
