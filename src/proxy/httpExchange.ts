// One HTTP request and its upstream attempts (a retry only ever happens before any response byte): the exchange
// of src/proxy/exchange.ts plus phase 6 (dispatch through the pool's undici dispatcher) and phase 7 (relay the
// response head and body with backpressure both ways). It is itself the undici dispatch handler, in undici's core
// callback form (`onConnect`/`onHeaders`/`onData`/`onComplete`/`onError`): that form gets raw header buffers and
// a pause signal through return values, without a wrapper object or a parsed header copy per request.
import type * as http from "node:http"
import { STATUS_CODES } from "node:http"
import type * as http2 from "node:http2"
import type { Readable } from "node:stream"
import type { Dispatcher } from "undici"
import type { ResponseUsageTap, UsageChunkFilter } from "../domain/usage/index.js"
import {
  classifyUpstreamError,
  type ErrorKind,
  type ProxyError,
  reasonOf,
  statusOf,
  type UpstreamFailed
} from "../errors.js"
import type { BodyLimit, BodySink, ClientRequest } from "./body.js"
import { writeBody } from "./bodyWrite.js"
import type { ProxyContext } from "./context.js"
import { Exchange, noteClient, outcomeOf } from "./exchange.js"
import { type RequestHeadInfo, responseHeadersFromRaw, trailersForClient } from "./headers.js"
import { bodySizeOf, sendLimited } from "./limited.js"
import { admit, type Refusal } from "./phases/admit.js"
import { type FilteredExchange, filterResponse, finishResponse } from "./phases/responseFilter.js"
import { nextAttempt, retryGate, sendCoolingRefusal } from "./phases/retry.js"
import { upstreamHeaders, upstreamPath } from "./phases/upstreamRequest.js"
import { fixContentLength, injectUsage } from "./phases/usageInjection.js"
import { safeToReplay } from "./replay.js"
import { abortClient, type ClientResponse, sendError } from "./respond.js"
import { type HeldAnswer, relayHeld } from "./responseGate.js"
import type { ConnectionAware, TrackedClient, Upstream, UpstreamConnection } from "./upstreams.js"

