// Named client keys (SPEC §10): an `auth_keys` entry, global or per provider, is a string or `{name, key}`. A
// string is named `key-` + the first 8 hex digits of its SHA-256, so metrics and logs can tell keys apart without
// ever showing one. The name is what the router reports for a request; never the key. The mapping form may carry
// the key's `limits` (§12).
import { createHash } from "node:crypto"
import * as Effect from "effect/Effect"
import * as ParseResult from "effect/ParseResult"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import type { LimitSpec } from "../limits/types.js"
import { optional, required } from "./fields.js"
import { LimitFields } from "./limits.js"
import { kind, no, ok, oneOrMany, Secret, value } from "./values.js"

/** A client key and the name metrics, logs and the admin API show for it. */
export interface ClientKey {
  readonly name: string
  readonly key: Redacted.Redacted<string>
  /** `limits` of the mapping form (SPEC §12); absent: `limits.defaults` apply. */
  readonly limits?: LimitSpec | undefined
}

/** The name of a key written as a plain string: `key-` + the first 8 hex digits of its SHA-256. */
export const hashName = (key: Redacted.Redacted<string>): string =>
  `key-${createHash("sha256").update(Redacted.value(key)).digest("hex").slice(0, 8)}`

// Names go into metric labels and log lines: a short token, nothing to quote or escape.
const NAME = /^[A-Za-z0-9][A-Za-z0-9._:@/-]{0,63}$/

const Name = value("key name", (u) =>
  typeof u === "string" && NAME.test(u)
    ? ok(u)
    : no("must be 1 to 64 letters, digits or . _ : @ / - (starting with a letter or a digit)")
)

/** The mapping form `{name, key}`. */
const NamedKey = Schema.Struct({
  name: required("name", Name, "required (the name metrics and logs show for this key)", "Shown for this key."),
  key: required("key", Secret, "required (the client key)", "The client key (environment variables allowed)."),
  limits: optional("limits", LimitFields, "This key's limits (§12); absent: limits.defaults.")
})

type SecretContext = Schema.Schema.Context<typeof Secret>

/** One entry: a string (named by its hash) or `{name, key}`; anything else says it must be one of those. */
const Entry: Schema.Schema<ClientKey, unknown, SecretContext> = Schema.transformOrFail(
  Schema.Unknown,
  Schema.typeSchema(NamedKey),
  {
    strict: true,
    decode: (u, options, ast) => {
      if (typeof u === "string")
        return Effect.map(ParseResult.decodeUnknown(Secret)(u, options), (key) => ({ name: hashName(key), key }))
      if (typeof u === "object" && u !== null && !Array.isArray(u))
        return ParseResult.decodeUnknown(NamedKey)(u, options)
      return ParseResult.fail(
        new ParseResult.Type(ast, u, `must be a string or a mapping {name, key} (got ${kind(u)})`)
      )
    },
    encode: ParseResult.succeed
  }
)

/** `auth_keys`: a list of entries; a single string is taken as a list of one. */
export const ClientKeyList = oneOrMany(Entry, { isOne: (u) => typeof u === "string", allowEmpty: true })

/** Where a client key was written (`auth_keys[1]`, `providers[2].auth_keys[0]`) and what it says. */
export interface KeyAt {
  readonly path: string
  readonly key: ClientKey
}

/** The field to blame: the entry itself when written as a string (its name is its hash). */
const fieldOf = (at: KeyAt, field: "name" | "key"): string =>
  at.key.name === hashName(at.key.key) ? at.path : `${at.path}.${field}`

/**
 * One name per key and one key per name, over the whole file (a name is what metrics add up by): the same key
 * under the same name in several places is fine; a name given to two keys, or a key under two names, is the
 * error returned (its YAML path and reason). Keys are compared by value here, at load time only.
 */
export const checkNames = (
  all: ReadonlyArray<KeyAt>
): { readonly field: string; readonly reason: string } | undefined => {
  const byName = new Map<string, KeyAt>()
  const byKey = new Map<string, KeyAt>()
  for (const at of all) {
    const secret = Redacted.value(at.key.key)
    const named = byName.get(at.key.name)
    if (named !== undefined && Redacted.value(named.key.key) !== secret) {
      return { field: fieldOf(at, "name"), reason: `"${at.key.name}" already names another key (${named.path})` }
    }
    const keyed = byKey.get(secret)
    if (keyed !== undefined && keyed.key.name !== at.key.name) {
      return { field: fieldOf(at, "key"), reason: `is the same key as ${keyed.path}, named "${keyed.key.name}" there` }
    }
    byName.set(at.key.name, at)
    byKey.set(secret, at)
  }
  return undefined
}

/** Every distinct key once, in file order (global keys first). */
export const distinctKeys = (all: ReadonlyArray<KeyAt>): ReadonlyArray<ClientKey> => {
  const seen = new Set<string>()
  const out: Array<ClientKey> = []
  for (const { key } of all) {
    if (seen.has(key.name)) continue
    seen.add(key.name)
    out.push(key)
  }
  return out
}
