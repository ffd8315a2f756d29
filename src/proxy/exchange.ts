// The per-request context (ARCHITECTURE "The request as phases"): one object per HTTP request, WebSocket or
// tunnel that the phases read and write, from the head to the log line: the router (and so the snapshot) the
// request started with, its id, the client's host/target and key, the chosen identity and its credential, the
// attempts, timings and outcome. HTTP, WebSocket and CONNECT each extend it with their own dispatch; the steps
// they share (select → credential → dispatch, fail-over on a connect error, log once) are here and in phases/.
// A class with fields, so a request costs one object for all of it; state few requests need (the retry state) is in
// a side object made on first use, so the common request does not carry it.
import type * as Redacted from "effect/Redacted"
import type { ProviderType } from "../config/types.js"
import type { FailureKind } from "../domain/retry/index.js"
import type { Identity, Router } from "../domain/router.js"
import type { Usage } from "../domain/usage/usage.js"
import { type ErrorKind, type ProxyError, Refused } from "../errors.js"
import { refusalMessage } from "../limits/headers.js"
import type { Outcome } from "../observability/accessLog.js"
import type { ProxyContext } from "./context.js"
import { admit, type LimitsHold, type Refusal } from "./phases/admit.js"
import { resolveCredential } from "./phases/credential.js"
import { logEnd } from "./phases/log.js"
import { nextAttempt, RetryState } from "./phases/retry.js"
import { select } from "./phases/select.js"

/** How the client reached us (the access log's `protocol`, SPEC §10). */
export type ExchangeProtocol = "http/1.1" | "h2" | "h2c" | "ws" | "tunnel"

/** How the exchange ended (SPEC §10 `outcome`). */
export type { Outcome }

/** The access log's outcome of a failure the proxy answered itself. */
export const outcomeOf = (kind: ErrorKind): Outcome =>
  kind === "badGateway" || kind === "gatewayTimeout" || kind === "upstreamAuth" ? "upstream_error" : "refused"

const noKey = (): undefined => undefined

/** What the access log reads from the client's connection (a net.Socket, or a TLSSocket with `encrypted`). */
export interface ClientSocket {
  readonly remoteAddress?: string | undefined
}

/**
 * Notes the client's address and listener while the connection is open (a closed socket has no address), only
 * when the access log is on: Node asks the kernel once per connection (and keeps it), not per request.
 */
export const noteClient = (ex: Exchange, socket: ClientSocket): void => {
  if (!ex.router.snapshot.accessLog) return
  ex.client = socket.remoteAddress
  if ((socket as { encrypted?: boolean }).encrypted === true) ex.listener = "https"
}

export abstract class Exchange {
  /** The router the request started with: every attempt (and a fail-over) reads this snapshot (SPEC §7). */
  readonly router: Router
  readonly requestId: string
  /**
   * `performance.now()` when the exchange began; 0 when nothing reads its timings (`ProxyContext.timed`): a clock
   * read costs ~50 ns, and without an access log, recorded metrics or an embedder's `onEnd` nobody asks.
   */
  readonly startedAt: number = 0
  /** The request's host (lower-cased, no trailing dot) and port, set by the route phase. */
  hostName = ""
  port = 0
  /** The request target in origin form (the provider's prefix not yet removed). */
  url = "/"
  /** The client's key as a provider type reads it (SPEC §4). */
  clientKey: (type: ProviderType) => string | undefined = noKey
  /** How a client key is digested (per connection on HTTP, see ConnectionKeyDigests); undefined: plainly. */
  digest: ((key: string) => Buffer) | undefined = undefined
  /** The accepted client key's name (SPEC §10); undefined when no key was checked. */
  keyName: string | undefined = undefined
  /** The identity of the current attempt and the path it gets (its provider's prefix removed). */
  identity: Identity | undefined = undefined
  path = "/"
  /** The provider credential of the current attempt (resolved by the credential phase). */
  key: Redacted.Redacted<string> | undefined = undefined
  attempts = 0
  /** Tried identities, excluded providers, a cool-down wait, a kept answer (SPEC §11): see `retrying()`. */
  retryState: RetryState | undefined = undefined
  /** The status the client received (0 until a head went out). */
  status = 0
  /**
   * Upstream time to first byte of the response head (ms since start, `sinceStart()`), negative until one arrived
   * (0 when the exchange is not timed: the limits' settlement still reads that a head arrived).
   */
  ttfbMs = -1
  outcome: Outcome = "ok"
  /** The model the client asked for (a bounded label, SPEC §10); undefined when not known. */
  model: string | undefined = undefined
  /** The model the provider says answered. */
  responseModel: string | undefined = undefined
  /** Exact token usage the response reported (the usage taps, SPEC §10); undefined when none was read. */
  usage: Usage | undefined = undefined
  /** Time to the first content event of a stream (ms since start), negative when none. */
  ttftMs = -1
  /** Body bytes received from the client and sent to it (WebSocket, tunnel: all bytes each way). */
  bytesIn = 0
  bytesOut = 0
  /** What the admit phase reserved on the key's limits (SPEC §12); the log phase settles it. */
  limitsHold: LimitsHold | undefined = undefined
  /** The client's address and listener (`http`, `https`) for the access log (`noteClient`), and the method. */
  client: string | undefined = undefined
  listener = "http"
  method = "GET"
  /** The protocol spoken to the upstream (`http/1.1`, `h2`), once one was chosen. */
  upstreamProtocol: string | undefined = undefined
  private ended = false

