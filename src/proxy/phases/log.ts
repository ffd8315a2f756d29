// Phase 8, log (ARCHITECTURE "The request as phases"): runs exactly once when an exchange ends, whatever the
// outcome (answered, refused, failed, client gone), with everything the exchange learnt (status, outcome,
// attempts, identity, key name, timings, usage). The request path's context hands over the sink
// (`ProxyContext.onEnd`: `Metrics.record`, the access log line, the limits' settlement; services/RequestPath.ts);
// the access log reads the exchange itself (observability/accessLog.ts `writeExchange`, SPEC §10).
import type { Exchange } from "../exchange.js"
import { settleLimits } from "./admit.js"

export const logEnd = (ex: Exchange): void => {
  if (ex.limitsHold !== undefined) settleLimits(ex)
  const sink = ex.ctx.onEnd
  if (sink !== undefined) sink(ex)
}
