// The value schemas the config is made of: each turns one YAML value into a typed value, or fails with a
// reason in plain words (`must be an integer of at least 1`) that issues.ts prefixes with the YAML path. A
// reason never quotes a value that may be a secret, so errors are safe to print. Structure (mappings,
// lists, unknown keys, defaults, key names) is Schema's; see fields.ts and schema.ts.
import { readFile } from "node:fs/promises"
import * as path from "node:path"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"

export type Env = Readonly<Record<string, string | undefined>>

/** What decoding needs besides the YAML: the environment for `${VAR}` and where relative files live. */
export class ConfigInput extends Context.Tag("openproxy/ConfigInput")<
  ConfigInput,
  { readonly env: Env; readonly baseDir: string }
>() {}

/** A checked value, or the reason it was refused; effectful when it needs the environment or a file. */
export type Checked<A, R = never> = Either.Either<A, string> | Effect.Effect<A, string, R>

export const ok: <A>(a: A) => Either.Either<A, string> = Either.right
export const no = (reason: string): Either.Either<never, string> => Either.left(reason)

/** A schema from a check of one YAML value; `name` identifies it in Schema's own output. */
export const value = <A, R = never>(name: string, check: (u: unknown) => Checked<A, R>): Schema.Schema<A, unknown, R> =>
  Schema.transformOrFail(
    Schema.Unknown,
    Schema.declare((_: unknown): _ is A => true, { identifier: name }),
    {
      strict: true,
      decode: (u, _, ast) => {
        const r = check(u)
        const fail = (reason: string) => new ParseResult.Type(ast, u, reason)
        return Either.isEither(r) ? Either.mapLeft(r, fail) : Effect.mapError(r, fail)
      },
      encode: ParseResult.succeed
    }
  )

/** Chains a further check onto a checked value (sync stays sync). */
export const andThen = <A, B, R1, R2>(r: Checked<A, R1>, f: (a: A) => Checked<B, R2>): Checked<B, R1 | R2> =>
  Either.isEither(r) ? (Either.isLeft(r) ? Either.left(r.left) : f(r.right)) : Effect.flatMap(r, f)

/** The kind of a YAML value, for "must be X (got Y)" — never the value itself. */
export const kind = (u: unknown): string => {
  if (u === null || u === undefined) return "nothing"
  if (Array.isArray(u)) return "a list"
  if (u instanceof Date) return "a date"
  if (typeof u === "object") return "a mapping"
  if (typeof u === "number") return Number.isNaN(u) ? "NaN" : "a number"
  return `a ${typeof u}`
}

export const checkString = (u: unknown): Checked<string> =>
  typeof u === "string" ? ok(u) : no(`must be a string (got ${kind(u)})`)

export const Str = value("string", checkString)

const TRUE_WORDS = new Set(["true", "yes", "on"])
const FALSE_WORDS = new Set(["false", "no", "off"])

/** `true`/`false`; the YAML 1.1 words (`yes`, `no`, `on`, `off`) that 2.x files may still use are accepted. */
export const Bool = value("boolean", (u) => {
  if (typeof u === "boolean") return ok(u)
  if (typeof u === "string") {
    const word = u.trim().toLowerCase()
    if (TRUE_WORDS.has(word)) return ok(true)
    if (FALSE_WORDS.has(word)) return ok(false)
  }
  return no(`must be true or false (got ${kind(u)})`)
})

export const checkInt = (u: unknown, min: number, max: number): Either.Either<number, string> => {
  if (typeof u !== "number" || !Number.isInteger(u)) return no(`must be an integer (got ${kind(u)})`)
  if (u < min || u > max) {
    return no(
      max === Number.MAX_SAFE_INTEGER
        ? `must be an integer of at least ${min}`
        : `must be an integer from ${min} to ${max}`
    )
  }
  return ok(u)
}

/** An integer in [min, max]. */
export const int = (min: number = Number.MIN_SAFE_INTEGER, max: number = Number.MAX_SAFE_INTEGER) =>
  value("integer", (u) => checkInt(u, min, max))

/** A TCP port; `allowZero` for listeners, where 0 asks the OS for an ephemeral port. */
export const port = (allowZero: boolean) => int(allowZero ? 0 : 1, 65535)

export const PositiveNumber = value("positive number", (u) =>
  typeof u === "number" && Number.isFinite(u) && u > 0 ? ok(u) : no("must be a finite number greater than 0")
)

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }
const DURATION = /^(\d+(?:\.\d+)?|\.\d+)\s*(ms|s|m|h)?$/
const DURATION_FORMAT = 'a number of seconds (like 30 or 0.5) or a string like "500ms", "30s", "5m"'

/**
 * A duration: seconds as a number (fractions allowed), or a string with a unit. Decodes to milliseconds.
 * `positive`: 0 is refused (intervals and time-outs); otherwise 0 is allowed (it means "off").
 */
export const duration = (positive: boolean) =>
  value("duration", (u) => {
    let ms: number
    if (typeof u === "number") {
      if (!Number.isFinite(u)) return no(`must be ${DURATION_FORMAT} (got ${kind(u)})`)
      if (u < 0) return no("must not be negative")
      ms = u * 1000
    } else if (typeof u === "string") {
      const m = DURATION.exec(u.trim())
      if (m === null) return no(`must be ${DURATION_FORMAT}`)
      ms = Number(m[1]) * UNIT_MS[m[2] ?? "s"]
    } else {
      return no(`must be ${DURATION_FORMAT} (got ${kind(u)})`)
    }
    if (positive && ms <= 0) return no("must be greater than 0")
    // Whole milliseconds, but a positive duration never rounds down to 0.
    return ok(ms > 0 ? Math.max(1, Math.round(ms)) : 0)
  })