  constructor(
    readonly ctx: ProxyContext,
    readonly protocol: ExchangeProtocol,
    requestId?: string
  ) {
    this.router = ctx.router()
    this.requestId = requestId ?? ctx.requestIds.next()
    if (ctx.timed(this.router.snapshot)) this.startedAt = performance.now()
  }

  /** Milliseconds since the exchange began; 0 when it is not timed (no clock read then). */
  sinceStart(): number {
    return this.startedAt === 0 ? 0 : performance.now() - this.startedAt
  }

  /** Phases 4 then 3 (select, admit) for the first attempt; a refusal is answered, else the credential phase runs. */
  begin(): void {
    const refused = this.select()
    if (refused !== undefined) return this.refuse(refused)
    admit(this, null, 0)
  }

  /** The log phase ran (the client may be gone): an answer arriving later is dropped. */
  get hasEnded(): boolean {
    return this.ended
  }

  /** A refusal by the key's limits (SPEC §12): 429. HTTP overrides it with the provider type's JSON and headers. */
  limited(a: Refusal): void {
    this.refuse(new Refused({ reason: "keyRateLimited", detail: refusalMessage(this.keyName ?? "", a) }))
  }

  /** Select an identity into the exchange (CONNECT overrides it: its target's port decides too). */
  select(): ErrorKind | ProxyError | undefined {
    return select(this)
  }

  /** The retry state, made on first use (a request that is never retried nor cooled never makes it). */
  retrying(): RetryState {
    if (this.retryState === undefined) this.retryState = new RetryState(this.ctx.cooldowns)
    return this.retryState
  }

  /** Whether the selected identity is cooling down: its attempt waits `retryState.waitMs` first (`wait`). */
  protected get mustWait(): boolean {
    return this.retryState !== undefined && this.retryState.waitMs > 0
  }

  /** One attempt: resolve the identity's credential, then dispatch (a failed command key: `failAttempt`). */
  attempt(): void {
    if (this.mustWait) return this.wait()
    this.attempts++
    resolveCredential(this)
  }

  /** The selected identity is cooling down for `waitMs` (within `retry.max_wait`): its attempt starts after. */
  protected wait(): void {
    const state = this.retrying()
    const ms = state.waitMs
    state.waitMs = 0
    // the client may leave meanwhile (the log phase released its slot): no attempt then (a tunnel would connect)
    setTimeout(() => {
      if (!this.ended) this.attempt()
    }, ms)
  }

  /**
   * The retry policy (SPEC §11, src/proxy/phases/retry.ts) after an attempt that failed before anything reached
   * the client (the caller asks only then): true when another identity of the same route was selected and its
   * attempt scheduled (on the next turn: a library may still be unwinding the failed one). A connect failure
   * reports the provider to passive health and excludes it.
   */
  retry(kind: FailureKind, status: number, replayable: boolean): boolean {
    const delay = nextAttempt(this, kind, status, replayable)
    if (delay < 0) return false
    this.retrying().waitMs = delay
    setImmediate(() => {
      if (!this.ended) this.attempt()
    })
    return true
  }

  /**
   * The last attempt failed before any answer (no connection, a `$(command)` key that failed, a reset) and no other
   * is tried: the client gets `e`, the proxy's own refusal. HTTP and WebSocket override it to relay instead the
   * answer an earlier attempt kept, when there is one (SPEC §11: every attempt failed, one with an answer).
   */
  failAttempt(e: ErrorKind | ProxyError): void {
    this.refuse(e)
  }

  /** Phase 6 (dispatch), with `identity`, `path` and `key` set: the protocol's own. */
  abstract dispatch(): void

  /** Answers the client with one of the proxy's own errors. */
  abstract refuse(e: ErrorKind | ProxyError): void

  /** Phase 8 (log): exactly once, whatever the outcome; later calls do nothing. */
  end(): void {
    if (this.ended) return
    this.ended = true
    this.release()
    // The usage tap's figures: at once for identity bodies; a gzip/deflate/br body is decoded first (async).
    const pending = this.beforeLog()
    if (pending === undefined) logEnd(this)
    else pending.then(() => logEnd(this))
  }

  /** What a protocol releases when it ends (its live gauge), before the log phase. */
  protected release(): void {}

  /** Fills what the log phase reads from the response filter; a promise only when that takes a decode. */
  protected beforeLog(): Promise<void> | undefined {
    return undefined
  }
}
