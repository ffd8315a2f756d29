// Unit tests of selection and credential rules (SPEC §3, §4) with Layer-injected fakes: the real
// ProviderRegistry layer over a Config snapshot and a fake HealthChecker whose health the test controls.
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { parseConfig } from "../src/config/load.js"
import type { ProviderType } from "../src/config/types.js"
import { clientKeyFor } from "../src/domain/credentials.js"
import { scanRequestHeaders } from "../src/proxy/headers.js"
import * as Config from "../src/services/Config.js"
import { HealthChecker } from "../src/services/HealthChecker.js"
import * as ProviderRegistry from "../src/services/ProviderRegistry.js"

/** A HealthChecker fake: providers whose index is in `down` are unhealthy; reporting is not expected here. */
const fakeHealth = (down: ReadonlySet<number>) =>
  Layer.succeed(HealthChecker, {
    isHealthy: (id) => !down.has(Number(id.split(":")[0])),
    state: () => undefined,
    setActive: () => {
      throw new Error("setActive not expected")
    },
    reporter: {
      connectFailed: () => {
        throw new Error("connectFailed not expected")
      },
      connected: () => undefined
    }
  })

const registry = (yaml: string, down: ReadonlySet<number> = new Set()) =>
  Effect.gen(function* () {
    const snapshot = yield* parseConfig(yaml, "/tmp/test.yml", {})
    return ProviderRegistry.layer.pipe(Layer.provide(Layer.merge(Config.layerSnapshot(snapshot), fakeHealth(down))))
  })

const routeWith = (yaml: string, down: ReadonlySet<number>, host: string, path: string, key?: string) =>
  Effect.gen(function* () {
    const layer = yield* registry(yaml, down)
    return yield* Effect.gen(function* () {
      const reg = yield* ProviderRegistry.ProviderRegistry
      return reg.current().route(host, 80, path, () => key)
    }).pipe(Effect.provide(layer), Effect.scoped)
  })

const tiers = `
http_port: 8080
auth_keys: ["k"]
providers:
  - { type: openai, host: "a.test", endpoint: "p0", tls: false, priority: 10 }
  - { type: openai, host: "a.test", endpoint: "p1", tls: false, priority: 10 }
  - { type: openai, host: "a.test", endpoint: "p2", tls: false, priority: 0 }
  - { type: openai, host: "a.test", endpoint: "p3", tls: false, priority: 99, is_fallback: true }
`

const pick = (r: { _tag: string; identity?: { provider: { index: number } } }) =>
  r._tag === "Ok" ? r.identity!.provider.index : r._tag

