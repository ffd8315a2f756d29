// Unit and property tests of the retry policy (SPEC §11, src/domain/retry): cool-down parsing from provider
// headers, the cool-down registry, the retry decision, the order of attempts, the first-token watchdog and the
// proxy's own 429 when every key is cooling. Config fields of `retry:` and `timeouts.first_token` are at the end.
import * as Effect from "effect/Effect"
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { parseConfig, summarize } from "../src/config/load.js"
import { providerIdOf } from "../src/domain/providers.js"
import {
  type AttemptFailure,
  armFirstToken,
  bodyPlan,
  CooldownRegistry,
  type CoolingView,
  cooldownOf,
  coolingRefusal,
  coolingWait,
  decideRetry,
  identityId,
  nextIdentity,
  type OrderEntry,
  type OrderIdentity,
  RETRY_REASONS
} from "../src/domain/retry/index.js"

const NOW = Date.UTC(2026, 10, 30, 4, 0, 0)
const MAX = 60_000
const h = (...pairs: Array<[string, string]>): Array<Buffer> => pairs.flat().map((s) => Buffer.from(s, "latin1"))

describe("cooldownOf: what a failed response asks for", () => {
  it("reads retry-after-ms first, then Retry-After, then the largest reset header", () => {
    expect(cooldownOf(429, h(["retry-after-ms", "1500"], ["Retry-After", "9"]), NOW, MAX)).toEqual({
      ms: 1500,
      source: "retry-after-ms"
    })
    expect(cooldownOf(429, h(["Retry-After", "2"], ["x-ratelimit-reset-tokens", "6m0s"]), NOW, MAX)).toEqual({
      ms: 2000,
      source: "retry-after"
    })
    expect(
      cooldownOf(429, h(["x-ratelimit-reset-requests", "1s"], ["x-ratelimit-reset-tokens", "20ms"]), NOW, MAX)
    ).toEqual({ ms: 1000, source: "ratelimit-reset" })
    expect(cooldownOf(429, h(["X-RateLimit-Reset-Tokens", "1m2.5s"]), NOW, 120_000)?.ms).toBe(62_500)
  })

  it("reads a Retry-After HTTP-date and Anthropic's RFC 3339 reset times", () => {
    const date = new Date(NOW + 7000).toUTCString()
    expect(cooldownOf(429, h(["retry-after", date]), NOW, MAX)?.ms).toBe(7000)
    const iso = (ms: number) => new Date(NOW + ms).toISOString().replace(/\.\d+Z$/, "Z")
    expect(
      cooldownOf(
        429,
        h(["anthropic-ratelimit-requests-reset", iso(3000)], ["anthropic-ratelimit-output-tokens-reset", iso(12_000)]),
        NOW,
        MAX
      )
    ).toEqual({ ms: 12_000, source: "ratelimit-reset" })
  })

  it("takes node:http's string pairs as well as undici's Buffers", () => {
    expect(cooldownOf(429, ["Retry-After", "3"], NOW, MAX)?.ms).toBe(3000)
  })

  it("caps at max_cooldown, is 1 s when nothing is named, and 0 for a date in the past", () => {
    expect(cooldownOf(429, h(["retry-after", "3600"]), NOW, MAX)?.ms).toBe(MAX)
    expect(cooldownOf(429, h(["content-type", "application/json"]), NOW, MAX)).toEqual({ ms: 1000, source: "default" })
    expect(cooldownOf(429, h(["retry-after", "garbage"]), NOW, MAX)).toEqual({ ms: 1000, source: "default" })
    expect(cooldownOf(429, h(["retry-after", new Date(NOW - 5000).toUTCString()]), NOW, MAX)?.ms).toBe(0)
  })

  it("cools on 503/529 only with Retry-After, never on other statuses", () => {
    expect(cooldownOf(503, h(["x-ratelimit-reset-requests", "1s"]), NOW, MAX)).toBeUndefined()
    expect(cooldownOf(529, h(["retry-after", "4"]), NOW, MAX)?.ms).toBe(4000)
    expect(cooldownOf(503, h(["retry-after-ms", "250"]), NOW, MAX)?.ms).toBe(250)
    for (const s of [200, 400, 401, 500, 502, 504])
      expect(cooldownOf(s, h(["retry-after", "4"]), NOW, MAX)).toBe(undefined)
  })

  it("never throws, never goes below 0 or above the cap, on arbitrary header names and values", () => {
    const names = fc.oneof(
      fc.constantFrom(
        "retry-after",
        "Retry-After",
        "retry-after-ms",
        "x-ratelimit-reset-requests",
        "x-ratelimit-reset-tokens",
        "anthropic-ratelimit-tokens-reset",
        "anthropic-ratelimit-x-reset"
      ),
      fc.string()
    )
    const values = fc.oneof(
      fc.string(),
      fc.stringMatching(/^[0-9.hmsuµn ]{0,30}$/),
      fc.integer().map(String),
      fc.date({ noInvalidDate: true }).map((d) => d.toUTCString()),
      fc.date({ noInvalidDate: true }).map((d) => d.toISOString())
    )
    fc.assert(
      fc.property(
        fc.constantFrom(429, 503, 529),
        fc.array(fc.tuple(names, values), { maxLength: 8 }),
        fc.boolean(),
        fc.nat(120_000),
        (status, pairs, asBuffers, cap) => {
          const raw = pairs.flat().map((s) => (asBuffers ? Buffer.from(s) : s))
          const c = cooldownOf(status, raw, NOW, cap)
          if (status === 429) expect(c).toBeDefined()
          if (c !== undefined) {
            expect(Number.isInteger(c.ms)).toBe(true)
            expect(c.ms).toBeGreaterThanOrEqual(0)
            expect(c.ms).toBeLessThanOrEqual(cap)
          }
        }
      ),
      { numRuns: 2000 }
    )
  })
})

