// The limits config (SPEC §12) as Schema: the five per-key limits (`auth_keys[].limits`, `limits.defaults`) and
// the `limits:` section (store, Redis URL and time-out, store-failure policy, the output tokens reserved when a
// request names no cap). Decoded values are what src/limits takes (`LimitSpec`, `LimitsSettings`).
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import type { LimitSpec } from "../limits/types.js"
import type { KeyAt } from "./clientKeys.js"
import { optional, withDefault } from "./fields.js"
import { andThen, checkEnvString, duration, int, no, ok, oneOf, value } from "./values.js"

/** One key's limits; an absent field is unlimited. */
export const LimitFields = Schema.Struct({
  requestsPerMinute: optional("requests_per_minute", int(1), "Requests in any 60 s (sliding window)."),
  tokensPerMinute: optional("tokens_per_minute", int(1), "Input + output tokens in any 60 s (sliding window)."),
  concurrentRequests: optional("concurrent_requests", int(1), "Requests (streams) in flight at once."),
  tokensPerDay: optional("tokens_per_day", int(1), "Tokens per UTC calendar day."),
  tokensPerMonth: optional("tokens_per_month", int(1), "Tokens per UTC calendar month.")
})

/** `redis://[user:pass@]host:port/db` or `rediss://`, `${VAR}` allowed; redacted (it may hold a password). */
const RedisUrl = value("redis url", (u) =>
  andThen(checkEnvString(u), (s) => {
    let url: URL
    try {
      url = new URL(s.trim())
    } catch {
      return no("must be a URL like redis://host:6379/0 or rediss://host:6380")
    }
    if (url.protocol !== "redis:" && url.protocol !== "rediss:") return no("must start with redis:// or rediss://")
    if (url.hostname === "") return no("must name a host")
    return ok(Redacted.make(s.trim()))
  })
)

/** `limits:` at the top level. */
export const Limits = Schema.Struct({
  defaults: optional("defaults", LimitFields, "The limits of every client key without its own `limits`."),
  store: withDefault(
    "store",
    oneOf(["memory", "redis"]),
    "memory",
    "memory (one host, shared by its workers) or redis."
  ),
  redisUrl: optional("redis_url", RedisUrl, "Required with store redis; environment variables allowed; never printed."),
  redisTimeoutMs: withDefault("redis_timeout", duration(true), 50, "Per Redis call; slower counts as a store error."),
  onStoreError: withDefault(
    "on_store_error",
    oneOf(["open", "closed"]),
    "open",
    "While the store fails: open admits unmetered, closed answers 503."
  ),
  defaultOutputTokens: withDefault(
    "default_output_tokens",
    int(0),
    4096,
    "Output tokens a token limit reserves for a request that names no max_tokens."
  )
})

export type LimitsConfig = Schema.Schema.Type<typeof Limits>

/** Every default of `Limits` (`section` cannot decode `{}` here: the Redis URL reads the environment). */
const LIMITS_DEFAULT: LimitsConfig = {
  store: "memory",
  redisTimeoutMs: 50,
  onStoreError: "open",
  defaultOutputTokens: 4096
}

/** `limits:` as a section: absent, every field takes its default. */
export const limitsSection = (doc: string) =>
  Schema.optionalWith(Limits.annotations({ description: doc }), { default: () => LIMITS_DEFAULT }).pipe(
    Schema.fromKey("limits")
  )

/** The limits a key name gets: its own, else the defaults; undefined when none applies (unlimited). */
export const effectiveLimits = (own: LimitSpec | undefined, defaults: LimitSpec | undefined): LimitSpec | undefined => {
  const spec = own ?? defaults
  if (spec === undefined) return undefined
  const set = Object.values(spec).some((v) => v !== undefined)
  return set ? spec : undefined
}

const sameSpec = (a: LimitSpec, b: LimitSpec): boolean =>
  a.requestsPerMinute === b.requestsPerMinute &&
  a.tokensPerMinute === b.tokensPerMinute &&
  a.concurrentRequests === b.concurrentRequests &&
  a.tokensPerDay === b.tokensPerDay &&
  a.tokensPerMonth === b.tokensPerMonth

/**
 * Each key name's limits (its own, else `limits.defaults`), only for names that have some: the request path looks a
 * name up once per request and a missing name costs nothing more. A name written in several places may carry its
 * limits in one of them, or the same limits in each; different limits for one name are the error returned.
 */
export const keyLimitsOf = (
  all: ReadonlyArray<KeyAt>,
  defaults: LimitSpec | undefined
): ReadonlyMap<string, LimitSpec> | { readonly field: string; readonly reason: string } => {
  const own = new Map<string, KeyAt>()
  for (const at of all) {
    const limits = at.key.limits
    if (limits === undefined) continue
    const seen = own.get(at.key.name)
    if (seen !== undefined && !sameSpec(seen.key.limits!, limits)) {
      return { field: `${at.path}.limits`, reason: `differ from the limits of "${at.key.name}" at ${seen.path}` }
    }
    own.set(at.key.name, at)
  }
  const out = new Map<string, LimitSpec>()
  for (const at of all) {
    const spec = effectiveLimits(own.get(at.key.name)?.key.limits, defaults)
    if (spec !== undefined) out.set(at.key.name, spec)
  }
  return out
}
