// Turns a Schema decoding failure into the one problem the config loader reports: its YAML path
// (`providers[3].api_keys[0].weight`) and a reason in plain words. Decoding collects every problem
// (`errors: "all"`); the one reported is the first in document order, as an operator reading the file top
// down expects, with missing required fields after the fields present in the same mapping.
import * as Option from "effect/Option"
import type * as ParseResult from "effect/ParseResult"
import * as AST from "effect/SchemaAST"
import { kind } from "./values.js"

export interface Problem {
  /** Keys and list indexes from the decoded value's root. */
  readonly path: ReadonlyArray<PropertyKey>
  readonly reason: string
  /** A required field that is absent or empty: it ranks after the fields present in its mapping. */
  readonly absent?: boolean
}

/** `providers[3].weight`; `base` is the path of the decoded value itself ("" for the file's top level). */
export const formatPath = (base: string, path: ReadonlyArray<PropertyKey>): string =>
  path.reduce<string>(
    (out, key) => (typeof key === "number" ? `${out}[${key}]` : out === "" ? String(key) : `${out}.${String(key)}`),
    base
  )

const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

/** Where a path sits in the document: per step, the index of the key in its mapping (absent: after all). */
const position = (root: unknown, { path, absent }: Problem): ReadonlyArray<number> => {
  const out: Array<number> = []
  let node = root
  for (const [i, key] of path.entries()) {
    if (absent && i === path.length - 1) {
      out.push(Number.POSITIVE_INFINITY)
      break
    }
    if (Array.isArray(node) && typeof key === "number") {
      out.push(key)
      node = node[key]
    } else if (isRecord(node) && typeof key === "string" && Object.hasOwn(node, key)) {
      out.push(Object.keys(node).indexOf(key))
      node = node[key]
    } else {
      out.push(Number.POSITIVE_INFINITY)
      node = undefined
    }
  }
  return out
}

const before = (a: ReadonlyArray<number>, b: ReadonlyArray<number>): number => {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i] - b[i]
  return a.length - b.length
}

/** The first problem in document order of a decoding failure of `root`. */
export const firstProblem = (root: unknown, issue: ParseResult.ParseIssue): Problem => {
  const all: Array<Problem> = []
  collect(issue, [], [], all)
  const ranked = all.map((p) => ({ p, at: position(root, p) }))
  ranked.sort((a, b) => before(a.at, b.at)) // stable: ties keep Schema's (field declaration) order
  return ranked[0]?.p ?? { path: [], reason: "is invalid" }
}

/** Leaf problems of an issue tree; `known` holds the keys of the innermost mapping, for suggestions. */
const collect = (
  issue: ParseResult.ParseIssue,
  path: ReadonlyArray<PropertyKey>,
  known: ReadonlyArray<string>,
  out: Array<Problem>
): void => {
  switch (issue._tag) {
    case "Pointer":
      collect(issue.issue, path.concat(issue.path), known, out)
      return
    case "Composite": {
      const keys = AST.isTypeLiteral(issue.ast) ? issue.ast.propertySignatures.map((ps) => String(ps.name)) : known
      for (const inner of Array.isArray(issue.issues) ? issue.issues : [issue.issues]) {
        // An optional field is `value | undefined`: that the value is not `undefined` is no news.
        if (AST.isUnion(issue.ast) && inner._tag === "Type" && AST.isUndefinedKeyword(inner.ast)) continue
        collect(inner, path, keys, out)
      }
      return
    }
    case "Refinement":
    case "Transformation":
      collect(issue.issue, path, known, out)
      return
    case "Unexpected":
      out.push({ path, reason: unknownField(String(path[path.length - 1]), known) })
      return
    case "Missing": {
      const hint = Option.getOrUndefined(AST.getMissingMessageAnnotation(issue.ast))?.()
      out.push({ path, reason: typeof hint === "string" ? hint : "required", absent: true })
      return
    }
    case "Type":
    case "Forbidden":
      // Only an empty YAML value reaches a schema as `undefined` (a required field's own check refuses it).
      out.push({
        path,
        reason: issue.message ?? structural(issue.ast, issue.actual),
        absent: issue.actual === undefined
      })
  }
}

/** Reasons for the structure Schema checks itself (our value schemas always give their own). */
const structural = (ast: AST.AST, actual: unknown): string => {
  if (AST.isTypeLiteral(ast)) return `must be a mapping (got ${kind(actual)})`
  if (AST.isTupleType(ast)) return `must be a list (got ${kind(actual)})`
  return "is invalid"
}

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