describe("CooldownRegistry", () => {
  it("cools an identity until a time, keeps the later of two, and expires", () => {
    const r = new CooldownRegistry()
    const a = identityId("0:openai:abc", 0)
    const b = identityId("0:openai:abc", 1)
    expect(a).not.toBe(b)
    r.cool(a, NOW + 2000, NOW)
    r.cool(a, NOW + 1000, NOW)
    expect(r.isCooling(a, NOW + 1500)).toBe(true)
    expect(r.isCooling(b, NOW)).toBe(false)
    expect(r.remainingMs(a, NOW + 500)).toBe(1500)
    expect(r.isCooling(a, NOW + 2000)).toBe(false)
    expect(r.size).toBe(0)
  })

  it("keeps a cool-down across a reload for an unchanged key, keyed like health (providerIdOf)", async () => {
    const one =
      "providers: [{type: openai, host: h, endpoint: e, api_keys: [{key: k1, weight: 1}, {key: k2, weight: 1}]}]"
    const load = (text: string) => Effect.runPromise(parseConfig(`http_port: 0\n${text}`, "/c.yml", {}))
    const before = await load(one)
    const after = await load(`${one.slice(0, -1)}, {type: openai, host: h, endpoint: other}]`)
    const changed = await load(one.replace("k2", "k3"))
    const r = new CooldownRegistry()
    r.cool(identityId(providerIdOf(before.providers[0]), 1), NOW + 5000, NOW)
    expect(r.isCooling(identityId(providerIdOf(after.providers[0]), 1), NOW + 1)).toBe(true)
    expect(r.isCooling(identityId(providerIdOf(after.providers[0]), 0), NOW + 1)).toBe(false)
    expect(r.isCooling(identityId(providerIdOf(changed.providers[0]), 1), NOW + 1)).toBe(false)
  })

  it("earliest: 0 when one is free, else the wait until the first is", () => {
    const r = new CooldownRegistry()
    r.cool("a", NOW + 3000, NOW)
    r.cool("b", NOW + 1200, NOW)
    expect(r.earliest(["a", "b"], NOW)).toBe(1200)
    expect(r.earliest(["a", "b", "c"], NOW)).toBe(0)
    expect(r.earliest([], NOW)).toBe(0)
    expect(r.cooling(NOW).sort()).toEqual([
      ["a", 3000],
      ["b", 1200]
    ])
  })

  it("entry: until when and why, the cause going with the cool-down it belongs to (admin /providers)", () => {
    const r = new CooldownRegistry()
    r.cool("a", NOW + 2000, NOW, { status: 429, source: "retry-after", sinceMs: NOW })
    // a shorter cool-down asked later changes nothing, its cause neither
    r.cool("a", NOW + 1000, NOW + 10, { status: 503, source: "retry-after-ms", sinceMs: NOW + 10 })
    expect(r.entry("a", NOW + 500)).toEqual({ untilMs: NOW + 2000, status: 429, source: "retry-after", sinceMs: NOW })
    // a longer one replaces both
    r.cool("a", NOW + 9000, NOW + 20, { status: 529, source: "ratelimit-reset", sinceMs: NOW + 20 })
    expect(r.entry("a", NOW + 500)).toMatchObject({ untilMs: NOW + 9000, status: 529, source: "ratelimit-reset" })
    expect(r.entry("b", NOW)).toBeUndefined()
    expect(r.entry("a", NOW + 9000)).toBeUndefined()
    // expired and met: the cause is gone with it, so a later cool-down without one shows no stale cause
    expect(r.isCooling("a", NOW + 9000)).toBe(false)
    r.cool("a", NOW + 12_000, NOW + 10_000)
    expect(r.entry("a", NOW + 10_000)).toEqual({
      untilMs: NOW + 12_000,
      status: 0,
      source: "default",
      sinceMs: NOW + 10_000
    })
  })

  it("sweeps expired entries as it grows, so removed identities do not pile up", () => {
    const r = new CooldownRegistry()
    for (let i = 0; i < 5000; i++) r.cool(`gone-${i}`, NOW + 10, NOW)
    for (let i = 0; i < 5000; i++) r.cool(`new-${i}`, NOW + 10_000, NOW + 20)
    expect(r.size).toBeLessThan(6000)
    expect(r.isCooling("new-4999", NOW + 21)).toBe(true)
  })
})

