// Named client keys (SPEC §10): `auth_keys` entries as strings (named key-<first 8 hex of SHA-256>) or
// {name, key}, globally and per provider; one name per key over the whole file, errors naming the YAML path; the
// router reports the accepted key's name (what metrics and the access log show), never the key.
import { createHash } from "node:crypto"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import { parseConfig } from "../src/config/load.js"
import { Router } from "../src/domain/router.js"

const load = (text: string, env: Record<string, string> = {}) =>
  Effect.runPromise(Effect.either(parseConfig(text, "/c.yml", env))).then(
    Either.mapLeft((e) => `${e.field}: ${e.reason}`)
  )
const ok = async (text: string, env?: Record<string, string>) => {
  const r = await load(text, env)
  if (Either.isLeft(r)) throw new Error(r.left)
  return r.right
}
const fails = async (text: string) => {
  const r = await load(text)
  if (Either.isRight(r)) throw new Error("expected an error")
  return r.left
}
const hashName = (key: string) => `key-${createHash("sha256").update(key).digest("hex").slice(0, 8)}`

const withKeys = (global: string, provider = "") =>
  `http_port: 0\nauth_keys: ${global}\nproviders:\n  - {type: openai, host: a.test, endpoint: e${provider}}\n  - {type: openai, host: b.test, endpoint: e}`

describe("named client keys: config", () => {
  it("names a string key by its hash and a mapping by its name", async () => {
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a ${VAR} in the YAML text
    const c = await ok(withKeys('["sk-plain", {name: team-a, key: "${TEAM_A}"}]'), { TEAM_A: "sk-team-a" })
    expect(c.clientKeys.map((k) => k.name)).toEqual([hashName("sk-plain"), "team-a"])
    expect(hashName("sk-plain")).toMatch(/^key-[0-9a-f]{8}$/)
    // The global list keeps its 2.x shape: the keys themselves, redacted.
    expect(c.authKeys.length).toBe(2)
    expect(JSON.stringify(c)).not.toContain("sk-team-a")
    expect(JSON.stringify(c)).not.toContain("sk-plain")
  })

  it("accepts provider-level entries of both forms and the same key under the same name twice", async () => {
    const c = await ok(withKeys("[{name: team-a, key: k1}]", ", auth_keys: [{name: team-a, key: k1}, k2, k2]"))
    expect(c.clientKeys.map((k) => k.name)).toEqual(["team-a", hashName("k2")])
    expect(c.providers[0].authKeys.length).toBe(3)
  })

  it("refuses a name for two keys, a key under two names, and bad entries, naming the field", async () => {
    expect(await fails(withKeys("[{name: a, key: k1}, {name: a, key: k2}]"))).toBe(
      'auth_keys[1].name: "a" already names another key (auth_keys[0])'
    )
    expect(await fails(withKeys("[{name: a, key: k1}]", ", auth_keys: [{name: b, key: k1}]"))).toBe(
      'providers[0].auth_keys[0].key: is the same key as auth_keys[0], named "a" there'
    )
    expect(await fails(withKeys("[{name: a, key: k1}]", ", auth_keys: [k1]"))).toBe(
      'providers[0].auth_keys[0]: is the same key as auth_keys[0], named "a" there'
    )
    expect(await fails(withKeys(`[{name: "${hashName("k1")}", key: k2}, k1]`))).toBe(
      `auth_keys[1]: "${hashName("k1")}" already names another key (auth_keys[0])`
    )
    expect(await fails(withKeys('[{name: "two words", key: k}]'))).toBe(
      "auth_keys[0].name: must be 1 to 64 letters, digits or . _ : @ / - (starting with a letter or a digit)"
    )
    expect(await fails(withKeys("[{key: k}]"))).toBe(
      "auth_keys[0].name: required (the name metrics and logs show for this key)"
    )
    expect(await fails(withKeys("[{name: a}]"))).toBe("auth_keys[0].key: required (the client key)")
    expect(await fails(withKeys("[{name: a, key: k, limit: 1}]"))).toBe(
      "auth_keys[0].limit: unknown field (did you mean limits?)"
    )
    expect(await fails(withKeys("[7]"))).toBe("auth_keys[0]: must be a string or a mapping {name, key} (got a number)")
    expect(await fails(withKeys("[{name: a, key: ''}]"))).toBe("auth_keys[0].key: must not be empty")
  })

  it("never puts a key in an error", async () => {
    for (const text of [
      withKeys("[{name: a, key: sk-TOPSECRET}, {name: a, key: sk-TOPSECRET2}]"),
      withKeys("[{name: a, key: sk-TOPSECRET}]", ", auth_keys: [{name: b, key: sk-TOPSECRET}]"),
      withKeys("[{name: 'bad name', key: sk-TOPSECRET}]")
    ]) {
      expect(await fails(text)).not.toContain("TOPSECRET")
    }
  })
})

describe("named client keys: the router reports the name", () => {
  const route = (router: Router, host: string, key: string | undefined) => {
    const r = router.route(host, 80, "/v1/x", () => key)
    return r._tag === "Ok" ? { ok: r.identity.provider.index, keyName: r.keyName } : r._tag
  }

  it("names the accepted key, global or provider-level, for one or several candidates", async () => {
    const c = await ok(
      `http_port: 0
auth_keys: [{name: team-a, key: ka}, kplain]
providers:
  - {type: openai, host: a.test, endpoint: e, auth_keys: [{name: only-a, key: kb}]}
  - {type: openai, host: m.test, endpoint: e1}
  - {type: openai, host: m.test, endpoint: e2}
  - {type: forward, host: f.test, endpoint: e}`
    )
    const router = new Router(c)
    expect(route(router, "a.test", "ka")).toEqual({ ok: 0, keyName: "team-a" })
    expect(route(router, "a.test", "kb")).toEqual({ ok: 0, keyName: "only-a" })
    expect(route(router, "a.test", "kplain")).toEqual({ ok: 0, keyName: hashName("kplain") })
    expect(route(router, "a.test", "nope")).toBe("Unauthorized")
    expect(route(router, "b.test", "kb")).toBe("NotFound")
    expect(route(router, "m.test", "kb")).toBe("Unauthorized")
    const several = route(router, "m.test", "ka")
    expect(typeof several === "object" && several.keyName).toBe("team-a")
    // forward checks no key: no name.
    expect(route(router, "f.test", "ka")).toEqual({ ok: 3, keyName: undefined })
  })

  it("reports no name when no client auth is configured", async () => {
    const c = await ok("http_port: 0\nproviders: [{type: openai, host: a.test, endpoint: e}]")
    expect(route(new Router(c), "a.test", "whatever")).toEqual({ ok: 0, keyName: undefined })
  })
})

describe("check's summary", () => {
  it("shows key names and the observability settings, never a key", async () => {
    const { summarize } = await import("../src/config/load.js")
    const s = summarize(
      await ok(
        withKeys("[{name: team-a, key: sk-TOPSECRET}, sk-TOPSECRET-2]").replace(
          "http_port: 0",
          "http_port: 0\nadmin: {port: 9091, auth_key: adm-TOPSECRET}\naccess_log: false"
        )
      )
    )
    expect(s).toContain(`client auth: 2 global key(s); names: team-a, ${hashName("sk-TOPSECRET-2")}`)
    expect(s).toContain(
      "observability: admin 127.0.0.1:9091 (auth_key set), access_log off, inject_openai_stream_usage on"
    )
    expect(s).not.toContain("TOPSECRET")
  })
})
