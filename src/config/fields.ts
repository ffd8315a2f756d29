// Small validators the config loader is built from. Each checks one YAML value at a named path
// (`providers[3].weight`) and fails with `Invalid`: the path plus a reason in plain words. A reason
// never quotes the value it rejects when that value may be a secret, so errors are safe to print.
import { readFile } from "node:fs/promises"
import * as path from "node:path"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"

/** A validation failure before the file name is attached (load.ts turns it into a `ConfigError`). */
export class Invalid extends Data.TaggedError("Invalid")<{ readonly field: string; readonly reason: string }> {}

export const invalid = (field: string, reason: string): Effect.Effect<never, Invalid> =>
  Effect.fail(new Invalid({ field, reason }))

export type Env = Readonly<Record<string, string | undefined>>

/** What a parser needs besides the value: the environment for `${VAR}` and where relative files live. */
export interface Context {
  readonly env: Env
  readonly baseDir: string
}

export const isRecord = (u: unknown): u is Record<string, unknown> =>
  typeof u === "object" && u !== null && !Array.isArray(u)

export const join = (base: string, key: string): string => (base === "" ? key : `${base}.${key}`)

/** The kind of a YAML value, for "must be X (got Y)" — never the value itself. */
const kind = (u: unknown): string => {
  if (u === null || u === undefined) return "nothing"
  if (Array.isArray(u)) return "a list"
  if (u instanceof Date) return "a date"
  if (typeof u === "object") return "a mapping"
  if (typeof u === "number") return Number.isNaN(u) ? "NaN" : "a number"
  return `a ${typeof u}`
}

export const mapping = (field: string, u: unknown): Effect.Effect<Record<string, unknown>, Invalid> =>
  isRecord(u) && !(u instanceof Date) ? Effect.succeed(u) : invalid(field, `must be a mapping (got ${kind(u)})`)

export const list = (field: string, u: unknown): Effect.Effect<ReadonlyArray<unknown>, Invalid> =>
  Array.isArray(u) ? Effect.succeed(u) : invalid(field, `must be a list (got ${kind(u)})`)

export const string = (field: string, u: unknown): Effect.Effect<string, Invalid> =>
  typeof u === "string" ? Effect.succeed(u) : invalid(field, `must be a string (got ${kind(u)})`)

const TRUE_WORDS = new Set(["true", "yes", "on"])
const FALSE_WORDS = new Set(["false", "no", "off"])

/** `true`/`false`; the YAML 1.1 words (`yes`, `no`, `on`, `off`) that 2.x files may still use are accepted. */
export const boolean = (field: string, u: unknown): Effect.Effect<boolean, Invalid> => {
  if (typeof u === "boolean") return Effect.succeed(u)
  if (typeof u === "string") {
    const word = u.trim().toLowerCase()
    if (TRUE_WORDS.has(word)) return Effect.succeed(true)
    if (FALSE_WORDS.has(word)) return Effect.succeed(false)
  }
  return invalid(field, `must be true or false (got ${kind(u)})`)
}

export const integer = (
  field: string,
  u: unknown,
  min: number = Number.MIN_SAFE_INTEGER,
  max: number = Number.MAX_SAFE_INTEGER
): Effect.Effect<number, Invalid> => {
  if (typeof u !== "number" || !Number.isInteger(u)) return invalid(field, `must be an integer (got ${kind(u)})`)
  if (u < min || u > max) {
    if (max === Number.MAX_SAFE_INTEGER) return invalid(field, `must be an integer of at least ${min}`)
    return invalid(field, `must be an integer from ${min} to ${max}`)
  }
  return Effect.succeed(u)
}

/** A TCP port; `allowZero` for listeners, where 0 asks the OS for an ephemeral port. */
export const port = (field: string, u: unknown, allowZero: boolean): Effect.Effect<number, Invalid> =>
  integer(field, u, allowZero ? 0 : 1, 65535)

export const positiveNumber = (field: string, u: unknown): Effect.Effect<number, Invalid> =>
  typeof u === "number" && Number.isFinite(u) && u > 0
    ? Effect.succeed(u)
    : invalid(field, "must be a finite number greater than 0")

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }
const DURATION = /^(\d+(?:\.\d+)?|\.\d+)\s*(ms|s|m|h)?$/
const DURATION_FORMAT = 'a number of seconds (like 30 or 0.5) or a string like "500ms", "30s", "5m"'

/**
 * A duration: seconds as a number (fractions allowed), or a string with a unit. Returns milliseconds.
 * `positive`: 0 is refused (intervals and time-outs); otherwise 0 is allowed (it means "off").
 */
export const duration = (field: string, u: unknown, positive: boolean): Effect.Effect<number, Invalid> => {
  let ms: number
  if (typeof u === "number") {
    if (!Number.isFinite(u)) return invalid(field, `must be ${DURATION_FORMAT} (got ${kind(u)})`)
    if (u < 0) return invalid(field, "must not be negative")
    ms = u * 1000
  } else if (typeof u === "string") {
    const m = DURATION.exec(u.trim())
    if (m === null) return invalid(field, `must be ${DURATION_FORMAT}`)
    ms = Number(m[1]) * UNIT_MS[m[2] ?? "s"]
  } else {
    return invalid(field, `must be ${DURATION_FORMAT} (got ${kind(u)})`)
  }
  if (positive && ms <= 0) return invalid(field, "must be greater than 0")
  // Whole milliseconds, but a positive duration never rounds down to 0.
  return Effect.succeed(ms > 0 ? Math.max(1, Math.round(ms)) : 0)
}

