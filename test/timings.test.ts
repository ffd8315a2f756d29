// When an exchange reads the clock (ProxyContext.timed): an embedder's `onEnd` sink gets the timings without asking;
// a context that times nothing reads no clock, yet a limited key's successful answer still settles its estimate
// (the settlement reads that a head arrived, not when); the services' request path times exactly while the access
// log is on or metrics are recorded (admin listener). Over real sockets: node:http running the request path.
import * as http from "node:http"
import * as Effect from "effect/Effect"
import { describe, expect, it } from "vitest"
import type { ConfigSnapshot } from "../src/config/types.js"
import { KeyResolver } from "../src/domain/keys.js"
import { Router } from "../src/domain/router.js"
import { openLimiter } from "../src/limits/index.js"
import type { Limiter } from "../src/limits/limiter.js"
import { makeLogger } from "../src/log.js"
import type { ProxyServices } from "../src/proxy/context.js"
import type { Exchange } from "../src/proxy/exchange.js"
import { UpstreamPools } from "../src/proxy/upstreams.js"
import * as Metrics from "../src/services/Metrics.js"
import * as RequestPath from "../src/services/RequestPath.js"
import { cleanupAfterEach, listen, until } from "./support/cleanup.js"
import { h1 } from "./support/http.js"
import { startRequestPath } from "./support/requestPath.js"

const cleanup = cleanupAfterEach()

/** The timings an ended exchange carried. */
interface Seen {
  readonly status: number
  readonly startedAt: number
  readonly ttfbMs: number
}

const yaml = (upPort: number, extra: string) => `
http_port: 0
auth_keys: [{ name: team, key: "client-key"${extra} }]
providers:
  - { type: openai, host: "ok.test", endpoint: "127.0.0.1:${upPort}", tls: false, api_key: "sk-up" }
`

/** An upstream that answers after 20 ms, and the proxy's request path over it with `more` services. */
const harness = async (extra: string, more: Partial<ProxyServices>) => {
  const upstream = http.createServer((req, res) => {
    req.resume()
    setTimeout(() => {
      res.writeHead(200, { "content-type": "text/plain" })
      res.end("up")
    }, 20)
  })
  const upPort = await listen(upstream)
  cleanup.defer(async () => {
    upstream.closeAllConnections()
    await new Promise((r) => upstream.close(r))
  })
  return startRequestPath(cleanup, yaml(upPort, extra), { services: more })
}

const post = (port: number) =>
  h1(port, {
    method: "POST",
    host: "ok.test",
    path: "/v1/chat/completions",
    headers: [
      ["Authorization", "Bearer client-key"],
      ["Content-Type", "application/json"]
    ],
    body: JSON.stringify({ model: "m", max_tokens: 50, messages: [{ role: "user", content: "hi" }] })
  })

describe("exchange timings", () => {
  it("an embedder's onEnd sink gets the start and the time to first byte without asking", async () => {
    const seen: Array<Seen> = []
    const onEnd = (ex: Exchange) => seen.push({ status: ex.status, startedAt: ex.startedAt, ttfbMs: ex.ttfbMs })
    const { port } = await harness("", { onEnd })
    const r = await post(port)
    expect(r.status).toBe(200)
    await until(() => seen.length === 1)
    expect(seen).toHaveLength(1)
    expect(seen[0].startedAt).toBeGreaterThan(0)
    // the upstream waits 20 ms before its head
    expect(seen[0].ttfbMs).toBeGreaterThanOrEqual(15)
  })

  it("an untimed context reads no clock, and a limited key's answer still settles its estimate", async () => {
    const real = await openLimiter({ store: "memory" })
    cleanup.defer(() => real.close())
    const settled: Array<number> = []
    let released = 0
    const limiter: Limiter = {
      ...real,
      settle: (r, tokens) => {
        settled.push(tokens)
        return real.settle(r, tokens)
      },
      release: (r) => {
        released++
        return real.release(r)
      }
    }
    const seen: Array<Seen> = []
    const { port } = await harness(", limits: { requests_per_minute: 100, tokens_per_minute: 100000 }", {
      onEnd: (ex: Exchange) => seen.push({ status: ex.status, startedAt: ex.startedAt, ttfbMs: ex.ttfbMs }),
      timed: () => false,
      limits: { limiter: () => limiter, defaultOutputTokens: () => 700 }
    })
    const r = await post(port)
    expect(r.status).toBe(200)
    await until(() => seen.length === 1 && settled.length === 1)
    expect(seen).toEqual([{ status: 200, startedAt: 0, ttfbMs: 0 }])
    // a 2xx answer without usage keeps the reservation's estimate (input from the body size + max_tokens 50)
    expect(settled).toHaveLength(1)
    expect(settled[0]).toBeGreaterThan(50)
    expect(released).toBe(0)
  })

  it("the services' request path times while the access log is on or metrics are recorded", async () => {
    const { snapshot } = await harness("", {})
    const services: ProxyServices = {
      router: () => new Router(snapshot),
      pools: new UpstreamPools(),
      keys: new KeyResolver(),
      health: { connectFailed: () => undefined, connected: () => undefined },
      log: makeLogger("text", "error", () => undefined)
    }
    const admin = { bindAddress: "127.0.0.1", port: 0 } as unknown as ConfigSnapshot["admin"]
    const variants: Array<ConfigSnapshot> = [
      { ...snapshot, accessLog: false, admin: undefined },
      { ...snapshot, accessLog: true, admin: undefined },
      { ...snapshot, accessLog: false, admin }
    ]
    const bare = await Effect.runPromise(Effect.scoped(RequestPath.make(services)))
    expect(variants.map((s) => bare.timed(s))).toEqual([false, true, false])
    const withMetrics = await Effect.runPromise(
      Effect.scoped(RequestPath.make(services)).pipe(Effect.provideService(Metrics.Metrics, Metrics.makeMetrics()))
    )
    expect(variants.map((s) => withMetrics.timed(s))).toEqual([false, true, true])
  })
})
