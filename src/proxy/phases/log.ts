// Phase 8, log (ARCHITECTURE "The request as phases"): runs exactly once when an exchange ends, whatever the
// outcome (answered, refused, failed, client gone), with everything the exchange learnt (status, outcome,
// attempts, identity, key name, timings, usage). The request path's context hands over the sink
// (`ProxyContext.onEnd`: `Metrics.record`, the access log line, the limits' settlement; services/RequestPath.ts);
// `accessEntry` is the exchange as one access-log line (SPEC §10).
import type { AccessLogEntry } from "../../observability/accessLog.js"
import { providerLabel } from "../../observability/labels.js"
import type { Exchange } from "../exchange.js"
import { settleLimits } from "./admit.js"

export const logEnd = (ex: Exchange): void => {
  if (ex.limitsHold !== undefined) settleLimits(ex)
  const sink = ex.ctx.onEnd
  if (sink !== undefined) sink(ex)
}

/** The access log's fields of an ended exchange (`durationMs` measured by the caller, once for all sinks). */
export const accessEntry = (ex: Exchange, durationMs: number): AccessLogEntry => {
  const usage = ex.usage
  const p = ex.identity?.provider
  const model = ex.model !== undefined && ex.model !== "unknown" ? ex.model : ex.responseModel
  return {
    time: Date.now(),
    requestId: ex.requestId,
    client: ex.client,
    listener: ex.listener,
    protocol: ex.protocol,
    method: ex.method,
    host: ex.hostName === "" ? undefined : ex.hostName,
    path: ex.url,
    provider: p === undefined ? undefined : providerLabel(p),
    upstreamProtocol: ex.upstreamProtocol,
    key: ex.keyName,
    status: ex.status,
    bytesIn: ex.bytesIn,
    bytesOut: ex.bytesOut,
    durationMs,
    ttfbMs: ex.ttfbMs,
    ttftMs: ex.ttftMs,
    attempts: ex.attempts,
    model,
    inputTokens: usage?.input,
    outputTokens: usage?.output,
    cacheReadTokens: usage?.cacheRead,
    cacheWriteTokens: usage?.cacheWrite,
    reasoningTokens: usage?.reasoning,
    outcome: ex.outcome
  }
}
