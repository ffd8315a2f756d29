// How a config field is declared: its YAML name (OpenProxy 2.x spelling), its value schema, its default and
// what it is for, in one place. The snapshot field name is the key of the `Schema.Struct` it sits in, so
// `maxConnections: withDefault("max_connections", int(1), 10_000, "...")` is the whole definition. An
// empty YAML value (`key:` with nothing) counts as absent: load.ts turns it into `undefined` before decoding
// (the key stays, so an unknown key is still refused even when empty).
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"

/** A field that may be absent, with the value it then takes. */
export const withDefault = <A, I, R>(key: string, schema: Schema.Schema<A, I, R>, value: A, doc: string) =>
  Schema.optionalWith(schema.annotations({ description: doc, default: value }), { default: () => value }).pipe(
    Schema.fromKey(key)
  )

/** A field that may be absent and then stays `undefined` (`doc` says what that means). */
export const optional = <A, I, R>(key: string, schema: Schema.Schema<A, I, R>, doc: string) =>
  Schema.optional(schema.annotations({ description: doc })).pipe(Schema.fromKey(key))

/** A field that must be present; `hint` is the reason given when it is not (`required (name[:port])`). */
export const required = <A, I, R>(key: string, schema: Schema.Schema<A, I, R>, hint: string, doc: string) =>
  Schema.propertySignature(
    // Present but empty (`type:`): the same reason as absent.
    Schema.transformOrFail(Schema.Unknown, schema.annotations({ description: doc }), {
      strict: false,
      decode: (u, _, ast) =>
        u === undefined ? ParseResult.fail(new ParseResult.Type(ast, u, hint)) : ParseResult.succeed(u),
      encode: ParseResult.succeed
    })
  )
    .annotations({ missingMessage: () => hint })
    .pipe(Schema.fromKey(key))

/** A mapping of fields that may be absent as a whole: then every field takes its default. */
export const section = <A, I>(key: string, schema: Schema.Schema<A, I>, doc: string) =>
  Schema.optionalWith(schema.annotations({ description: doc }), {
    default: () => Schema.decodeUnknownSync(schema)({})
  }).pipe(Schema.fromKey(key))
