// The retry step of the request path (SPEC §11, docs/retries.md): after an attempt failed before any byte reached
// the client, the policy of src/domain/retry decides whether it is tried again, and the router picks the next
// identity of the same selection (never one already tried; a connect failure excludes the whole provider). Also the
// cool-down a rate-limit answer asks for, and the proxy's own 429 when every key of the route is cooling down.
// HTTP, WebSocket and CONNECT call these from their dispatch callbacks; the exchange keeps the state.
import {
  type CoolingRefusal,
  type CoolingView,
  cooldownOf,
  decideRetry,
  type FailureKind,
  type RawHeaders
} from "../../domain/retry/index.js"
import type { Avoid } from "../../domain/router.js"
import { usageSource } from "../../domain/usage/index.js"
import type { Exchange } from "../exchange.js"
import type { HttpExchange } from "../httpExchange.js"
import type { ClientResponse } from "../respond.js"
import { DiscardGate, FirstTokenGate, type HeldAnswer, type ResponseGate } from "../responseGate.js"

/**
 * An exchange's retry state (SPEC §11), made the first time it is needed (`Exchange.retrying()`): a failed attempt,
 * a selection while some key is cooling down, a held or discarded response, a CONNECT port mismatch. Most requests
 * never need it, so it lives beside the exchange rather than in it (a smaller per-request object). It is the
 * router's `Avoid` for the next selection.
 */
export class RetryState implements Avoid {
  /** Providers tried and failed to connect to: a fail-over never selects them again. */
  excluded: Set<string> | undefined = undefined
  /** Identities (`Identity.id`) tried by this request: a retry never selects them again. */
  tried: Set<string> | undefined = undefined
  /** Epoch ms of the last selection (compared with the cool-downs). */
  now = 0
  /** Wait before the next attempt: the identity selected is cooling down for this long (within `retry.max_wait`). */
  waitMs = 0
  /** The proxy's 429 when every key of the route is cooling down (the refusal `coolingDown`). */
  refusal: CoolingRefusal | undefined = undefined
  /** HTTP: set while the attempt's response is discarded (retryable status) or held (first-token window). */
  gate: ResponseGate | undefined = undefined
  /** HTTP: the last upstream answer a retry did not relay, relayed when every later attempt fails without one. */
  lastAnswer: HeldAnswer | undefined = undefined

  constructor(
    /** The request path's cool-down registry, as the router's `Avoid` reads it. */
    readonly cooling: CoolingView
  ) {}
}

/**
 * A failed attempt (nothing sent to the client): marks the identity tried (a connect failure also reports and
 * excludes its provider), and when the policy allows another attempt and the router has an identity left, selects
 * it into the exchange and counts the retry. Returns the delay before that attempt (0: at once; more: waiting for a
 * cooling identity within `retry.max_wait`), or -1 when there is none.
 */
export const nextAttempt = (ex: Exchange, kind: FailureKind, status: number, replayable: boolean): number => {
  const failed = ex.identity!
  const state = ex.retrying()
  if (kind === "connect" || kind === "tls") {
    ex.ctx.health.connectFailed(failed.providerId)
    state.excluded ??= new Set()
    state.excluded.add(failed.providerId)
  }
  state.tried ??= new Set()
  state.tried.add(failed.id)
  const d = decideRetry(ex.router.snapshot.retry, {
    attempts: ex.attempts,
    kind,
    status,
    replayable,
    sentToClient: false
  })
  if (!d.retry) return -1
  // The protocol's own selection (CONNECT also checks the port); a cooling identity within `max_wait` sets waitMs.
  state.waitMs = 0
  if (ex.select() !== undefined) return -1
  const delay = state.waitMs
  state.waitMs = 0
  ex.ctx.onRetry?.(failed.provider, d.reason)
  return delay
}

/** Whether a failure of `kind` could be retried at all now (before looking for a candidate). */
export const mayRetry = (ex: Exchange, kind: FailureKind, replayable: boolean): boolean =>
  decideRetry(ex.router.snapshot.retry, { attempts: ex.attempts, kind, status: 0, replayable, sentToClient: false })
    .retry

/** A 429 (or 503/529 naming a time): cools the attempt's identity down for what the provider asks (SPEC §11). */
export const coolDown = (ex: Exchange, status: number, raw: RawHeaders): void => {
  if (status !== 429 && status !== 503 && status !== 529) return
  const now = Date.now()
  const c = cooldownOf(status, raw, now, ex.router.snapshot.retry.maxCooldownMs)
  if (c === undefined || c.ms <= 0) return
  const identity = ex.identity!
  ex.ctx.cooldowns.cool(identity.id, now + c.ms, now, { status, source: c.source, sinceMs: now })
  ex.ctx.onCooldown?.(identity.provider)
  ex.ctx.log.log("debug", "provider key cooling down", {
    request: ex.requestId,
    provider: identity.provider.index,
    ms: c.ms,
    source: c.source
  })
}

/** Writes the proxy's 429 for a route whose keys are all cooling (no upstream was called). */
export const sendCoolingRefusal = (res: ClientResponse, r: CoolingRefusal, requestId: string): void => {
  const body = Buffer.from(r.body)
  const headers: Record<string, string | number> = { "content-length": body.length, "x-request-id": requestId }
  for (const [name, value] of r.headers) headers[name] = value
  res.writeHead(r.status, headers)
  res.end(body)
}

/**
 * The retry step on an HTTP attempt's final response head (before anything is relayed): cools the key down on a
 * rate limit; a status of `retry.on_status` with another identity to try is discarded (the next attempt is
 * selected now); a 2xx event stream under `timeouts.first_token` that may still be retried is held until its first
 * content event. undefined: relay as usual.
 */
export const retryGate = (
  ex: HttpExchange,
  status: number,
  raw: Array<Buffer>,
  resume: () => void,
  statusText: string
): ResponseGate | undefined => {
  coolDown(ex, status, raw)
  const snapshot = ex.router.snapshot
  if (snapshot.retry.onStatus.includes(status)) {
    // the provider answered: reachable, whatever the status (passive health, SPEC §6; onHeaders does it otherwise)
    ex.ctx.health.connected(ex.identity!.providerId)
    const delay = nextAttempt(ex, "status", status, ex.replayable)
    return delay < 0 ? undefined : new DiscardGate(ex, status, statusText, raw, delay)
  }
  const ms = snapshot.timeouts.firstTokenMs
  if (ms === 0 || status >= 300 || !mayRetry(ex, "first_token", ex.replayable)) return undefined
  const type = contentTypeOf(raw)
  if (type === undefined || !type.toLowerCase().startsWith("text/event-stream")) return undefined
  const p = ex.identity!.provider
  let kind: Parameters<typeof usageSource>[0] | undefined
  if (p.type !== "forward") kind = p.type
  const q = ex.path.indexOf("?")
  const source = kind === undefined ? undefined : usageSource(kind, q < 0 ? ex.path : ex.path.slice(0, q), type)
  const stream = source?.kind === "sse" ? source.stream : undefined
  return new FirstTokenGate(ex, status, statusText, raw, resume, stream, ms)
}

const contentTypeOf = (raw: ReadonlyArray<Buffer>): string | undefined => {
  for (let i = 0; i + 1 < raw.length; i += 2) {
    if (raw[i].length === 12 && raw[i].toString("latin1").toLowerCase() === "content-type") {
      return raw[i + 1].toString("latin1")
    }
  }
  return undefined
}