/** One of a fixed set of words; the value is quoted since these fields never hold secrets. */
export const oneOf = <const A extends string>(options: ReadonlyArray<A>) =>
  value("one of", (u): Checked<A> => {
    const found = options.find((o) => o === u)
    if (found !== undefined) return ok(found)
    return no(`must be one of ${options.join(", ")} (got ${typeof u === "string" ? JSON.stringify(u) : kind(u)})`)
  })

const VAR = /\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g

/** Replaces every `${VAR}` with its value from the environment; an unset variable is an error naming it. */
export const substitute = (s: string): Checked<string, ConfigInput> =>
  Effect.flatMap(ConfigInput, ({ env }) => {
    for (const m of s.matchAll(VAR)) {
      if (env[m[1]] === undefined) return Effect.fail(`environment variable ${m[1]} is not set`)
    }
    return Effect.succeed(s.replace(VAR, (_, name: string) => env[name] ?? ""))
  })

/** A string that allows `${VAR}`. */
export const checkEnvString = (u: unknown): Checked<string, ConfigInput> => andThen(checkString(u), substitute)

// CR, LF and NUL would break a header line; other control characters have no place in a key either.
// biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting control characters is the point
const CONTROL = /[\u0000-\u001f\u007f]/

/** Checks a secret string (already substituted) and wraps it. The value never appears in a reason. */
export const checkSecret = (s: string): Checked<Redacted.Redacted<string>> => {
  if (s.trim() === "") return no("must not be empty")
  if (CONTROL.test(s)) return no("must not contain control characters (CR, LF, NUL, ...)")
  if (/[\u0100-\uffff]/.test(s)) return no("must contain only characters allowed in an HTTP header")
  // Surrounding blanks are never part of a key (HTTP trims header values), so they are dropped.
  return ok(Redacted.make(s.trim()))
}

/** A secret string (`auth_keys` entries): `${VAR}` allowed, non-empty, redacted. */
export const Secret = value("secret", (u) => andThen(checkEnvString(u), checkSecret))

/**
 * One value or a list of them, decoded to a list. `isOne` tells a single value (kept as the field's own
 * path in errors: `api_key`) from a list (items get their index: `api_key[1]`; not a list: "must be a list").
 */
export const oneOrMany = <A, R>(
  item: Schema.Schema<A, unknown, R>,
  options: { readonly isOne: (u: unknown) => boolean; readonly allowEmpty: boolean }
) => {
  const many = Schema.Array(item)
  return Schema.transformOrFail(Schema.Unknown, Schema.Array(Schema.typeSchema(item)), {
    strict: true,
    decode: (u, parseOptions, ast) => {
      if (options.isOne(u)) return Effect.map(ParseResult.decodeUnknown(item)(u, parseOptions), (a) => [a])
      if (Array.isArray(u) && u.length === 0 && !options.allowEmpty) {
        return ParseResult.fail(new ParseResult.Type(ast, u, "must not be an empty list"))
      }
      return ParseResult.decodeUnknown(many)(u, parseOptions)
    },
    encode: ParseResult.succeed
  })
}

/** A list of client keys (`auth_keys`); a single string is taken as a list of one. */
export const SecretList = oneOrMany(Secret, { isOne: (u) => typeof u === "string", allowEmpty: true })

/** A non-empty list (`must not be an empty list`). */
export const nonEmptyList = <A, I, R>(item: Schema.Schema<A, I, R>) =>
  Schema.Array(item).pipe(Schema.filter((items) => items.length > 0 || "must not be an empty list"))

/** A file path (`${VAR}` allowed), resolved against the config file's directory. */
export const checkFilePath = (u: unknown): Checked<string, ConfigInput> =>
  andThen(checkEnvString(u), (s) =>
    s.trim() === "" ? no("must not be empty") : Effect.map(ConfigInput, ({ baseDir }) => path.resolve(baseDir, s))
  )

export const FilePath = value("file path", checkFilePath)

/**
 * Reads a PEM file (asynchronously). `marker` is a word its `-----BEGIN` line must contain
 * (`CERTIFICATE`, `PRIVATE KEY`). Reasons name the path, never the contents.
 */
export const readPem = (file: string, marker: string): Checked<string> =>
  Effect.tryPromise({
    try: () => readFile(file, "utf8"),
    catch: (e) => {
      const code =
        typeof e === "object" && e !== null && "code" in e && typeof e.code === "string" ? ` (${e.code})` : ""
      return `cannot read ${file}${code}`
    }
  }).pipe(
    Effect.flatMap((text) => {
      if (!text.includes("-----BEGIN")) return Effect.fail(`${file} is not a PEM file (no "-----BEGIN" line)`)
      if (!new RegExp(`-----BEGIN [A-Z0-9 ]*${marker}-----`).test(text)) {
        return Effect.fail(`${file} has no PEM ${marker} block`)
      }
      return Effect.succeed(text)
    })
  )
