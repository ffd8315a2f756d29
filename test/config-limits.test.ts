// The limits config (SPEC §12): `auth_keys[].limits` (global and provider-level), `limits.defaults` for keys
// without their own, the `limits:` section's defaults, errors naming the YAML path, the Redis URL kept out of
// errors and of `check`'s summary, one name with two different limits refused.
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Redacted from "effect/Redacted"
import { describe, expect, it } from "vitest"
import { parseConfig, summarize } from "../src/config/load.js"

const FILE = "/etc/openproxy/config.yml"
const PROVIDER =
  "providers: [{type: openai, host: h, endpoint: e, auth_keys: [{name: p1, key: kp1, limits: {tokens_per_day: 9}}]}]"

const load = (text: string, env: Record<string, string> = {}) =>
  Effect.runPromise(Effect.either(parseConfig(text, FILE, env))).then(
    Either.mapLeft((e) => (e.field === "" ? e.reason : `${e.field}: ${e.reason}`))
  )
const value = async (text: string, env: Record<string, string> = {}) => {
  const r = await load(text, env)
  if (Either.isLeft(r)) throw new Error(r.left)
  return r.right
}
const fails = async (text: string, env: Record<string, string> = {}) => {
  const r = await load(text, env)
  if (Either.isRight(r)) throw new Error(`expected an error for:\n${text}`)
  return r.left
}

describe("limits config (SPEC §12)", () => {
  it("defaults: memory store, 50 ms, open, 4096 output tokens, no limits", async () => {
    const c = await value(`http_port: 0\nauth_keys: [a]\nproviders: [{type: openai, host: h, endpoint: e}]`)
    expect(c.limits).toEqual({ store: "memory", redisTimeoutMs: 50, onStoreError: "open", defaultOutputTokens: 4096 })
    expect(c.keyLimits.size).toBe(0)
  })

  it("a key's own limits, else limits.defaults (whole, not field by field); provider-level keys too", async () => {
    const c = await value(
      `http_port: 0
auth_keys:
  - {name: a, key: ka, limits: {requests_per_minute: 10, concurrent_requests: 2}}
  - {name: b, key: kb}
  - {name: c, key: kc, limits: {}}
limits: {defaults: {tokens_per_minute: 1000, tokens_per_month: 5}}
${PROVIDER}`
    )
    expect(Object.fromEntries(c.keyLimits)).toEqual({
      a: { requestsPerMinute: 10, concurrentRequests: 2 },
      b: { tokensPerMinute: 1000, tokensPerMonth: 5 },
      p1: { tokensPerDay: 9 }
    })
    // `limits: {}` is a key's own (empty) limits: unlimited, the defaults do not apply.
    expect(c.keyLimits.has("c")).toBe(false)
  })

  it("the same name in two places may carry its limits once, or the same ones; different ones are refused", async () => {
    const ok = await value(
      `http_port: 0
auth_keys: [{name: a, key: ka, limits: {requests_per_minute: 3}}]
providers: [{type: openai, host: h, endpoint: e, auth_keys: [{name: a, key: ka}]}]`
    )
    expect(ok.keyLimits.get("a")).toEqual({ requestsPerMinute: 3 })
    expect(
      await fails(`http_port: 0
auth_keys: [{name: a, key: ka, limits: {requests_per_minute: 3}}]
providers: [{type: openai, host: h, endpoint: e, auth_keys: [{name: a, key: ka, limits: {requests_per_minute: 4}}]}]`)
    ).toBe('providers[0].auth_keys[0].limits: differ from the limits of "a" at auth_keys[0]')
  })

  it("errors name the YAML path", async () => {
    const withKeys = (s: string) => `http_port: 0\nauth_keys: ${s}\n${PROVIDER}`
    expect(await fails(withKeys("[{name: a, key: k, limits: {requests_per_minute: 0}}]"))).toBe(
      "auth_keys[0].limits.requests_per_minute: must be an integer of at least 1"
    )
    expect(await fails(withKeys("[{name: a, key: k, limits: {tokens_per_hour: 5}}]"))).toMatch(
      /^auth_keys\[0\]\.limits\.tokens_per_hour: unknown field/
    )
    expect(await fails(withKeys("[a]\nlimits: {defaults: {concurrent_requests: 1.5}}"))).toBe(
      "limits.defaults.concurrent_requests: must be an integer (got a number)"
    )
    expect(await fails(withKeys("[a]\nlimits: {store: disk}"))).toBe(
      'limits.store: must be one of memory, redis (got "disk")'
    )
    expect(await fails(withKeys("[a]\nlimits: {on_store_error: maybe}"))).toBe(
      'limits.on_store_error: must be one of open, closed (got "maybe")'
    )
    expect(await fails(withKeys("[a]\nlimits: {store: redis}"))).toBe(
      "limits.redis_url: required when limits.store is redis"
    )
    expect(await fails(withKeys("[a]\nlimits: {redis_timeout: 0}"))).toBe(
      "limits.redis_timeout: must be greater than 0"
    )
  })

  it("redis_url: environment variables allowed, redacted, never in an error or in check's summary", async () => {
    const secret = "pw-TOPSECRET-9"
    const text = `http_port: 0
auth_keys: [{name: a, key: ka, limits: {requests_per_minute: 7}}]
limits: {store: redis, redis_url: "redis://user:\${PW}@10.0.0.5:6380/3", redis_timeout: 0.2, on_store_error: closed}
${PROVIDER}`
    const c = await value(text, { PW: secret })
    expect(Redacted.value(c.limits.redisUrl!)).toBe(`redis://user:${secret}@10.0.0.5:6380/3`)
    expect(c.limits).toMatchObject({ store: "redis", redisTimeoutMs: 200, onStoreError: "closed" })
    const summary = summarize(c)
    expect(summary).toContain(
      "key limits: store redis redis://10.0.0.5:6380/3, redis_timeout 0.2s, on_store_error closed"
    )
    expect(summary).toContain("  a: requests_per_minute=7")
    expect(summary).not.toContain(secret)
    expect(summary).not.toContain("user")
    expect(await fails(text, {})).toBe("limits.redis_url: environment variable PW is not set")
    const bad = await fails(text.replace(/redis:\/\/user:\S+?@10\.0\.0\.5:6380\/3/, `http://x:${secret}@h`), {})
    expect(bad).toBe("limits.redis_url: must start with redis:// or rediss://")
  })
})