export class HttpExchange
  extends Exchange
  implements Dispatcher.DispatchHandler, ConnectionAware, BodySink, FilteredExchange
{
  limit: BodyLimit | undefined = undefined
  /** The client undici handed the current attempt to (set by TrackedClient.dispatch). */
  via: TrackedClient | undefined = undefined
  /** The client went away (HTTP/2 responses have no `destroyed`, so this is the one signal for both). */
  clientGone = false
  private abortUpstream: ((err?: Error) => void) | undefined = undefined
  private responded = false
  private finished = false
  private body: Buffer | Readable | null = null
  private upstream: Upstream | undefined = undefined
  private resume: (() => void) | undefined = undefined
  /** The connection the current attempt was written on (undefined: not written, nothing reached the upstream). */
  conn: UpstreamConnection | undefined = undefined
  /** Whether `conn` had served responses before this attempt was written on it. */
  reused = false
  /** `conn.socket.bytesRead` when the attempt was written: every byte past it is a response byte (HTTP/1.1). */
  readAtWrite = 0
  /** The upstream sent something for this attempt (a head, even an interim 1xx one). */
  answered = false
  /** The body can be sent again on a retry (none, or gathered and at most `retry.max_body_bytes`; SPEC §11). */
  replayable = true
  /** The attempt's final head went through the retry step already (a gate, if any, is in `retryState`). */
  private gated = false
  /** Phase 7's state (phases/responseFilter.ts): the usage tap, the usage-chunk strip, the open-stream gauge. */
  tap: ResponseUsageTap | undefined = undefined
  strip: UsageChunkFilter | undefined = undefined
  injected = false
  streaming = false

  constructor(
    ctx: ProxyContext,
    private readonly req: ClientRequest,
    private readonly res: ClientResponse,
    private readonly isH2: boolean,
    private readonly info: RequestHeadInfo
  ) {
    super(
      ctx,
      !isH2 ? "http/1.1" : (req as http2.Http2ServerRequest).stream.session?.encrypted === true ? "h2" : "h2c",
      ctx.requestIds.fromHeader(info.requestId)
    )
    ctx.gauges?.requestStarted()
    noteClient(this, req.socket)
    this.method = req.method ?? "GET"
    res.on("close", () => {
      if (!this.finished) {
        this.clientGone = true
        // gone before an answer, or in the middle of one (a refusal that was sent keeps its outcome)
        if (this.status === 0 || this.responded) this.outcome = "client_abort"
        this.abortUpstream?.(new Error("client closed"))
      }
      this.end()
    })
  }

  protected override release(): void {
    this.ctx.gauges?.requestEnded()
  }

  protected override beforeLog(): Promise<void> | undefined {
    return finishResponse(this, Buffer.isBuffer(this.body) ? this.body : undefined)
  }

  /** Admits (SPEC §12), then starts the first attempt with the request body (the exchange has selected already). */
  start(body: Buffer | Readable | null): void {
    if (Buffer.isBuffer(body)) {
      this.bytesIn = body.length
      // Phase 5 (SPEC §10 usage injection): an OpenAI chat stream asked for its usage chunk.
      const injected = injectUsage(this, body, this.req.rawHeaders)
      if (injected !== undefined) {
        this.injected = true
        body = injected
      }
    } else if (body !== null && this.info.contentLength !== undefined) this.bytesIn = Number(this.info.contentLength)
    this.body = body
    this.replayable = body === null || (Buffer.isBuffer(body) && body.length <= this.router.snapshot.retry.maxBodyBytes)
    admit(this, Buffer.isBuffer(body) ? body : null, bodySizeOf(this.req, body))
  }

  /** A refusal by the key's limits: 429 in the selected provider type's error shape, with the rate headers. */
  override limited(a: Refusal): void {
    this.status = 429
    this.outcome = "refused"
    const streamed = this.body !== null && !Buffer.isBuffer(this.body)
    sendLimited(this.res, a, this.identity!.provider.type, this.keyName ?? "", this.requestId, streamed)
  }

  refuse(e: ErrorKind | ProxyError, close = false): void {
    const kind = reasonOf(e)
    this.status = statusOf(kind)
    this.outcome = outcomeOf(kind)
    const refusal = this.retryState?.refusal
    if (kind === "coolingDown" && refusal !== undefined) return sendCoolingRefusal(this.res, refusal, this.requestId)
    this.bytesOut += sendError(this.res, e, close, this.requestId)
  }

  tooLarge(): void {
    this.refuse("tooLarge", true)
  }

  aborted(): void {
    this.outcome = "client_abort"
    abortClient(this.res)
  }

  dispatch(): void {
    if (this.clientGone) return
    const p = this.identity!.provider
    const headers = upstreamHeaders(this, this.req.rawHeaders, this.info)
    if (this.injected) fixContentLength(headers, (this.body as Buffer).length)
    // The snapshot the request started with, on every attempt (SPEC §7: a request finishes on its config).
    const upstream = this.ctx.pools.get(p, this.router.snapshot.timeouts)
    this.upstream = upstream
    upstream.inflight++
    this.via = undefined
    this.conn = undefined
    this.answered = false
    this.gated = false
    try {
      upstream.dispatcher.dispatch(
        {
          path: upstreamPath(this),
          method: this.req.method as Dispatcher.HttpMethod,
          headers,
          body: this.body,
          idempotent: false,
          blocking: true
        },
        this
      )
    } catch (err) {
      this.onError(err as Error)
    }
  }

  private done(): void {
    if (this.upstream !== undefined) {
      this.upstream.inflight--
      this.upstream = undefined
    }
  }

  // ---- undici handler callbacks

  onConnect(abort: (err?: Error) => void): void {
    this.abortUpstream = abort
    // Called by undici just before it writes the request: from here on, the upstream may have seen it.
    const conn = this.via?.conn
    if (conn !== undefined) {
      this.conn = conn
      this.reused = conn.served > 0
      this.readAtWrite = conn.socket.bytesRead
    }
    // the client may have gone while the upstream connection was being made
    if (this.clientGone) abort(new Error("client closed"))
  }

  onHeaders(status: number, raw: Array<Buffer>, resume: () => void, statusText: string): boolean {
    if (!this.answered) {
      this.answered = true
      if (this.conn !== undefined) this.conn.served++
    }
    if (status < 200) return true
    if (!this.gated) {
      // SPEC §11: a retryable status is not relayed while another identity can answer; a stream under the
      // first-token deadline is held until its first content event.
      this.gated = true
      const gate = retryGate(this, status, raw, resume, statusText)
      if (gate !== undefined) {
        this.retrying().gate = gate
        return true
      }
    }
    this.responded = true
    this.ttfbMs = this.sinceStart()
    this.upstreamProtocol = this.upstream?.protocol
    this.ctx.health.connected(this.identity!.providerId)
    const res = this.res
    if (this.clientGone) {
      this.abortUpstream?.(new Error("client closed"))
      return false
    }
    this.resume = resume
    // Phase 7 (response filter): the head is relayed as it came (hop-by-hop headers dropped); the usage tap and
    // the first-token deadline (SPEC §10, §11) attach here.
    const headers = responseHeadersFromRaw(raw, this.upstream?.protocol ?? "http/1.1", this.isH2, this.requestId)
    try {
      if (this.isH2) (res as http2.Http2ServerResponse).writeHead(status, headers as http2.OutgoingHttpHeaders)
      else {
        const h1 = res as http.ServerResponse
        h1.sendDate = false
        // undici decodes the reason phrase as UTF-8; relay it only when it is plain ASCII (Node's own phrase for
        // the status, the usual case, needs no check)
        if (statusText === STATUS_CODES[status]) h1.writeHead(status, headers as Array<string>)
        else if (statusText && /^[\t\x20-\x7e]*$/.test(statusText))
          h1.writeHead(status, statusText, headers as Array<string>)
        else h1.writeHead(status, headers as Array<string>)
      }
    } catch (err) {
      // a head Node refuses to write: answer 502 rather than an empty reply
      this.responded = false
      this.ctx.log.log("warn", "upstream response head refused", {
        request: this.requestId,
        error: (err as Error).name
      })
      this.finished = true
      this.abortUpstream?.(new Error("invalid response head"))
      this.refuse("badGateway")
      return false
    }
    this.status = status
    filterResponse(this, status, headers)
    return true
  }

  onData(chunk: Buffer): boolean {
    const gate = this.retryState?.gate
    if (gate !== undefined) return gate.data(chunk)
    const tap = this.tap
    if (tap !== undefined) tap.push(chunk)
    if (this.strip !== undefined) {
      const out = this.strip.filter(chunk)
      if (out === undefined) return true
      chunk = out
    }
    this.bytesOut += chunk.length
    return writeBody(this.res, this.isH2, chunk, this.onDrain)
  }

  private readonly onDrain = (): void => this.resume?.()

  /** Trailers: raw pairs on HTTP/1.1 (typed so by undici), an object on HTTP/2 (what undici really passes). */
  onComplete(trailers: Array<string> | null): void {
    const gate = this.retryState?.gate
    if (gate !== undefined) return gate.complete(trailers)
    this.done()
    this.finished = true
    if (this.isH2 && trailers !== null && !Array.isArray(trailers)) {
      const t = trailersForClient(trailers as Record<string, string | Array<string> | undefined>)
      if (t !== undefined) (this.res as http2.Http2ServerResponse).addTrailers(t)
    }
    const rest = this.strip?.flush()
    if (rest !== undefined) {
      this.bytesOut += rest.length
      ;(this.res as NodeJS.WritableStream).write(rest)
    }
    this.res.end()
  }

  onError(err: Error): void {
    this.done()
    const gate = this.retryState?.gate
    if (gate !== undefined) return gate.error(err)
    const provider = this.identity!.provider.index
    if (this.responded && this.clientGone) {
      // The client left mid-response (a cancelled generation, a closed tab): the upstream request was aborted on
      // purpose. Not an upstream failure, so not a warning (and no stderr write per cancelled stream).
      this.ctx.log.log("debug", "client closed mid-response", { request: this.requestId, provider })
      return
    }
    if (this.responded) {
      // The response has begun: abort it so a truncated answer never looks complete (SPEC §5).
      this.ctx.log.log("warn", "upstream failed mid-response", {
        request: this.requestId,
        provider,
        code: classifyUpstreamError(err).code
      })
      this.outcome = "truncated"
      // finished: the client's close that follows is this abort, not a client leaving (keeps `truncated`)
      this.finished = true
      abortClient(this.res)
      return
    }
    if (this.clientGone || this.finished) return
    if (this.limit?.exceeded) return this.refuse("tooLarge", true)
    const c = classifyUpstreamError(err)
    // A TLS error on a connection that carried the request is not a failure to connect.
    if (c.connectFailure && this.conn === undefined) {
      // A provider that cannot be reached: another one of the route (SPEC §11, src/proxy/phases/retry.ts).
      if (this.retry("connect", 0, this.replayable)) return
      return this.fail(c, err)
    }
    // A stale pooled connection is retried on a fresh one, same identity (issue 10's rule, once even with
    // `retry.attempts: 0`: a pooling artefact, not an upstream failure).
    const gathered = this.body === null || Buffer.isBuffer(this.body)
    const bound = Math.max(1, this.router.snapshot.retry.attempts)
    if (gathered && this.attempts <= bound && safeToReplay(this, this.req.method, err)) return this.again()
    // Closed or reset before the head: another identity (never the same one again on a fresh connection).
    if (!this.answered && c.code !== "UND_ERR_HEADERS_TIMEOUT" && this.retry("reset", 0, this.replayable)) return
    this.fail(c, err)
  }

  // ---- the retry step's side (src/proxy/responseGate.ts)

  /** The current attempt's upstream protocol (`x-upstream-protocol`). */
  get attemptProtocol(): string {
    return this.upstream?.protocol ?? "http/1.1"
  }

  /** The current attempt may still be retried after its first-token deadline: the delay, or -1 when not. */
  abandonForFirstToken(): number {
    if (this.clientGone || this.finished) return -1
    return nextAttempt(this, "first_token", 0, this.replayable)
  }

  /** Aborts the current attempt (a discarded answer too large, a stream past its first-token deadline). */
  abortAttempt(err: Error): void {
    this.abortUpstream?.(err)
  }

  /** A gated attempt is over: keep its answer (if any) and start the next attempt after `delayMs`. */
  nextAfterGate(answer: HeldAnswer | undefined, delayMs: number): void {
    const state = this.retrying()
    state.gate = undefined
    this.done()
    if (answer !== undefined) state.lastAnswer = answer
    if (this.clientGone || this.finished) return
    state.waitMs = delayMs
    setImmediate(() => this.attempt())
  }

  /** A held stream failed before its first content event (nothing sent): retried like a reset before the head. */
  gateFailed(err: Error): void {
    this.retrying().gate = undefined
    if (this.clientGone || this.finished) return
    if (this.retry("reset", 0, this.replayable)) return
    this.fail(classifyUpstreamError(err), err)
  }

  /** Releases a held stream: its head and held chunks go through the usual callbacks. */
  releaseHeld(status: number, raw: Array<Buffer>, resume: () => void, text: string, chunks: Array<Buffer>): boolean {
    this.retrying().gate = undefined
    if (!this.onHeaders(status, raw, resume, text)) return false
    let flowing = true
    for (const c of chunks) flowing = this.onData(c)
    return flowing
  }

  /** The next attempt, on the next turn: undici is still unwinding the failed connection inside this callback. */
  private again(): void {
    setImmediate(() => this.attempt())
  }

  private fail(c: UpstreamFailed, err: Error): void {
    this.ctx.log.log("warn", "upstream request failed", {
      request: this.requestId,
      provider: this.identity!.provider.index,
      code: c.code,
      error: err.message
    })
    this.failAttempt(c)
  }

  override failAttempt(e: ErrorKind | ProxyError): void {
    const last = this.retryState?.lastAnswer
    if (last === undefined) return this.refuse(e)
    // SPEC §11: every attempt failed, one with an answer: the client gets that answer as it came.
    this.finished = true
    this.responded = true
    this.status = last.status
    relayHeld(this.res, this.isH2, last, this.requestId)
  }
}