describe("decideRetry", () => {
  const settings = { attempts: 2, onStatus: [429, 500, 502, 503, 504, 529] }
  const f = (over: Partial<AttemptFailure>): AttemptFailure => ({
    attempts: 1,
    kind: "status",
    status: 503,
    replayable: true,
    sentToClient: false,
    ...over
  })

  it("retries connect, TLS, reset, first-token failures and listed statuses, with a reason label", () => {
    expect(decideRetry(settings, f({ kind: "connect" }))).toEqual({ retry: true, reason: "connect" })
    // A TLS failure is part of connecting (the metric's label set: connect, status, reset, first_token).
    expect(decideRetry(settings, f({ kind: "tls" }))).toEqual({ retry: true, reason: "connect" })
    expect(decideRetry(settings, f({ kind: "reset" }))).toEqual({ retry: true, reason: "reset" })
    expect(decideRetry(settings, f({ kind: "first_token" }))).toEqual({ retry: true, reason: "first_token" })
    expect(decideRetry(settings, f({ status: 529 }))).toEqual({ retry: true, reason: "status" })
    expect(decideRetry(settings, f({ status: 429 }))).toBe(decideRetry(settings, f({ status: 429 })))
  })

  it("does not retry other statuses, a response-head time-out, or once bytes reached the client", () => {
    expect(decideRetry(settings, f({ status: 400 }))).toEqual({ retry: false, why: "status_not_retried" })
    expect(decideRetry(settings, f({ status: 501 }))).toEqual({ retry: false, why: "status_not_retried" })
    expect(decideRetry(settings, f({ kind: "response_timeout" }))).toEqual({ retry: false, why: "not_retryable" })
    expect(decideRetry(settings, f({ kind: "connect", sentToClient: true }))).toEqual({
      retry: false,
      why: "client_has_bytes"
    })
    expect(decideRetry({ ...settings, onStatus: [] }, f({ status: 429 })).retry).toBe(false)
  })

  it("bounds attempts at 1 + retry.attempts and never replays a body that was not kept", () => {
    expect(decideRetry(settings, f({ attempts: 2 })).retry).toBe(true)
    expect(decideRetry(settings, f({ attempts: 3 }))).toEqual({ retry: false, why: "attempts_exhausted" })
    expect(decideRetry({ ...settings, attempts: 0 }, f({ kind: "connect" })).retry).toBe(false)
    expect(decideRetry(settings, f({ replayable: false }))).toEqual({ retry: false, why: "body_not_replayable" })
  })

  it("retries only when every condition holds (property)", () => {
    const kinds = ["connect", "tls", "reset", "status", "first_token", "response_timeout"] as const
    fc.assert(
      fc.property(
        fc.nat(12),
        fc.constantFrom(...kinds),
        fc.integer({ min: 100, max: 599 }),
        fc.boolean(),
        fc.boolean(),
        fc.nat(10),
        (attempts, kind, status, replayable, sentToClient, max) => {
          const d = decideRetry(
            { attempts: max, onStatus: settings.onStatus },
            { attempts, kind, status, replayable, sentToClient }
          )
          const retryable = kind === "status" ? settings.onStatus.includes(status) : kind !== "response_timeout"
          expect(d.retry).toBe(!sentToClient && retryable && attempts <= max && replayable)
          if (d.retry) expect(RETRY_REASONS).toContain(d.reason)
        }
      )
    )
  })

  it("bodyPlan: buffer up to max_body_bytes, stream beyond, nothing when retries are off", () => {
    const s = { attempts: 2, maxBodyBytes: 1024 }
    expect(bodyPlan(0, s)).toBe("none")
    expect(bodyPlan(1024, s)).toBe("buffer")
    expect(bodyPlan(1025, s)).toBe("stream")
    expect(bodyPlan(undefined, s)).toBe("buffer_up_to_limit")
    expect(bodyPlan(10, { attempts: 0, maxBodyBytes: 1024 })).toBe("stream")
    expect(bodyPlan(undefined, { attempts: 2, maxBodyBytes: 0 })).toBe("stream")
  })
})

