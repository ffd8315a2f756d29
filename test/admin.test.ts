// The admin listener (SPEC §10) over real sockets, in-process: /healthz, /readyz, /metrics, /providers, /keys;
// the admin key (401 without it, constant-time compare), no secret in any answer, /readyz turning 503 when every
// provider of a route fails its health checks (a stopped port) while the mock provider keeps another route up,
// the admin port following a reload (moved, closed) or failing the start when taken, upstream connect errors and
// config reloads counted.

import { writeFile } from "node:fs/promises"
import * as net from "node:net"
import * as path from "node:path"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Scope from "effect/Scope"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import * as Main from "../src/layers/Main.js"
import { Admin } from "../src/services/Admin.js"
import { Reloader, layer as reloaderLayer } from "../src/services/Reloader.js"
import { h1 } from "./support/http.js"
import { seriesValue } from "./support/metrics.js"
import { DEFAULT_KEYS, type MockProvider, startMockProvider } from "./support/mockProvider.js"
import { type RunningProxy, startProxy, tempDir } from "./support/proxy.js"

const ADMIN_KEY = "adm-TOPSECRET-1"
const CLIENT_NAMED = "sk-client-TOPSECRET-2"
const CLIENT_PLAIN = "sk-client-TOPSECRET-3"
const PROVIDER_ONLY = "sk-client-TOPSECRET-4"
const SECRETS = [ADMIN_KEY, CLIENT_NAMED, CLIENT_PLAIN, PROVIDER_ONLY, DEFAULT_KEYS.openai]

/** A port nothing listens on (bound, then closed). */
const stoppedPort = () =>
  new Promise<number>((resolve) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => {
      const p = (s.address() as net.AddressInfo).port
      s.close(() => resolve(p))
    })
  })

const get = (port: number, path: string, key?: string) =>
  h1(port, { path, headers: key === undefined ? [] : [["Authorization", `Bearer ${key}`]] })

let mock: MockProvider
let down: number
beforeAll(async () => {
  mock = await startMockProvider()
  down = await stoppedPort()
})
afterAll(async () => {
  await mock.close()
})

const config = (adminLines: string) => `
http_port: 0
${adminLines}
health_check: {enabled: true, interval: 0.2, timeout: 1}
auth_keys:
  - {name: team-a, key: ${CLIENT_NAMED}}
  - ${CLIENT_PLAIN}
providers:
  - {type: openai, host: up.test, endpoint: "127.0.0.1:UP_PORT", tls: false, api_key: ${DEFAULT_KEYS.openai}}
  - {type: openai, host: down.test, endpoint: "127.0.0.1:DOWN_PORT", tls: false, auth_keys: [{name: only-down, key: ${PROVIDER_ONLY}}]}
`

describe("admin listener", () => {
  let proxy: RunningProxy
  let admin: number
  beforeAll(async () => {
    const text = config(`admin: {port: 0, auth_key: ${ADMIN_KEY}}`).replace("UP_PORT", String(mock.port))
    proxy = await startProxy(text.replace("DOWN_PORT", String(down)))
    admin = proxy.adminPort()!
  })
  afterAll(() => proxy.close())

  it("answers /healthz without the key", async () => {
    const r = await get(admin, "/healthz")
    expect([r.status, r.text]).toEqual([200, "ok\n"])
  })

  it("needs the admin key for /metrics, /providers and /keys", async () => {
    for (const path of ["/metrics", "/providers", "/keys"]) {
      expect((await get(admin, path)).status).toBe(401)
      expect((await get(admin, path, "wrong")).status).toBe(401)
      expect((await get(admin, path, `${ADMIN_KEY}x`)).status).toBe(401)
      expect((await get(admin, path, ADMIN_KEY)).status).toBe(200)
    }
    expect((await get(admin, "/nothing", ADMIN_KEY)).status).toBe(404)
    expect((await h1(admin, { path: "/metrics", method: "POST" })).status).toBe(405)
  })

  it("serves Prometheus text with the SPEC §10 names and live values", async () => {
    // One keep-alive connection open to the proxy while scraping.
    const sock = net.connect(proxy.httpPort!, "127.0.0.1")
    await new Promise((r) => sock.once("connect", r))
    await new Promise((r) => setTimeout(r, 50))
    const r = await get(admin, "/metrics", ADMIN_KEY)
    sock.destroy()
    expect(r.headers["content-type"]).toBe("text/plain; version=0.0.4; charset=utf-8")
    for (const name of ["openproxy_requests_total", "gen_ai_client_token_usage", "openproxy_provider_healthy"]) {
      expect(r.text).toContain(`# TYPE ${name} `)
    }
    expect(seriesValue(r.text, "openproxy_open_connections")).toBe(1)
    expect(seriesValue(r.text, 'openproxy_provider_healthy{provider="up.test#0"}')).toBe(1)
  })

  it("lists providers and key names, never a key", async () => {
    const providers = JSON.parse((await get(admin, "/providers", ADMIN_KEY)).text)
    expect(providers.providers.map((p: { host: string; type: string }) => [p.host, p.type])).toEqual([
      ["up.test", "openai"],
      ["down.test", "openai"]
    ])
    expect(Object.keys(providers.providers[0]).sort()).toEqual(
      [
        "cooling",
        "endpoint",
        "healthy",
        "host",
        "id",
        "index",
        "inflight",
        "last_error",
        "last_error_at",
        "type",
        "weight"
      ].sort()
    )
    const keys = JSON.parse((await get(admin, "/keys", ADMIN_KEY)).text)
    expect(keys.keys).toEqual([
      { name: "team-a", providers: "all", limits: null },
      { name: expect.stringMatching(/^key-[0-9a-f]{8}$/), providers: "all", limits: null },
      { name: "only-down", providers: ["down.test#1"], limits: null }
    ])
    for (const path of ["/metrics", "/providers", "/keys", "/readyz", "/healthz"]) {
      const body = (await get(admin, path, ADMIN_KEY)).text
      for (const s of SECRETS) expect({ path, leaked: body.includes(s) }).toEqual({ path, leaked: false })
    }
  })

  it("/readyz turns 503 when every provider of a route fails its checks, and names the route", async () => {
    // down.test's only provider is a stopped port: its TCP probe fails within a few intervals.
    let r = await get(admin, "/readyz")
    for (let i = 0; i < 50 && r.status === 200; i++) {
      await new Promise((res) => setTimeout(res, 100))
      r = await get(admin, "/readyz")
    }
    expect([r.status, r.text]).toEqual([503, "not ready: no healthy provider for down.test\n"])
    const p = JSON.parse((await get(admin, "/providers", ADMIN_KEY)).text).providers
    expect([p[0].healthy, p[1].healthy, p[1].last_error]).toEqual([true, false, "health_check"])
    const m = (await get(admin, "/metrics", ADMIN_KEY)).text
    expect(seriesValue(m, 'openproxy_provider_healthy{provider="down.test#1"}')).toBe(0)
  })
})

