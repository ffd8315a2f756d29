// Health (SPEC §6). Unit tests of the active-check schedule and thresholds with `TestClock` and a fake probe
// (no sockets), then real sockets: a provider whose upstream stops leaves selection within one interval and
// comes back when the upstream does.
import { describe, expect, it } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as SubscriptionRef from "effect/SubscriptionRef"
import * as TestClock from "effect/TestClock"
import { afterEach, it as vit } from "vitest"
import { parseConfig } from "../src/config/load.js"
import type { ConfigSnapshot, ProviderConfig } from "../src/config/types.js"
import { providerIdOf } from "../src/domain/providers.js"
import * as Config from "../src/services/Config.js"
import * as HealthChecker from "../src/services/HealthChecker.js"
import type { Probe } from "../src/services/HealthProbe.js"
import { h1 } from "./support/http.js"
import { type MockProvider, startMockProvider } from "./support/mockProvider.js"
import { type RunningProxy, startProxy } from "./support/proxy.js"

const yamlFor = (opts: {
  enabled?: boolean
  unhealthy?: number
  healthy?: number
  providers?: number
  extra?: string
}) => `
http_port: 0
health_check:
  enabled: ${opts.enabled ?? true}
  interval: 10
  timeout: 2
  unhealthy_threshold: ${opts.unhealthy ?? 1}
  healthy_threshold: ${opts.healthy ?? 1}
  cooldown: 30
providers:
${Array.from(
  { length: opts.providers ?? 2 },
  (_, i) => `  - { type: openai, host: "h${i}.test", endpoint: "127.0.0.1:${9000 + i}", tls: false }`
).join("\n")}
${opts.extra ?? ""}`

const snapshotOf = (yaml: string) => parseConfig(yaml, "/tmp/health-test.yml", {})

/** A fake probe: providers (by index) in `down` fail, in `hang` never answer; every call is counted. */
const fakeProbe = () => {
  const down = new Set<number>()
  const hang = new Set<number>()
  const calls = new Map<number, number>()
  const probe: Probe = (p: ProviderConfig) =>
    Effect.suspend(() => {
      calls.set(p.index, (calls.get(p.index) ?? 0) + 1)
      if (hang.has(p.index)) return Effect.never
      return Effect.succeed(!down.has(p.index))
    })
  return { down, hang, calls, probe }
}

const setup = (snapshot: ConfigSnapshot, probe: Probe) =>
  Effect.gen(function* () {
    const layer = HealthChecker.layerWithProbe(() => probe).pipe(Layer.provideMerge(Config.layerSnapshot(snapshot)))
    const ctx = yield* Layer.build(layer)
    // Let the forked snapshot subscription start the probe fibers.
    yield* TestClock.adjust(0)
    return { health: Context.get(ctx, HealthChecker.HealthChecker), config: Context.get(ctx, Config.Config) }
  })

const ids = (s: ConfigSnapshot) => s.providers.map(providerIdOf)