interface Id extends OrderIdentity {
  readonly entry: number
}

const entry = (index: number, priority: number, isFallback: boolean, weights: Array<number>): OrderEntry<Id> => ({
  provider: { priority, isFallback },
  identities: weights.map((weight, k) => ({ id: identityId(`p${index}`, k), weight, entry: index }))
})

/** Every identity `nextIdentity` yields for a request, in order, until none is left. */
/** A CoolingView over a set of ids (each cooling for 1000 ms plus its length, so they differ). */
const view = (cooling: ReadonlySet<string>): CoolingView => ({
  isCooling: (id) => cooling.has(id),
  remainingMs: (id) => (cooling.has(id) ? 1000 + id.length : 0)
})

const drain = (entries: ReadonlyArray<OrderEntry<Id>>, cooling: ReadonlySet<string>, random: () => number) => {
  const tried = new Set<string>()
  const order: Array<Id> = []
  for (;;) {
    const next = nextIdentity(entries, tried, view(cooling), NOW, random)
    if (next === undefined) return order
    order.push(next)
    tried.add(next.id)
  }
}

describe("nextIdentity: the order of attempts", () => {
  it("same tier first, then lower priority, then fallback", () => {
    const entries = [
      entry(0, 0, true, [1]),
      entry(1, 0, false, [1]),
      entry(2, 5, false, [1, 1]),
      entry(3, 5, false, [1])
    ]
    const order = drain(entries, new Set(), Math.random).map((i) => i.entry)
    expect(order.slice(0, 3).sort()).toEqual([2, 2, 3])
    expect(order.slice(3)).toEqual([1, 0])
  })

  it("skips cooling identities, even the whole top tier, and yields none when every one is tried or cooling", () => {
    const entries = [entry(0, 1, false, [1, 1]), entry(1, 0, false, [1])]
    const cooling = new Set([identityId("p0", 0)])
    expect(nextIdentity(entries, undefined, view(cooling), NOW)?.id).toBe(identityId("p0", 1))
    cooling.add(identityId("p0", 1))
    expect(nextIdentity(entries, undefined, view(cooling), NOW)?.entry).toBe(1)
    cooling.add(identityId("p1", 0))
    expect(nextIdentity(entries, undefined, view(cooling), NOW)).toBeUndefined()
  })

  it("picks by identity weight within the tier", () => {
    const entries = [entry(0, 0, false, [3]), entry(1, 0, false, [1])]
    const counts = [0, 0]
    let seed = 1
    const random = () => {
      seed = (seed * 48271) % 2147483647
      return seed / 2147483647
    }
    for (let i = 0; i < 4000; i++) {
      const next = nextIdentity(entries, undefined, undefined, NOW, random)
      if (next !== undefined) counts[next.entry]++
    }
    expect(counts[0] / 4000).toBeGreaterThan(0.7)
    expect(counts[0] / 4000).toBeLessThan(0.8)
    // random() at its extremes still yields an identity of the tier.
    expect(nextIdentity(entries, undefined, undefined, NOW, () => 0)?.entry).toBe(0)
    expect(nextIdentity(entries, undefined, undefined, NOW, () => 0.999999999)?.entry).toBe(1)
  })

  it("never repeats an identity, never skips one that is eligible, and respects tiers (property)", () => {
    const arbEntry = fc.record({
      priority: fc.integer({ min: -2, max: 2 }),
      isFallback: fc.boolean(),
      weights: fc.array(fc.double({ min: 0.01, max: 10, noNaN: true }), { minLength: 1, maxLength: 3 })
    })
    fc.assert(
      fc.property(
        fc.array(arbEntry, { minLength: 1, maxLength: 6 }),
        fc.array(fc.boolean(), { maxLength: 18 }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (specs, coolFlags, r) => {
          const entries = specs.map((s, i) => entry(i, s.priority, s.isFallback, s.weights))
          const all = entries.flatMap((e) => e.identities)
          const cooling = new Set(all.filter((_, k) => coolFlags[k] === true).map((i) => i.id))
          const order = drain(entries, cooling, () => r)
          // Exactly the identities that are not cooling, each once.
          expect(new Set(order.map((i) => i.id)).size).toBe(order.length)
          expect(order.map((i) => i.id).sort()).toEqual(
            all
              .filter((i) => !cooling.has(i.id))
              .map((i) => i.id)
              .sort()
          )
          // Tier rank never goes up: non-fallback before fallback, then priority descending.
          const rank = (i: Id) => {
            const p = specs[i.entry]
            return (p.isFallback ? 0 : 1000) + p.priority
          }
          for (let k = 1; k < order.length; k++) expect(rank(order[k])).toBeLessThanOrEqual(rank(order[k - 1]))
          // When nothing is left, coolingWait names the untried cooling identity free first.
          const tried = new Set(order.map((i) => i.id))
          const w = coolingWait(entries, tried, view(cooling), NOW)
          if (cooling.size === 0) expect(w).toBeUndefined()
          else expect(cooling.has(w?.identity.id ?? "")).toBe(true)
        }
      ),
      { numRuns: 500 }
    )
  })

  it("coolingWait: the identity free first and the wait, ignoring tried ones", () => {
    const entries = [entry(0, 0, false, [1, 1]), entry(1, 0, true, [1])]
    const r = new CooldownRegistry()
    r.cool(identityId("p0", 0), NOW + 5000, NOW)
    r.cool(identityId("p0", 1), NOW + 800, NOW)
    r.cool(identityId("p1", 0), NOW + 2000, NOW)
    const wait = coolingWait(entries, undefined, r, NOW)
    expect(wait?.identity.id).toBe(identityId("p0", 1))
    expect(wait?.waitMs).toBe(800)
    expect(coolingWait(entries, new Set([identityId("p0", 1)]), r, NOW)?.waitMs).toBe(2000)
    expect(coolingWait(entries, new Set(entries.flatMap((e) => e.identities.map((i) => i.id))), r, NOW)).toBe(undefined)
    // With the registry itself: the cooling key is skipped until its time has passed.
    expect(nextIdentity(entries, new Set([identityId("p0", 1)]), r, NOW)).toBeUndefined()
    expect(nextIdentity(entries, new Set([identityId("p0", 1)]), r, NOW + 2500)?.id).toBe(identityId("p1", 0))
    expect(nextIdentity([entries[0]], new Set([identityId("p0", 1)]), r, NOW + 5000)?.id).toBe(identityId("p0", 0))
  })
})

describe("first-token watchdog", () => {
  it("is not armed at all when the option is off", () => {
    expect(armFirstToken(0, () => {})).toBeUndefined()
  })

  it("fires when no content came in time, and not when markContent came first", async () => {
    const fired: Array<string> = []
    const late = armFirstToken(20, () => fired.push("late"))
    const early = armFirstToken(20, () => fired.push("early"))
    early?.markContent()
    early?.markContent()
    expect(late?.armed).toBe(true)
    expect(early?.armed).toBe(false)
    await new Promise((r) => setTimeout(r, 60))
    expect(fired).toEqual(["late"])
    expect(late?.expired).toBe(true)
    expect(early?.expired).toBe(false)
    late?.markContent()
    expect(fired).toEqual(["late"])
  })
})

describe("the proxy's own 429 when every key is cooling", () => {
  it("has Retry-After in whole seconds (at least 1) and each provider type's error shape", () => {
    const o = coolingRefusal("openai", 1200)
    expect(o.status).toBe(429)
    expect(o.headers).toContainEqual(["retry-after", "2"])
    expect(o.headers).toContainEqual(["retry-after-ms", "1200"])
    expect(JSON.parse(o.body).error.code).toBe("rate_limit_exceeded")
    expect(coolingRefusal("openai", 0).headers).toContainEqual(["retry-after", "1"])
    const a = JSON.parse(coolingRefusal("anthropic", 500).body)
    expect([a.type, a.error.type]).toEqual(["error", "rate_limit_error"])
    const g = JSON.parse(coolingRefusal("gemini", 500).body)
    expect([g.error.code, g.error.status]).toEqual([429, "RESOURCE_EXHAUSTED"])
    expect(JSON.parse(coolingRefusal("forward", 500).body).error.type).toBe("rate_limit_exceeded")
  })
})

describe("config: retry and timeouts.first_token (SPEC §11)", () => {
  const PROVIDER = "providers: [{type: openai, host: h, endpoint: e}]"
  const load = (text: string) =>
    Effect.runPromise(Effect.either(parseConfig(`http_port: 0\n${text}\n${PROVIDER}`, "/c.yml", {})))
  const ok = async (text: string) => {
    const r = await load(text)
    if (r._tag === "Left") throw new Error(r.left.message)
    return r.right
  }
  const error = async (text: string) => {
    const r = await load(text)
    if (r._tag === "Right") throw new Error("expected an error")
    return `${r.left.field}: ${r.left.reason}`
  }

  it("has SPEC §11's defaults", async () => {
    const c = await ok("")
    expect(c.retry).toEqual({
      attempts: 2,
      onStatus: [429, 500, 502, 503, 504, 529],
      maxBodyBytes: 1_048_576,
      maxWaitMs: 0,
      maxCooldownMs: 60_000
    })
    expect(c.timeouts.firstTokenMs).toBe(0)
    expect(summarize(c)).toContain("retry: attempts 2 on 429,500,502,503,504,529, max_body_bytes 1048576")
    expect(summarize(c)).toContain("first_token off")
  })

  it("reads every field, first_token as a duration or off", async () => {
    const c = await ok(
      'retry: {attempts: 0, on_status: [503], max_body_bytes: 10, max_wait: "1.5s", max_cooldown: 5}\ntimeouts: {first_token: 2}'
    )
    expect(c.retry).toEqual({ attempts: 0, onStatus: [503], maxBodyBytes: 10, maxWaitMs: 1500, maxCooldownMs: 5000 })
    expect(c.timeouts.firstTokenMs).toBe(2000)
    expect(summarize(c)).toContain("first_token 2s")
    expect((await ok("timeouts: {first_token: off}")).timeouts.firstTokenMs).toBe(0)
    expect((await ok('timeouts: {first_token: "500ms"}')).timeouts.firstTokenMs).toBe(500)
  })

  it("names the YAML path of a wrong value", async () => {
    expect(await error("retry: {attempts: -1}")).toBe("retry.attempts: must be an integer from 0 to 10")
    expect(await error("retry: {on_status: [429, 99]}")).toBe("retry.on_status[1]: must be an integer from 100 to 599")
    expect(await error("retry: {max_wait: -1}")).toBe("retry.max_wait: must not be negative")
    expect(await error("retry: {atempts: 1}")).toMatch(/^retry.atempts: unknown field/)
    expect(await error("timeouts: {first_token: soon}")).toMatch(/^timeouts.first_token: must be a duration/)
  })
})