describe("admin listener and reloads", () => {
  it("is ready with every route healthy; moves, opens and closes with the config", async () => {
    const base = config("").replace("UP_PORT", String(mock.port)).replace("DOWN_PORT", String(mock.port))
    const proxy = await startProxy(base.replace("\n\n", "\nadmin: {port: 0}\n"))
    try {
      const first = proxy.adminPort()!
      expect((await get(first, "/readyz")).status).toBe(200)
      // No auth_key: open.
      expect((await get(first, "/metrics")).status).toBe(200)
      const next = await stoppedPort()
      await writeFile(proxy.file, base.replace("\n\n", `\nadmin: {port: ${next}, auth_key: ${ADMIN_KEY}}\n`))
      await Effect.runPromise(proxy.config.reload)
      for (let i = 0; i < 50 && proxy.adminPort() !== next; i++) await new Promise((r) => setTimeout(r, 20))
      expect(proxy.adminPort()).toBe(next)
      expect((await get(next, "/metrics")).status).toBe(401)
      await expect(get(first, "/healthz")).rejects.toThrow(/ECONNREFUSED/)
      await writeFile(proxy.file, base)
      await Effect.runPromise(proxy.config.reload)
      for (let i = 0; i < 50 && proxy.adminPort() !== undefined; i++) await new Promise((r) => setTimeout(r, 20))
      await expect(get(next, "/healthz")).rejects.toThrow(/ECONNREFUSED/)
    } finally {
      await proxy.close()
    }
  })
})

describe("admin listener bind failure", () => {
  it("fails the start with one line naming the address", async () => {
    const busy = net.createServer()
    await new Promise<void>((r) => busy.listen(0, "127.0.0.1", () => r()))
    const port = (busy.address() as net.AddressInfo).port
    try {
      const text = config(`admin: {port: ${port}}`).replace("UP_PORT", String(mock.port))
      await expect(startProxy(text.replace("DOWN_PORT", String(mock.port)))).rejects.toThrow(
        `cannot listen on admin 127.0.0.1:${port}: EADDRINUSE`
      )
    } finally {
      busy.close()
    }
  })
})

describe("upstream connect errors", () => {
  it("are counted per provider from the health reporter, whichever path failed", async () => {
    const text = `http_port: 0
admin: {port: 0}
providers:
  - {type: openai, host: gone.test, endpoint: "127.0.0.1:${down}", tls: false}
`
    const proxy = await startProxy(text)
    try {
      const r = await h1(proxy.httpPort!, { host: "gone.test", path: "/v1/models" })
      expect(r.status).toBe(502)
      const m = (await get(proxy.adminPort()!, "/metrics")).text
      expect(seriesValue(m, 'openproxy_upstream_connect_errors_total{provider="gone.test#0"}')).toBeGreaterThanOrEqual(
        1
      )
    } finally {
      await proxy.close()
    }
  })
})

describe("config reloads", () => {
  it("are counted by result", async () => {
    const file = path.join(await tempDir(), "c.yml")
    const good = `http_port: 0\nadmin: {port: 0}\nproviders: [{type: openai, host: a.test, endpoint: e}]\n`
    await writeFile(file, good)
    const scope = Effect.runSync(Scope.make())
    const ctx = await Effect.runPromise(
      Layer.buildWithScope(reloaderLayer.pipe(Layer.provideMerge(Main.fromFile(file))), scope)
    )
    try {
      const reloader = Context.get(ctx, Reloader)
      expect(await Effect.runPromise(reloader.reload)).toBe(true)
      await writeFile(file, `${good}bogus: 1\n`)
      expect(await Effect.runPromise(reloader.reload)).toBe(false)
      const m = (await get(Context.get(ctx, Admin).bound()!.port, "/metrics")).text
      expect(seriesValue(m, 'openproxy_config_reloads_total{result="ok"}')).toBe(1)
      expect(seriesValue(m, 'openproxy_config_reloads_total{result="error"}')).toBe(1)
    } finally {
      await Effect.runPromise(Scope.close(scope, Exit.void))
    }
  })
})