/** One of a fixed set of words; the value is quoted since these fields never hold secrets. */
export const oneOf = <const A extends string>(
  field: string,
  u: unknown,
  options: ReadonlyArray<A>
): Effect.Effect<A, Invalid> => {
  const found = options.find((o) => o === u)
  if (found !== undefined) return Effect.succeed(found)
  const got = typeof u === "string" ? JSON.stringify(u) : kind(u)
  return invalid(field, `must be one of ${options.join(", ")} (got ${got})`)
}

const VAR = /\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g

/** Replaces every `${VAR}` with its value from the environment; an unset variable is an error naming it. */
export const substitute = (field: string, s: string, env: Env): Effect.Effect<string, Invalid> => {
  for (const m of s.matchAll(VAR)) {
    if (env[m[1]] === undefined) return invalid(field, `environment variable ${m[1]} is not set`)
  }
  return Effect.succeed(s.replace(VAR, (_, name: string) => env[name] ?? ""))
}

/** A string field that allows `${VAR}`. */
export const envString = (field: string, u: unknown, env: Env): Effect.Effect<string, Invalid> =>
  Effect.flatMap(string(field, u), (s) => substitute(field, s, env))

// CR, LF and NUL would break a header line; other control characters have no place in a key either.
// biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting control characters is the point
const CONTROL = /[\u0000-\u001f\u007f]/

/** Checks a secret string (already substituted) and wraps it. The value never appears in a reason. */
export const checkSecret = (field: string, s: string): Effect.Effect<Redacted.Redacted<string>, Invalid> => {
  if (s.trim() === "") return invalid(field, "must not be empty")
  if (CONTROL.test(s)) return invalid(field, "must not contain control characters (CR, LF, NUL, ...)")
  if (/[\u0100-\uffff]/.test(s)) return invalid(field, "must contain only characters allowed in an HTTP header")
  // Surrounding blanks are never part of a key (HTTP trims header values), so they are dropped.
  return Effect.succeed(Redacted.make(s.trim()))
}

/** A secret string field (`auth_keys` entries, `api_key`): `${VAR}` allowed, non-empty, redacted. */
export const secret = (field: string, u: unknown, env: Env): Effect.Effect<Redacted.Redacted<string>, Invalid> =>
  Effect.flatMap(envString(field, u, env), (s) => checkSecret(field, s))

/** A list of client keys (`auth_keys`); a single string is taken as a list of one. */
export const secretList = (
  field: string,
  u: unknown,
  env: Env
): Effect.Effect<ReadonlyArray<Redacted.Redacted<string>>, Invalid> =>
  typeof u === "string"
    ? Effect.map(secret(field, u, env), (k) => [k])
    : Effect.flatMap(list(field, u), (items) => Effect.forEach(items, (item, i) => secret(`${field}[${i}]`, item, env)))

/** A file path (`${VAR}` allowed), resolved against the config file's directory. */
export const filePath = (field: string, u: unknown, ctx: Context): Effect.Effect<string, Invalid> =>
  Effect.flatMap(envString(field, u, ctx.env), (s) =>
    s.trim() === "" ? invalid(field, "must not be empty") : Effect.succeed(path.resolve(ctx.baseDir, s))
  )

/**
 * Reads a PEM file (asynchronously). `marker` is a word its `-----BEGIN` line must contain
 * (`CERTIFICATE`, `PRIVATE KEY`). Reasons name the path, never the contents.
 */
export const readPem = (field: string, file: string, marker: string): Effect.Effect<string, Invalid> =>
  Effect.tryPromise({
    try: () => readFile(file, "utf8"),
    catch: (e) => {
      const code = isRecord(e) && typeof e.code === "string" ? ` (${e.code})` : ""
      return new Invalid({ field, reason: `cannot read ${file}${code}` })
    }
  }).pipe(
    Effect.flatMap((text) => {
      if (!text.includes("-----BEGIN")) return invalid(field, `${file} is not a PEM file (no "-----BEGIN" line)`)
      if (!new RegExp(`-----BEGIN [A-Z0-9 ]*${marker}-----`).test(text)) {
        return invalid(field, `${file} has no PEM ${marker} block`)
      }
      return Effect.succeed(text)
    })
  )

type Parser = (value: unknown, field: string) => Effect.Effect<unknown, Invalid>
type Parsed<P extends Record<string, Parser>> = { -readonly [K in keyof P]?: Effect.Effect.Success<ReturnType<P[K]>> }

/**
 * Parses a mapping's entries in document order with one parser per known key; an unknown key is an
 * error (unless `ignore` says otherwise) and an empty value (`key:` with nothing) counts as absent.
 */
export const fields = <P extends Record<string, Parser>>(
  obj: Record<string, unknown>,
  base: string,
  parsers: P,
  ignore: (key: string) => boolean = () => false
): Effect.Effect<Parsed<P>, Invalid> =>
  Effect.gen(function* () {
    const out: Record<string, unknown> = {}
    for (const [key, value] of Object.entries(obj)) {
      const field = join(base, key)
      if (!Object.hasOwn(parsers, key)) {
        if (ignore(key)) continue
        return yield* invalid(field, unknownField(key, Object.keys(parsers)))
      }
      if (value === null || value === undefined) continue
      out[key] = yield* parsers[key](value, field)
    }
    return out as Parsed<P>
  })

const unknownField = (key: string, known: ReadonlyArray<string>): string => {
  const close = known.find((k) => editDistance(k, key.toLowerCase()) <= 2)
  return close === undefined ? "unknown field" : `unknown field (did you mean ${close}?)`
}

const editDistance = (a: string, b: string): number => {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const cur = [i]
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1))
    }
    prev = cur
  }
  return prev[b.length]
}