describe("active health checks (TestClock, fake probe)", () => {
  it.scoped("probes every provider at start and every interval; unhealthy after one failure by default", () =>
    Effect.gen(function* () {
      const snapshot = yield* snapshotOf(yamlFor({}))
      const fake = fakeProbe()
      const { health } = yield* setup(snapshot, fake.probe)
      const [a, b] = ids(snapshot)
      expect(fake.calls.get(0)).toBe(1)
      expect(fake.calls.get(1)).toBe(1)
      expect(health.isHealthy(a)).toBe(true)
      fake.down.add(0)
      yield* TestClock.adjust("9 seconds")
      expect(fake.calls.get(0)).toBe(1)
      expect(health.isHealthy(a)).toBe(true)
      yield* TestClock.adjust("1 second")
      expect(fake.calls.get(0)).toBe(2)
      expect(health.isHealthy(a)).toBe(false)
      expect(health.isHealthy(b)).toBe(true)
      fake.down.delete(0)
      yield* TestClock.adjust("10 seconds")
      expect(health.isHealthy(a)).toBe(true)
    })
  )

  it.scoped("honours unhealthy_threshold and healthy_threshold", () =>
    Effect.gen(function* () {
      const snapshot = yield* snapshotOf(yamlFor({ unhealthy: 3, healthy: 2 }))
      const fake = fakeProbe()
      fake.down.add(0)
      const { health } = yield* setup(snapshot, fake.probe)
      const [a] = ids(snapshot)
      expect(health.isHealthy(a)).toBe(true) // 1 failure
      yield* TestClock.adjust("10 seconds")
      expect(health.isHealthy(a)).toBe(true) // 2 failures
      yield* TestClock.adjust("10 seconds")
      expect(health.isHealthy(a)).toBe(false) // 3 failures
      fake.down.delete(0)
      yield* TestClock.adjust("10 seconds")
      expect(health.isHealthy(a)).toBe(false) // 1 success
      fake.down.add(0)
      yield* TestClock.adjust("10 seconds")
      expect(health.isHealthy(a)).toBe(false) // a failure resets the success count
      fake.down.delete(0)
      yield* TestClock.adjust("10 seconds")
      expect(health.isHealthy(a)).toBe(false)
      yield* TestClock.adjust("10 seconds")
      expect(health.isHealthy(a)).toBe(true) // 2 successes in a row
    })
  )

  it.scoped("a probe that does not answer within timeout counts as a failure", () =>
    Effect.gen(function* () {
      const snapshot = yield* snapshotOf(yamlFor({}))
      const fake = fakeProbe()
      fake.hang.add(1)
      const { health } = yield* setup(snapshot, fake.probe)
      const [, b] = ids(snapshot)
      expect(health.isHealthy(b)).toBe(true)
      yield* TestClock.adjust("1999 millis")
      expect(health.isHealthy(b)).toBe(true)
      yield* TestClock.adjust("1 millis")
      expect(health.isHealthy(b)).toBe(false)
      // The next probe starts one interval after the timed-out one ended.
      fake.hang.delete(1)
      yield* TestClock.adjust("10 seconds")
      expect(health.isHealthy(b)).toBe(true)
    })
  )

  it.scoped("no probes when disabled; passive ejection still works", () =>
    Effect.gen(function* () {
      const snapshot = yield* snapshotOf(yamlFor({ enabled: false }))
      const fake = fakeProbe()
      const { health } = yield* setup(snapshot, fake.probe)
      yield* TestClock.adjust("60 seconds")
      expect(fake.calls.size).toBe(0)
      const [a] = ids(snapshot)
      for (let i = 0; i < HealthChecker.PASSIVE_FAILURES; i++) health.reporter.connectFailed(a)
      expect(health.isHealthy(a)).toBe(false)
    })
  )

  it.scoped("a successful active check ends a passive cool-down", () =>
    Effect.gen(function* () {
      const snapshot = yield* snapshotOf(yamlFor({}))
      const fake = fakeProbe()
      const { health } = yield* setup(snapshot, fake.probe)
      const [a] = ids(snapshot)
      for (let i = 0; i < HealthChecker.PASSIVE_FAILURES; i++) health.reporter.connectFailed(a)
      expect(health.isHealthy(a)).toBe(false)
      yield* TestClock.adjust("10 seconds")
      expect(health.isHealthy(a)).toBe(true)
    })
  )

  it.scoped("a reload keeps unchanged providers' fibers and state, stops gone ones, starts new ones", () =>
    Effect.gen(function* () {
      const first = yield* snapshotOf(yamlFor({ providers: 2 }))
      const fake = fakeProbe()
      fake.down.add(0)
      const { health, config } = yield* setup(first, fake.probe)
      const [a, b] = ids(first)
      expect(health.isHealthy(a)).toBe(false)
      yield* TestClock.adjust("5 seconds")
      // Provider 1 changes its endpoint (a new id); provider 0 is unchanged; provider 2 is new.
      const second = yield* snapshotOf(
        yamlFor({ providers: 1 }) +
          `  - { type: openai, host: "h1.test", endpoint: "127.0.0.1:9101", tls: false }\n` +
          `  - { type: openai, host: "h2.test", endpoint: "127.0.0.1:9002", tls: false }\n`
      )
      const [a2, b2, c2] = ids(second)
      expect(a2).toBe(a)
      expect(b2).not.toBe(b)
      fake.down.add(1)
      yield* SubscriptionRef.set(config.current, second)
      yield* TestClock.adjust(0)
      // Unchanged provider: same fiber (not probed again on reload), still unhealthy.
      expect(fake.calls.get(0)).toBe(1)
      expect(health.isHealthy(a)).toBe(false)
      // Changed provider: probed at once under its new id; the old id's state is gone.
      expect(health.isHealthy(b2)).toBe(false)
      expect(health.state(b)).toBeUndefined()
      expect(health.isHealthy(c2)).toBe(true)
      expect(fake.calls.get(2)).toBe(1)
      // Provider 0 keeps its own schedule: next probe 10 s after its first one.
      yield* TestClock.adjust("5 seconds")
      expect(fake.calls.get(0)).toBe(2)
      // Turning checks off stops every probe and makes every provider actively healthy again.
      const off = yield* snapshotOf(yamlFor({ enabled: false, providers: 1 }))
      yield* SubscriptionRef.set(config.current, off)
      yield* TestClock.adjust(0)
      expect(health.isHealthy(a)).toBe(true)
      const before = fake.calls.get(0)
      yield* TestClock.adjust("60 seconds")
      expect(fake.calls.get(0)).toBe(before)
    })
  )
})

