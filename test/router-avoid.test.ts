// The router's side of retries (SPEC §11): identities carry a stable id, a request's tried identities and the
// identities cooling down are skipped like unhealthy providers (same tier first, then lower tiers, then fallback),
// and a route whose untried identities all cool down answers `Cooling` with the one free first. Also the cool-down
// registry's `anyCooling`, which lets the request path keep its fast path when nothing cools.
import * as Effect from "effect/Effect"
import { describe, expect, it } from "vitest"
import { parseConfig } from "../src/config/load.js"
import { CooldownRegistry, identityId } from "../src/domain/retry/index.js"
import { type Avoid, Router } from "../src/domain/router.js"

const routerOf = async (yaml: string) =>
  new Router(await Effect.runPromise(parseConfig(yaml, "/tmp/router-avoid-test.yml", {})))

const noKey = () => undefined

const CONFIG = `
http_port: 0
providers:
  - { type: openai, host: "r.test", endpoint: "127.0.0.1:1", tls: false, api_keys: [{ key: k0 }, { key: k1 }] }
  - { type: openai, host: "r.test", endpoint: "127.0.0.1:2", tls: false, api_key: k2, priority: -1 }
  - { type: openai, host: "r.test", endpoint: "127.0.0.1:3", tls: false, api_key: k3, is_fallback: true }
`

describe("routing around tried and cooling identities", () => {
  it("identities have stable ids: the provider id plus the key's index", async () => {
    const router = await routerOf(CONFIG)
    const r = router.route("r.test", 80, "/v1/x", noKey)
    expect(r._tag).toBe("Ok")
    if (r._tag !== "Ok") return
    const k = r.identity.key === undefined ? 0 : r.identity.provider.keys.indexOf(r.identity.key)
    expect(r.identity.id).toBe(identityId(r.identity.providerId, k))
  })

  it("tried identities go first to the other key of the tier, then the lower tier, then the fallback", async () => {
    const router = await routerOf(CONFIG)
    const tried = new Set<string>()
    const avoid: Avoid = { tried, cooling: undefined, now: 0 }
    const order: Array<string> = []
    for (let i = 0; i < 4; i++) {
      const r = router.route("r.test", 80, "/v1/x", noKey, undefined, undefined, avoid)
      expect(r._tag).toBe("Ok")
      if (r._tag !== "Ok") return
      const k = r.identity.key === undefined ? 0 : r.identity.provider.keys.indexOf(r.identity.key)
      order.push(`${r.identity.provider.endpointPort}:${k}`)
      tried.add(r.identity.id)
    }
    expect(order.slice(0, 2).sort()).toEqual(["1:0", "1:1"])
    expect(order.slice(2)).toEqual(["2:0", "3:0"])
    expect(router.route("r.test", 80, "/v1/x", noKey, undefined, undefined, avoid)._tag).toBe("Unavailable")
  })

  it("cooling identities are skipped; when every untried one cools, Cooling names the one free first", async () => {
    const router = await routerOf(CONFIG)
    const reg = new CooldownRegistry()
    const now = 1_000_000
    const ids: Array<string> = []
    for (let i = 0; i < 200; i++) {
      const r = router.route("r.test", 80, "/v1/x", noKey)
      if (r._tag === "Ok" && !ids.includes(r.identity.id)) ids.push(r.identity.id)
    }
    // the two keys of the top tier
    expect(ids.length).toBe(2)
    reg.cool(ids[0], now + 5000, now)
    const avoid: Avoid = { tried: undefined, cooling: reg, now }
    for (let i = 0; i < 50; i++) {
      const r = router.route("r.test", 80, "/v1/x", noKey, undefined, undefined, avoid)
      expect(r._tag === "Ok" && r.identity.id).toBe(ids[1])
    }
    // every identity of every tier cooling: the one free first
    const all = new Set<string>()
    const tried = new Set<string>()
    for (;;) {
      const r = router.route("r.test", 80, "/v1/x", noKey, undefined, undefined, { tried, cooling: undefined, now })
      if (r._tag !== "Ok") break
      all.add(r.identity.id)
      tried.add(r.identity.id)
    }
    expect(all.size).toBe(4)
    const list = [...all]
    list.forEach((id, i) => {
      reg.cool(id, now + 9000 - 1000 * i, now)
    })
    const c = router.route("r.test", 80, "/v1/x", noKey, undefined, undefined, avoid)
    expect(c._tag).toBe("Cooling")
    if (c._tag !== "Cooling") return
    // the last one listed is free first (6 s), across tiers and the fallback
    expect(c.identity.id).toBe(list[3])
    expect(c.waitMs).toBe(6000)
  })

  it("anyCooling: false when nothing ever cooled; turns false again after the entries expire", () => {
    const reg = new CooldownRegistry()
    expect(reg.anyCooling(0)).toBe(false)
    reg.cool("p#0", 1000, 0)
    expect(reg.anyCooling(10)).toBe(true)
    // within a second of the last sweep the entry is still held (no sweep per call) …
    expect(reg.anyCooling(1005)).toBe(true)
    // … and swept after
    expect(reg.anyCooling(2000)).toBe(false)
    expect(reg.size).toBe(0)
  })
})