describe("selection", () => {
  it.effect("highest priority tier among healthy non-fallback providers", () =>
    Effect.gen(function* () {
      const seen = new Set<number | string>()
      for (let i = 0; i < 200; i++) seen.add(pick(yield* routeWith(tiers, new Set(), "a.test", "/", "k")))
      expect([...seen].sort()).toEqual([0, 1])
    })
  )
  it.effect("next tier when the top tier is unhealthy; fallback only when no primary is healthy", () =>
    Effect.gen(function* () {
      expect(pick(yield* routeWith(tiers, new Set([0, 1]), "a.test", "/", "k"))).toBe(2)
      expect(pick(yield* routeWith(tiers, new Set([0, 1, 2]), "a.test", "/", "k"))).toBe(3)
      expect(pick(yield* routeWith(tiers, new Set([0, 1, 2, 3]), "a.test", "/", "k"))).toBe("Unavailable")
    })
  )
  it.effect("401 before 503: health is never revealed to a client whose key no provider accepts", () =>
    Effect.gen(function* () {
      expect(pick(yield* routeWith(tiers, new Set([0, 1, 2, 3]), "a.test", "/", "wrong"))).toBe("Unauthorized")
      expect(pick(yield* routeWith(tiers, new Set([0, 1, 2, 3]), "a.test", "/", undefined))).toBe("Unauthorized")
      expect(pick(yield* routeWith(tiers, new Set(), "b.test", "/", "k"))).toBe("NotFound")
    })
  )
  it.effect("weights 1:3 over 4,000 picks land within ±5 points", () =>
    Effect.gen(function* () {
      const yaml = `
http_port: 8080
providers:
  - { type: openai, host: "w.test", endpoint: "p0", tls: false, weight: 1 }
  - { type: openai, host: "w.test", endpoint: "p1", tls: false, weight: 3 }
`
      const layer = yield* registry(yaml)
      const counts = yield* Effect.gen(function* () {
        const router = (yield* ProviderRegistry.ProviderRegistry).current()
        const c = [0, 0]
        for (let i = 0; i < 4000; i++) c[pick(router.route("w.test", 80, "/", () => undefined)) as number]++
        return c
      }).pipe(Effect.provide(layer), Effect.scoped)
      const share = counts[1] / 4000
      expect(share).toBeGreaterThan(0.7)
      expect(share).toBeLessThan(0.8)
    })
  )
  it.effect("api_keys: one identity per key with its own weight", () =>
    Effect.gen(function* () {
      const yaml = `
http_port: 8080
providers:
  - type: openai
    host: "k.test"
    endpoint: "p0"
    tls: false
    api_keys: [{ key: "ka", weight: 1 }, { key: "kb", weight: 3 }]
`
      const layer = yield* registry(yaml)
      const counts = yield* Effect.gen(function* () {
        const router = (yield* ProviderRegistry.ProviderRegistry).current()
        const c: Record<string, number> = {}
        for (let i = 0; i < 4000; i++) {
          const r = router.route("k.test", 80, "/", () => undefined)
          if (r._tag !== "Ok" || r.identity.key?.source._tag !== "Static") throw new Error("expected a static key")
          const k = JSON.stringify(r.identity.key.weight)
          c[k] = (c[k] ?? 0) + 1
        }
        return c
      }).pipe(Effect.provide(layer), Effect.scoped)
      expect(counts["3"] / 4000).toBeGreaterThan(0.7)
      expect(counts["3"] / 4000).toBeLessThan(0.8)
    })
  )
  it.effect("provider-level auth_keys add to the global ones for that provider only", () =>
    Effect.gen(function* () {
      const yaml = `
http_port: 8080
auth_keys: ["global"]
providers:
  - { type: openai, host: "x.test", endpoint: "p0", tls: false, auth_keys: ["only-x"] }
  - { type: openai, host: "y.test", endpoint: "p1", tls: false }
`
      expect(pick(yield* routeWith(yaml, new Set(), "x.test", "/", "only-x"))).toBe(0)
      expect(pick(yield* routeWith(yaml, new Set(), "x.test", "/", "global"))).toBe(0)
      expect(pick(yield* routeWith(yaml, new Set(), "y.test", "/", "global"))).toBe(1)
      expect(pick(yield* routeWith(yaml, new Set(), "y.test", "/", "only-x"))).toBe("Unauthorized")
    })
  )
  it.effect("longest matching path prefix wins; /openai does not match /openai-x", () =>
    Effect.gen(function* () {
      const yaml = `
http_port: 8080
providers:
  - { type: openai, host: "h.test", endpoint: "p0", tls: false }
  - { type: openai, host: "h.test/openai", endpoint: "p1", tls: false }
  - { type: openai, host: "h.test/openai/v2", endpoint: "p2", tls: false }
  - { type: openai, host: "h.test:8443/openai", endpoint: "p3", tls: false }
`
      const layer = yield* registry(yaml)
      yield* Effect.gen(function* () {
        const router = (yield* ProviderRegistry.ProviderRegistry).current()
        const r = (path: string, port = 80) => {
          const x = router.route("h.test", port, path, () => undefined)
          return x._tag === "Ok" ? [x.identity.provider.index, x.path] : x._tag
        }
        expect(r("/openai")).toEqual([1, "/"])
        expect(r("/openai?x=1")).toEqual([1, "/?x=1"])
        expect(r("/openai/v1/chat")).toEqual([1, "/v1/chat"])
        expect(r("/openai-x")).toEqual([0, "/openai-x"])
        expect(r("/openai/v2/x")).toEqual([2, "/x"])
        // a provider host with a port matches only that port; one without a port matches any port
        const onPort = new Set<string>()
        for (let i = 0; i < 100; i++) onPort.add(JSON.stringify(r("/openai/x", 8443)))
        expect([...onPort].sort()).toEqual(['[1,"/x"]', '[3,"/x"]'])
        for (let i = 0; i < 50; i++) expect(r("/openai/x", 80)).toEqual([1, "/x"])
      }).pipe(Effect.provide(layer), Effect.scoped)
    })
  )
})

