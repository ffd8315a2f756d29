// SPEC §11, "every attempt failed, one with an answer: the client gets that answer": the kept answer of an earlier
// attempt is relayed whatever way the later attempts fail without one — here a `$(command)` key that fails (HTTP:
// no longer the proxy's 502) and a refused WebSocket handshake followed by a provider that cannot be reached (no
// longer 502). Over real sockets against mock providers that fail on command (src/mock/faults.ts).
import * as http from "node:http"
import type * as net from "node:net"
import type { AddressInfo } from "node:net"
import * as Effect from "effect/Effect"
import { afterEach, describe, expect, it } from "vitest"
import WebSocket from "ws"
import { parseConfig } from "../src/config/load.js"
import { KeyResolver } from "../src/domain/keys.js"
import { Router } from "../src/domain/router.js"
import { makeLogger } from "../src/log.js"
import type { FaultRule } from "../src/mock/faults.js"
import { makeRequestPath } from "../src/proxy/context.js"
import type { Exchange } from "../src/proxy/exchange.js"
import { handleRequest } from "../src/proxy/forward.js"
import { UpstreamPools } from "../src/proxy/upstreams.js"
import { handleUpgrade } from "../src/proxy/websocket.js"
import { type MockProvider, startMockProvider } from "./support/mockProvider.js"

const closers: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c()
})

const listen = (s: http.Server) =>
  new Promise<number>((resolve) => s.listen(0, "127.0.0.1", () => resolve((s.address() as AddressInfo).port)))

const mock = async (key: string, faults: Array<FaultRule>): Promise<MockProvider> => {
  const m = await startMockProvider({ keys: { openai: key }, faults })
  closers.push(() => m.close())
  return m
}

/** A port nothing listens on (bound, then closed). */
const deadPort = async () => {
  const dead = http.createServer()
  const port = await listen(dead)
  await new Promise((r) => dead.close(r))
  return port
}

/** The request path on an HTTP/1.1 server (requests and upgrades); the log phase's status and attempts captured. */
const harness = async (yaml: string) => {
  const snapshot = await Effect.runPromise(parseConfig(yaml, "/tmp/retry-kept-test.yml", {}))
  const router = new Router(snapshot)
  const pools = new UpstreamPools()
  const ended: Array<{ status: number; attempts: number }> = []
  const ctx = makeRequestPath({
    router: () => router,
    pools,
    keys: new KeyResolver(),
    health: { connectFailed: () => undefined, connected: () => undefined },
    log: makeLogger("text", "error", () => undefined),
    onEnd: (ex: Exchange) => ended.push({ status: ex.status, attempts: ex.attempts })
  })
  const server = http.createServer((req, res) => handleRequest(ctx, 80, req, res))
  server.on("upgrade", (req, socket, head) => handleUpgrade(ctx, req, socket as net.Socket, head))
  const port = await listen(server)
  closers.push(async () => {
    server.closeAllConnections()
    await new Promise((r) => server.close(r))
    await pools.closeAll()
  })
  return { port, ended }
}

const until = async (f: () => boolean) => {
  for (let i = 0; i < 300 && !f(); i++) await new Promise((r) => setTimeout(r, 10))
}

describe("a kept answer is relayed when the later attempts fail without one", () => {
  it("HTTP: a 503, then a provider whose $(command) key fails → the client gets the 503 as it came", async () => {
    const a = await mock("sk-a", [{ status: 503, body: "a is down for maintenance", headers: { "x-from": "a" } }])
    const b = await mock("sk-b", [])
    const h = await harness(`
http_port: 0
providers:
  - { type: openai, host: "llm.test", endpoint: "127.0.0.1:${a.port}", tls: false, api_key: "sk-a", priority: 1 }
  - { type: openai, host: "llm.test", endpoint: "127.0.0.1:${b.port}", tls: false, api_key: "$(exit 3)" }
`)
    const r = await new Promise<{ status: number; from: unknown; text: string }>((resolve, reject) => {
      const body = JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] })
      const req = http.request({
        host: "127.0.0.1",
        port: h.port,
        method: "POST",
        path: "/v1/chat/completions",
        headers: { host: "llm.test", "content-type": "application/json", "content-length": Buffer.byteLength(body) },
        agent: false
      })
      req.on("response", (res) => {
        let text = ""
        res.on("data", (c) => {
          text += c
        })
        res.on("end", () => resolve({ status: res.statusCode ?? 0, from: res.headers["x-from"], text }))
      })
      req.on("error", reject)
      req.end(body)
    })
    expect(r).toEqual({ status: 503, from: "a", text: "a is down for maintenance" })
    await until(() => h.ended.length === 1)
    expect(h.ended).toEqual([{ status: 503, attempts: 2 }])
    expect(b.counts().requests).toBe(0)
  })

  it("WebSocket: a refused handshake, then a provider that cannot be reached → the client gets the refusal", async () => {
    const a = await mock("sk-a", [{ status: 503, body: "a is down for maintenance", headers: { "x-from": "a" } }])
    const h = await harness(`
http_port: 0
providers:
  - { type: openai, host: "llm.test", endpoint: "127.0.0.1:${a.port}", tls: false, api_key: "sk-a", priority: 1 }
  - { type: openai, host: "llm.test", endpoint: "127.0.0.1:${await deadPort()}", tls: false, api_key: "sk-b" }
`)
    const refused = await new Promise<{ status: number; from: unknown; body: string }>((resolve, reject) => {
      const ws = new WebSocket(`ws://127.0.0.1:${h.port}/v1/realtime?model=gpt-realtime`, {
        headers: { host: "llm.test" }
      })
      ws.on("unexpected-response", (_req, res) => {
        let body = ""
        res.on("data", (c) => {
          body += c
        })
        res.on("end", () => resolve({ status: res.statusCode ?? 0, from: res.headers["x-from"], body }))
      })
      ws.on("open", () => reject(new Error("upgraded")))
      ws.on("error", () => undefined)
    })
    expect(refused).toEqual({ status: 503, from: "a", body: "a is down for maintenance" })
    await until(() => h.ended.length === 1)
    expect(h.ended).toEqual([{ status: 503, attempts: 2 }])
    expect(a.counts().requests).toBe(1)
  })
})
