// The proxy's own failures (SPEC §9) as tagged errors, and the one place that maps them to a status and an exact
// short body. The request path refuses with a reason (`ErrorKind`: a string, no allocation on a refusal) or, where
// an upstream failed, an `UpstreamFailed` that keeps the cause for the log; `responseOf` turns either into what
// the client receives. Bodies never carry internal detail: that goes to the log with the request id.
import * as Data from "effect/Data"

/** Every answer the proxy produces itself: its status and exact body (tests and OpenProxy scripts compare them). */
const Responses = {
  noProvider: [404, "No provider found"],
  unauthorized: [401, "authentication failed"],
  noHealthy: [503, "No healthy provider"],
  upstreamAuth: [502, "upstream authentication failed"],
  badGateway: [502, "upstream connection failed"],
  gatewayTimeout: [504, "upstream timed out"],
  missingHost: [400, "missing Host header"],
  multipleHost: [400, "multiple Host headers"],
  badRequest: [400, "bad request"],
  badFraming: [400, "conflicting Content-Length or Transfer-Encoding"],
  unsupportedEncoding: [501, "unsupported Transfer-Encoding"],
  tooLarge: [413, "request body too large"],
  headerTooLarge: [431, "request header fields too large"],
  connectDisabled: [403, "CONNECT tunnel not enabled"],
  /** Sent with `connectPortMismatch(N, M)` as the body: `CONNECT port N does not match provider port M`. */
  connectPortMismatch: [400, "CONNECT port does not match provider port"],
  connectNoPort: [400, "CONNECT target has no port"],
  methodNotAllowed: [405, "method not allowed"],
  /** A client key over one of its limits (SPEC §12); HTTP answers it in the provider type's JSON shape instead. */
  keyRateLimited: [429, "rate limit exceeded"],
  /** The limits store failed and `limits.on_store_error` is `closed` (SPEC §12). */
  limitsUnavailable: [503, "limits store unavailable"],
  /** Every key of the route cooling down (SPEC §11): sent as `coolingRefusal` (provider-shaped, Retry-After). */
  coolingDown: [429, "every upstream key of this route is rate limited"]
} as const satisfies Record<string, readonly [number, string]>

/** Why the proxy answered itself: the reason of a refusal or of an upstream failure. */
export type ErrorKind = keyof typeof Responses

/** A request the proxy refuses before (or instead of) an upstream call. `detail` replaces the body when set. */
export class Refused extends Data.TaggedError("Refused")<{ readonly reason: ErrorKind; readonly detail?: string }> {}

/**
 * An upstream that failed before a response could be relayed: `reason` is what the client is told (502/504),
 * `code` the error code for the log, `connectFailure` whether the upstream could not be reached at all (counted
 * against its health; the request may go to another provider), `cause` the original error.
 */
export class UpstreamFailed extends Data.TaggedError("UpstreamFailed")<{
  readonly reason: "badGateway" | "gatewayTimeout"
  readonly code: string
  readonly connectFailure: boolean
  readonly cause: unknown
}> {}

export type ProxyError = Refused | UpstreamFailed

/** The status of a reason. */
export const statusOf = (kind: ErrorKind): number => Responses[kind][0]

/** The one mapping from a failure to what the client receives (SPEC §9). */
export const responseOf = (e: ErrorKind | ProxyError): { readonly status: number; readonly body: string } => {
  if (typeof e === "string") return { status: Responses[e][0], body: Responses[e][1] }
  switch (e._tag) {
    case "Refused":
      return { status: Responses[e.reason][0], body: e.detail ?? Responses[e.reason][1] }
    case "UpstreamFailed":
      return { status: Responses[e.reason][0], body: Responses[e.reason][1] }
  }
}

/** The reason an error is answered with. */
export const reasonOf = (e: ErrorKind | ProxyError): ErrorKind => (typeof e === "string" ? e : e.reason)

/** The body of a CONNECT port mismatch, as OpenProxy words it (its scripts compare the text). */
export const connectPortMismatch = (requested: number, provider: number): string =>
  `CONNECT port ${requested} does not match provider port ${provider}`

interface CodedError {
  readonly code?: unknown
  readonly cause?: unknown
}

const codeOf = (err: unknown): string => {
  const e = err as CodedError | null
  if (e === null || typeof e !== "object") return ""
  if (typeof e.code === "string") return e.code
  return codeOf(e.cause)
}

const failed = (reason: UpstreamFailed["reason"], connectFailure: boolean, code: string, cause: unknown) =>
  new UpstreamFailed({ reason, connectFailure, code, cause })

/** How an upstream failure maps to a status, and whether it means the upstream could not be reached. */
export const classifyUpstreamError = (err: unknown): UpstreamFailed => {
  const code = codeOf(err)
  switch (code) {
    case "UND_ERR_CONNECT_TIMEOUT":
      return failed("gatewayTimeout", true, code, err)
    case "UND_ERR_HEADERS_TIMEOUT":
    case "UND_ERR_BODY_TIMEOUT":
      return failed("gatewayTimeout", false, code, err)
    case "ECONNREFUSED":
    case "ENOTFOUND":
    case "EAI_AGAIN":
    case "EHOSTUNREACH":
    case "ENETUNREACH":
    case "EADDRNOTAVAIL":
      return failed("badGateway", true, code, err)
    default:
      if (
        code.startsWith("ERR_TLS") ||
        code.startsWith("ERR_SSL") ||
        code.includes("CERT") ||
        code === "DEPTH_ZERO_SELF_SIGNED_CERT"
      )
        return failed("badGateway", true, code, err)
      return failed("badGateway", false, code, err)
  }
}

/** Socket-level failures on a connection that may have been a stale pooled one: safe to retry on a fresh one. */
export const isStaleConnectionError = (err: unknown): boolean => {
  const code = codeOf(err)
  return code === "UND_ERR_SOCKET" || code === "ECONNRESET" || code === "EPIPE"
}