describe("selection order: match → key → health → longest prefix (SPEC §3.3)", () => {
  const shared = `
http_port: 8080
providers:
  - { type: openai, host: "s.test/v1", endpoint: "p0", tls: false, auth_keys: ["k1", "both"] }
  - { type: openai, host: "s.test", endpoint: "p1", tls: false, auth_keys: ["k2", "both"] }
  - { type: openai, host: "s.test/v1/deep", endpoint: "p2", tls: false, auth_keys: ["k1"], is_fallback: true }
`
  const r = (down: ReadonlySet<number>, path: string, key: string | undefined, exclude?: ReadonlySet<string>) =>
    Effect.gen(function* () {
      const layer = yield* registry(shared, down)
      return yield* Effect.gen(function* () {
        const router = (yield* ProviderRegistry.ProviderRegistry).current()
        const ids = exclude === undefined ? undefined : new Set([...exclude].map((i) => router.providerIds[Number(i)]))
        const x = router.route("s.test", 80, path, () => key, ids)
        return x._tag === "Ok" ? [x.identity.provider.index, x.path] : x._tag
      }).pipe(Effect.provide(layer), Effect.scoped)
    })
  it.effect("a key accepted only by the un-prefixed provider reaches it with the path unchanged", () =>
    Effect.gen(function* () {
      expect(yield* r(new Set(), "/v1/test", "k2")).toEqual([1, "/v1/test"])
      expect(yield* r(new Set(), "/v1/test", "k1")).toEqual([0, "/test"])
      expect(yield* r(new Set(), "/v1/test", "both")).toEqual([0, "/test"])
      expect(yield* r(new Set(), "/v1/test", "nope")).toBe("Unauthorized")
      expect(yield* r(new Set(), "/v1/test", undefined)).toBe("Unauthorized")
      // k1's providers do not cover /other
      expect(yield* r(new Set(), "/other", "k1")).toBe("Unauthorized")
    })
  )
  it.effect("health before the prefix: an unhealthy longer prefix gives way to a healthy shorter one", () =>
    Effect.gen(function* () {
      expect(yield* r(new Set([0]), "/v1/test", "both")).toEqual([1, "/v1/test"])
      // a provider excluded by a fail-over counts as unhealthy the same way
      expect(yield* r(new Set(), "/v1/test", "both", new Set(["0"]))).toEqual([1, "/v1/test"])
    })
  )
  it.effect("503 when every provider accepting the key is unhealthy, whatever the others' health", () =>
    Effect.gen(function* () {
      expect(yield* r(new Set([1]), "/v1/test", "k2")).toBe("Unavailable")
      expect(yield* r(new Set([0, 1, 2]), "/v1/test", "nope")).toBe("Unauthorized")
    })
  )
  it.effect("the longest prefix before fallback: a fallback with a longer prefix beats a primary", () =>
    Effect.gen(function* () {
      expect(yield* r(new Set(), "/v1/deep/x", "k1")).toEqual([2, "/x"])
      expect(yield* r(new Set([2]), "/v1/deep/x", "k1")).toEqual([0, "/deep/x"])
    })
  )
})

describe("client key places (SPEC §4)", () => {
  const key = (type: ProviderType, headers: Array<string>, query?: string) =>
    clientKeyFor(type, scanRequestHeaders(headers), query)
  it("openai: Authorization Bearer, then Proxy-Authorization", () => {
    expect(key("openai", ["AUTHORIZATION", "Bearer a", "Proxy-Authorization", "Bearer b"])).toBe("a")
    expect(key("openai", ["proxy-authorization", "bearer b"])).toBe("b")
    expect(key("openai", ["x-api-key", "c"])).toBeUndefined()
  })
  it("anthropic: x-api-key, then Authorization, then Proxy-Authorization", () => {
    expect(key("anthropic", ["Authorization", "Bearer a", "X-Api-Key", "x"])).toBe("x")
    expect(key("anthropic", ["Authorization", "Bearer a"])).toBe("a")
    expect(key("anthropic", ["Proxy-Authorization", "Bearer p"])).toBe("p")
  })
  it("gemini: x-goog-api-key, then ?key=, then Proxy-Authorization", () => {
    expect(key("gemini", ["X-Goog-Api-Key", "g"], "key=q")).toBe("g")
    expect(key("gemini", [], "alt=sse&key=q%2Bx")).toBe("q+x")
    expect(key("gemini", ["Proxy-Authorization", "Bearer p"], "alt=sse")).toBe("p")
    expect(key("gemini", ["Authorization", "Bearer a"])).toBeUndefined()
  })
})
