// The request path's context as the running services assemble it (once per Listener): the services' parts, plus,
// when the Metrics service is present, the log phase's sink (`Metrics.record` once per request, WebSocket and
// tunnel) and the live gauges. Built here so the request path (src/proxy) imports no service.
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { makeRequestPath, type ProxyContext, type ProxyServices } from "../proxy/context.js"
import type { Exchange } from "../proxy/exchange.js"
import * as Metrics from "./Metrics.js"

/** What the metrics learn from an ended exchange. */
export const requestEnd = (ex: Exchange): Metrics.RequestEnd => ({
  provider: ex.identity?.provider,
  keyName: ex.keyName,
  status: ex.status,
  protocol: ex.protocol,
  durationMs: performance.now() - ex.startedAt,
  ttfbMs: ex.ttfbMs,
  ttftMs: ex.ttftMs,
  model: ex.model,
  responseModel: ex.responseModel,
  usage: ex.usage
})

export const make = (services: ProxyServices): Effect.Effect<ProxyContext> =>
  Effect.map(Metrics.optional, (metrics) => {
    if (Option.isNone(metrics)) return makeRequestPath(services)
    const m = metrics.value
    return makeRequestPath({ ...services, gauges: m.live, onEnd: (ex) => m.record(requestEnd(ex)) })
  })
