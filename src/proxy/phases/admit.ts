// Phase 3, admit (ARCHITECTURE "The request as phases", SPEC §12): the accepted client key's limits reserve before
// any upstream call. It runs after select (the key's name and the provider type, whose error shape a refusal takes,
// are known then) and, for HTTP, after a small body was gathered (its `max_tokens` sizes the token reservation; a
// body too large to gather reserves on its declared length). A key without limits costs one Map lookup and goes on
// synchronously; a limited one waits for the Limiter (memory: next turn; cluster: one IPC round trip; Redis: one
// script call). Refused → 429 (Exchange.limited); store failing under `on_store_error: closed` → 503. The log phase
// settles what was reserved (`settleLimits`), exactly once, whatever the outcome.
import type { Usage } from "../../domain/usage/usage.js"
import { estimateTokens } from "../../limits/headers.js"
import type { Limiter } from "../../limits/limiter.js"
import type { Admission, LimitName, LimitSpec, Reservation } from "../../limits/types.js"
import type { Exchange } from "../exchange.js"

/** What the request path needs of the Limits service (src/services/Limits.ts). */
export interface LimitsControl {
  /** The Limiter now (a reload may replace it; a request settles on the one that admitted it); undefined: none. */
  readonly limiter: () => Limiter | undefined
  /** `limits.default_output_tokens` of the live config. */
  readonly defaultOutputTokens: () => number
  /** A refusal, for the metrics (`openproxy_ratelimited_total{key,limit}`). */
  readonly refused?: (keyName: string, limit: LimitName) => void
}

/** What an admitted, limited request holds until the log phase settles it. */
export interface LimitsHold {
  readonly limiter: Limiter
  readonly reservation: Reservation
  /** The tokens reserved (kept when the response's usage is not known). */
  readonly estimate: number
}

export type Refusal = Extract<Admission, { _tag: "Refused" }>

const needsTokens = (s: LimitSpec): boolean =>
  s.tokensPerMinute !== undefined || s.tokensPerDay !== undefined || s.tokensPerMonth !== undefined

// The request fields that cap the output (OpenAI chat/completions, Responses, Anthropic, Gemini's
// generationConfig in both spellings), as the bytes they are written with in JSON.
const CAPS = ["max_tokens", "max_completion_tokens", "max_output_tokens", "maxOutputTokens"].map((k) =>
  Buffer.from(`"${k}"`)
)

/**
 * The output cap a JSON body names, found by scanning its bytes (no parse, no string copy): the first of the known
 * fields followed by `:` and a number. A field name inside a string value has its quotes escaped and is skipped; a
 * field of the same name holding an object (a tool's JSON schema) is skipped too.
 */
export const outputCapOf = (body: Buffer): number | undefined => {
  for (const field of CAPS) {
    let at = body.indexOf(field)
    while (at !== -1) {
      if (at === 0 || body[at - 1] !== 0x5c) {
        let i = at + field.length
        while (i < body.length && (body[i] === 0x20 || body[i] === 0x0a || body[i] === 0x0d || body[i] === 0x09)) i++
        if (body[i] === 0x3a) {
          i++
          while (i < body.length && (body[i] === 0x20 || body[i] === 0x0a || body[i] === 0x0d || body[i] === 0x09)) i++
          let n = 0
          let digits = 0
          while (i < body.length && body[i] >= 0x30 && body[i] <= 0x39 && digits < 10) {
            n = n * 10 + (body[i] - 0x30)
            i++
            digits++
          }
          if (digits > 0) return n
        }
      }
      at = body.indexOf(field, at + field.length)
    }
  }
  return undefined
}

/**
 * Admits the exchange against its key's limits, then starts its first attempt; or refuses it. `body` is the
 * gathered request body (null: none or not gathered), `bodyBytes` its size (declared or known; 0: no body). A
 * request without a body reserves no tokens (nothing to generate from); it is still refused while its key's token
 * window or budget is used up.
 */
export const admit = (ex: Exchange, body: Buffer | null, bodyBytes: number): void => {
  const name = ex.keyName
  const limits = ex.ctx.limits
  const keyLimits = ex.router.snapshot.keyLimits
  // no key limited in this config (the usual case): on at once, without a lookup
  if (keyLimits.size === 0 || name === undefined || limits === undefined) return ex.attempt()
  const spec = keyLimits.get(name)
  if (spec === undefined) return ex.attempt()
  const limiter = limits.limiter()
  if (limiter === undefined) return ex.attempt()
  const estimate =
    !needsTokens(spec) || bodyBytes <= 0
      ? 0
      : estimateTokens(bodyBytes, body === null ? undefined : outputCapOf(body), limits.defaultOutputTokens())
  limiter.admit(name, spec, estimate).then(
    (a) => admitted(ex, limiter, a, estimate),
    (err: Error) => {
      ex.ctx.log.log("error", "limits admission failed", { request: ex.requestId, error: err.message })
      if (!ex.hasEnded) ex.refuse("limitsUnavailable")
    }
  )
}

const admitted = (ex: Exchange, limiter: Limiter, a: Admission, estimate: number): void => {
  switch (a._tag) {
    case "Admitted":
      // The client may have left while the store answered: nothing will settle this request, so release now.
      if (ex.hasEnded) {
        void limiter.release(a.reservation)
        return
      }
      ex.limitsHold = { limiter, reservation: a.reservation, estimate }
      return ex.attempt()
    case "Refused":
      ex.ctx.limits?.refused?.(ex.keyName!, a.limit)
      if (!ex.hasEnded) ex.limited(a)
      return
    case "StoreError":
      if (!ex.hasEnded) ex.refuse("limitsUnavailable")
  }
}

/** Every token the provider bills (input, cache reads and writes, output): what token limits count. */
const billed = (u: Usage): number => u.input + u.cacheRead + u.cacheWrite + u.output

/**
 * The log phase's part (once, when the exchange ends): the exact usage when the response reported it; else the
 * reservation when a successful response was relayed (its usage unknown: keep the estimate); else (refused,
 * failed, an upstream error status, the client gone before an answer) released — nothing was generated.
 */
export const settleLimits = (ex: Exchange): void => {
  const hold = ex.limitsHold
  if (hold === undefined) return
  ex.limitsHold = undefined
  const usage = ex.usage
  if (usage !== undefined) void hold.limiter.settle(hold.reservation, billed(usage))
  else if (ex.status >= 200 && ex.status < 300 && ex.ttfbMs >= 0)
    void hold.limiter.settle(hold.reservation, hold.estimate)
  else void hold.limiter.release(hold.reservation)
}