describe("active health checks over real sockets", () => {
  let proxy: RunningProxy | undefined
  const mocks: Array<MockProvider> = []
  afterEach(async () => {
    await proxy?.close()
    proxy = undefined
    for (const m of mocks.splice(0)) await m.close()
  })

  const until = async (cond: () => Promise<boolean>, ms: number): Promise<number> => {
    const start = Date.now()
    while (Date.now() - start < ms) {
      if (await cond()) return Date.now() - start
      await new Promise((r) => setTimeout(r, 50))
    }
    throw new Error(`condition not met within ${ms} ms`)
  }

  const chat = (port: number, host: string) =>
    h1(port, {
      host,
      method: "POST",
      path: "/v1/chat/completions",
      headers: [["content-type", "application/json"]],
      body: JSON.stringify({ model: "m", messages: [{ role: "user", content: "hi" }] })
    })

  vit("a stopped upstream leaves selection within one interval (503 when alone) and returns", async () => {
    const a = await startMockProvider()
    mocks.push(a)
    const port = a.port
    proxy = await startProxy(`
http_port: 0
http_bind_address: 127.0.0.1
health_check: { enabled: true, interval: 1, timeout: 1 }
providers:
  - type: openai
    host: only.test
    endpoint: "127.0.0.1:${port}"
    tls: false
    api_key: sk-mock-openai
    health_check: { path: /health }
`)
    expect((await chat(proxy.httpPort!, "only.test")).status).toBe(200)
    expect(a.received.some((r) => r.path === "/health" && r.rawHeaders.includes("Bearer sk-mock-openai"))).toBe(true)
    await a.close()
    const left = await until(async () => (await chat(proxy!.httpPort!, "only.test")).status === 503, 3_000)
    expect(left).toBeLessThan(1_500)
    const r = await chat(proxy.httpPort!, "only.test")
    expect(r.text).toBe("No healthy provider")
    const back = await startMockProvider({ port })
    mocks.push(back)
    await until(async () => (await chat(proxy!.httpPort!, "only.test")).status === 200, 3_000)
  })

  vit("traffic shifts to the other provider when one upstream stops (connect-only checks)", async () => {
    const a = await startMockProvider()
    const b = await startMockProvider()
    mocks.push(a, b)
    const portA = a.port
    proxy = await startProxy(`
http_port: 0
http_bind_address: 127.0.0.1
health_check: { enabled: true, interval: 1, timeout: 1 }
providers:
  - { type: openai, host: two.test, endpoint: "127.0.0.1:${portA}", tls: false, api_key: sk-mock-openai }
  - { type: openai, host: two.test, endpoint: "127.0.0.1:${b.port}", tls: false, api_key: sk-mock-openai }
`)
    await a.close()
    // Wait one interval (plus slack): then every request goes to b, none fails.
    await new Promise((r) => setTimeout(r, 1_300))
    b.reset()
    for (let i = 0; i < 20; i++) expect((await chat(proxy.httpPort!, "two.test")).status).toBe(200)
    expect(b.received.filter((r) => r.path === "/v1/chat/completions").length).toBe(20)
    const back = await startMockProvider({ port: portA })
    mocks.push(back)
    await until(async () => {
      await chat(proxy!.httpPort!, "two.test")
      return back.received.some((r) => r.path === "/v1/chat/completions")
    }, 4_000)
  })
})
