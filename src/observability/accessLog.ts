// The access log (SPEC §10): one line per request, WebSocket and tunnel after it ended, in the process log's
// format (`--log-format json|text`, as src/log.ts writes it: `time level message fields`), on stdout. The
// formatter is pure; the writer batches the lines of one event-loop turn into one write. Fields come from the
// request path as plain values; the path is written without its query (where a Gemini `key=` would be), and
// text values are quoted when they hold anything but visible ASCII, so a client cannot forge a line.
// Two formatters of the same line: `formatAccessLine` over an AccessLogEntry (the reference, for tests and
// embedders) and the writer's own over the ended exchange itself (`writeExchange`: no entry object per request,
// and the text of fields that repeat from line to line — client, host, path, provider, key, model — reused while
// the value is the same); test/access-log.test.ts checks that they write the same bytes.
import type { ProviderConfig } from "../config/types.js"
import { providerLabel } from "./labels.js"

export type Outcome = "ok" | "client_abort" | "upstream_error" | "truncated" | "refused"

/** One ended request. Absent values are `undefined` (json: null; text: `-`); negative times: none. */
export interface AccessLogEntry {
  /** Epoch ms at the end. */
  readonly time: number
  readonly requestId: string
  readonly client: string | undefined
  /** The listener (`http`, `https`). */
  readonly listener: string
  readonly protocol: "http/1.1" | "h2" | "h2c" | "ws" | "tunnel"
  readonly method: string
  readonly host: string | undefined
  /** The request target; anything from `?` on is dropped here. */
  readonly path: string
  /** `host#index` of the provider that served it (observability/labels.ts). */
  readonly provider: string | undefined
  readonly upstreamProtocol: string | undefined
  /** The client key's name, never the key. */
  readonly key: string | undefined
  readonly status: number
  readonly bytesIn: number
  readonly bytesOut: number
  readonly durationMs: number
  readonly ttfbMs: number
  readonly ttftMs: number
  readonly attempts: number
  readonly model: string | undefined
  readonly inputTokens: number | undefined
  readonly outputTokens: number | undefined
  readonly cacheReadTokens: number | undefined
  readonly cacheWriteTokens: number | undefined
  readonly reasoningTokens: number | undefined
  readonly outcome: Outcome
}

const pathOnly = (target: string): string => {
  const q = target.indexOf("?")
  return q < 0 ? target : target.slice(0, q)
}

/** Visible ASCII without `"`, `\` and `=`: written as is in both formats. */
const plain = (s: string): boolean => {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c < 0x21 || c > 0x7e || c === 0x22 || c === 0x5c || c === 0x3d) return false
  }
  return s.length > 0
}

const jsonString = (s: string | undefined): string =>
  s === undefined ? "null" : plain(s) ? `"${s}"` : JSON.stringify(s)
const textString = (s: string | undefined): string => (s === undefined ? "-" : plain(s) ? s : JSON.stringify(s))
/** Milliseconds with at most 3 decimals, from an integer of microseconds (no float-to-string conversion). */
const ms = (n: number): string => {
  if (n < 0) return ""
  const us = Math.round(n * 1000)
  const whole = Math.floor(us / 1000)
  const frac = us - whole * 1000
  if (frac === 0) return String(whole)
  const f = frac < 10 ? `00${frac}` : frac < 100 ? `0${frac}` : String(frac)
  return `${whole}.${f.charCodeAt(2) !== 48 ? f : f.charCodeAt(1) !== 48 ? f.slice(0, 2) : f.slice(0, 1)}`
}
const jsonMs = (n: number): string => (n < 0 ? "null" : ms(n))
const textMs = (n: number): string => (n < 0 ? "-" : ms(n))
const jsonNum = (n: number | undefined): string => (n === undefined ? "null" : String(n))
const textNum = (n: number | undefined): string => (n === undefined ? "-" : String(n))

/** The line for one entry (with its newline). */
export const formatAccessLine = (format: "json" | "text", e: AccessLogEntry): string =>
  formatWithTime(format, e, new Date(e.time).toISOString())

/** The same with the entry's time already as an ISO string (the writer reuses it within a millisecond). */
const formatWithTime = (format: "json" | "text", e: AccessLogEntry, time: string): string => {
  const path = pathOnly(e.path)
  if (format === "json") {
    return (
      `{"time":"${time}","level":"info","message":"access","request_id":${jsonString(e.requestId)}` +
      `,"client":${jsonString(e.client)},"listener":${jsonString(e.listener)},"protocol":"${e.protocol}"` +
      `,"method":${jsonString(e.method)},"host":${jsonString(e.host)},"path":${jsonString(path)}` +
      `,"provider":${jsonString(e.provider)},"upstream_protocol":${jsonString(e.upstreamProtocol)}` +
      `,"key":${jsonString(e.key)},"status":${e.status},"bytes_in":${e.bytesIn},"bytes_out":${e.bytesOut}` +
      `,"duration_ms":${jsonMs(e.durationMs)},"ttfb_ms":${jsonMs(e.ttfbMs)},"ttft_ms":${jsonMs(e.ttftMs)}` +
      `,"attempts":${e.attempts},"model":${jsonString(e.model)},"input_tokens":${jsonNum(e.inputTokens)}` +
      `,"output_tokens":${jsonNum(e.outputTokens)},"cache_read_tokens":${jsonNum(e.cacheReadTokens)}` +
      `,"cache_write_tokens":${jsonNum(e.cacheWriteTokens)},"reasoning_tokens":${jsonNum(e.reasoningTokens)}` +
      `,"outcome":"${e.outcome}"}\n`
    )
  }
  return (
    `${time} INFO access request_id=${textString(e.requestId)} client=${textString(e.client)}` +
    ` listener=${textString(e.listener)} protocol=${e.protocol} method=${textString(e.method)}` +
    ` host=${textString(e.host)} path=${textString(path)} provider=${textString(e.provider)}` +
    ` upstream_protocol=${textString(e.upstreamProtocol)} key=${textString(e.key)} status=${e.status}` +
    ` bytes_in=${e.bytesIn} bytes_out=${e.bytesOut} duration_ms=${textMs(e.durationMs)} ttfb_ms=${textMs(e.ttfbMs)}` +
    ` ttft_ms=${textMs(e.ttftMs)} attempts=${e.attempts} model=${textString(e.model)}` +
    ` input_tokens=${textNum(e.inputTokens)} output_tokens=${textNum(e.outputTokens)}` +
    ` cache_read_tokens=${textNum(e.cacheReadTokens)} cache_write_tokens=${textNum(e.cacheWriteTokens)}` +
    ` reasoning_tokens=${textNum(e.reasoningTokens)} outcome=${e.outcome}\n`
  )
}

/** Token counts as the access log reads them. */
export interface AccessTokens {
  readonly input: number
  readonly output: number
  readonly cacheRead: number
  readonly cacheWrite: number
  readonly reasoning: number
}

/** What the access log reads from an ended exchange (src/proxy/exchange.ts's Exchange has these fields). */
export interface AccessSource {
  readonly requestId: string
  readonly client: string | undefined
  readonly listener: string
  readonly protocol: AccessLogEntry["protocol"]
  readonly method: string
  /** "" when none. */
  readonly hostName: string
  /** The request target (its query is not written). */
  readonly url: string
  readonly identity: { readonly provider: ProviderConfig } | undefined
  readonly upstreamProtocol: string | undefined
  readonly keyName: string | undefined
  readonly status: number
  readonly bytesIn: number
  readonly bytesOut: number
  readonly ttfbMs: number
  readonly ttftMs: number
  readonly attempts: number
  /** The request's model; "unknown" or undefined: the response's model is written instead. */
  readonly model: string | undefined
  readonly responseModel: string | undefined
  readonly usage: AccessTokens | undefined
  readonly outcome: Outcome
}

/** The entry `writeExchange` writes for an exchange (what formatAccessLine would be given). */
export const entryOf = (ex: AccessSource, durationMs: number, time: number = Date.now()): AccessLogEntry => {
  const usage = ex.usage
  const p = ex.identity?.provider
  return {
    time,
    requestId: ex.requestId,
    client: ex.client,
    listener: ex.listener,
    protocol: ex.protocol,
    method: ex.method,
    host: ex.hostName === "" ? undefined : ex.hostName,
    path: ex.url,
    provider: p === undefined ? undefined : providerLabel(p),
    upstreamProtocol: ex.upstreamProtocol,
    key: ex.keyName,
    status: ex.status,
    bytesIn: ex.bytesIn,
    bytesOut: ex.bytesOut,
    durationMs,
    ttfbMs: ex.ttfbMs,
    ttftMs: ex.ttftMs,
    attempts: ex.attempts,
    model: ex.model !== undefined && ex.model !== "unknown" ? ex.model : ex.responseModel,
    inputTokens: usage?.input,
    outputTokens: usage?.output,
    cacheReadTokens: usage?.cacheRead,
    cacheWriteTokens: usage?.cacheWrite,
    reasoningTokens: usage?.reasoning,
    outcome: ex.outcome
  }
}

const UNSET: unique symbol = Symbol("unset")

/** A field's last value and its formatted text (reused while the next line has the same value). */
class Memo {
  value: unknown = UNSET
  text = ""
}

/** `formatWithTime` over the exchange itself, with the text of repeating fields memoized (one per writer). */
class ExchangeFormatter {
  private readonly client = new Memo()
  private readonly listener = new Memo()
  private readonly method = new Memo()
  private readonly host = new Memo()
  private readonly path = new Memo()
  private readonly provider = new Memo()
  private readonly upstream = new Memo()
  private readonly key = new Memo()
  private readonly model = new Memo()
  private protocol = ""
  // The text from ` client=` to `status=` (json: `,"client":` to `"status":`), rebuilt only when one of its values
  // changed: the line is then a few pieces, not ~50 (cheaper to build, and to flatten when it is encoded).
  private middle = ""
  private changed = true
  // The tokens' text, for the last five counts.
  private tokens = ""
  private counts: AccessTokens | undefined = undefined

  constructor(private readonly json: boolean) {}

  private str(m: Memo, s: string | undefined): string {
    if (s === m.value) return m.text
    m.value = s
    m.text = this.json ? jsonString(s) : textString(s)
    this.changed = true
    return m.text
  }

  private tokensOf(u: AccessTokens | undefined): string {
    const c = this.counts
    const same =
      u === undefined
        ? c === undefined
        : c !== undefined &&
          u.input === c.input &&
          u.output === c.output &&
          u.cacheRead === c.cacheRead &&
          u.cacheWrite === c.cacheWrite &&
          u.reasoning === c.reasoning
    if (same && this.tokens !== "") return this.tokens
    // a copy: the counts compared next time are these, whatever happens to the exchange's object
    this.counts = u === undefined ? undefined : { ...u }
    if (this.json) {
      this.tokens =
        u === undefined
          ? `,"input_tokens":null,"output_tokens":null,"cache_read_tokens":null,"cache_write_tokens":null,"reasoning_tokens":null`
          : `,"input_tokens":${u.input},"output_tokens":${u.output},"cache_read_tokens":${u.cacheRead}` +
            `,"cache_write_tokens":${u.cacheWrite},"reasoning_tokens":${u.reasoning}`
    } else {
      this.tokens =
        u === undefined
          ? " input_tokens=- output_tokens=- cache_read_tokens=- cache_write_tokens=- reasoning_tokens=-"
          : ` input_tokens=${u.input} output_tokens=${u.output} cache_read_tokens=${u.cacheRead}` +
            ` cache_write_tokens=${u.cacheWrite} reasoning_tokens=${u.reasoning}`
    }
    return this.tokens
  }

  line(ex: AccessSource, durationMs: number, time: string): string {
    const json = this.json
    const client = this.str(this.client, ex.client)
    const listener = this.str(this.listener, ex.listener)
    const method = this.str(this.method, ex.method)
    const hostName = ex.hostName
    const host = this.str(this.host, hostName === "" ? undefined : hostName)
    let m = this.path
    const url = ex.url
    if (url !== m.value) {
      m.value = url
      const path = pathOnly(url)
      const text = json ? jsonString(path) : textString(path)
      if (text !== m.text) this.changed = true
      m.text = text
    }
    const path = m.text
    const p = ex.identity?.provider
    m = this.provider
    if (p !== m.value) {
      m.value = p
      const label = p === undefined ? undefined : providerLabel(p)
      m.text = json ? jsonString(label) : textString(label)
      this.changed = true
    }
    const provider = m.text
    const upstream = this.str(this.upstream, ex.upstreamProtocol)
    const key = this.str(this.key, ex.keyName)
    if (ex.protocol !== this.protocol) {
      this.protocol = ex.protocol
      this.changed = true
    }
    if (this.changed) {
      this.changed = false
      this.middle = json
        ? `,"client":${client},"listener":${listener},"protocol":"${ex.protocol}","method":${method},"host":${host}` +
          `,"path":${path},"provider":${provider},"upstream_protocol":${upstream},"key":${key},"status":`
        : ` client=${client} listener=${listener} protocol=${ex.protocol} method=${method} host=${host} path=${path}` +
          ` provider=${provider} upstream_protocol=${upstream} key=${key} status=`
    }
    const changed = this.changed // the model is not in the middle text: its change must not rebuild it
    const model = this.str(this.model, ex.model !== undefined && ex.model !== "unknown" ? ex.model : ex.responseModel)
    this.changed = changed
    const tokens = this.tokensOf(ex.usage)
    if (json) {
      return (
        `{"time":"${time}","level":"info","message":"access","request_id":${jsonString(ex.requestId)}${this.middle}` +
        `${ex.status},"bytes_in":${ex.bytesIn},"bytes_out":${ex.bytesOut},"duration_ms":${jsonMs(durationMs)}` +
        `,"ttfb_ms":${jsonMs(ex.ttfbMs)},"ttft_ms":${jsonMs(ex.ttftMs)},"attempts":${ex.attempts},"model":${model}` +
        `${tokens},"outcome":"${ex.outcome}"}\n`
      )
    }
    return (
      `${time} INFO access request_id=${textString(ex.requestId)}${this.middle}${ex.status} bytes_in=${ex.bytesIn}` +
      ` bytes_out=${ex.bytesOut} duration_ms=${textMs(durationMs)} ttfb_ms=${textMs(ex.ttfbMs)}` +
      ` ttft_ms=${textMs(ex.ttftMs)} attempts=${ex.attempts} model=${model}${tokens} outcome=${ex.outcome}\n`
    )
  }
}

export interface AccessLog {
  readonly write: (e: AccessLogEntry) => void
  /** The line of an ended exchange (the request path's way: the same text as `write(entryOf(ex, durationMs))`). */
  readonly writeExchange: (ex: AccessSource, durationMs: number) => void
  /** Writes what is pending now (at shutdown). */
  readonly flush: () => void
}

/** "000" to "999": an ISO time's milliseconds. */
const MILLIS: ReadonlyArray<string> = Array.from({ length: 1000 }, (_, i) => String(i).padStart(3, "0"))

/** Pending text past which the writer writes at once instead of waiting for its timer. */
export const ACCESS_LOG_BUFFER = 64 * 1024
/** Room past ACCESS_LOG_BUFFER in the batch buffer, so that a usual line (a few hundred bytes) always fits. */
const LINE_ROOM = 16 * 1024

/**
 * An access log writing to `out` (stdout by default). With `flushMs` 0 the lines of one event-loop turn are
 * joined and written once, after the turn; with `flushMs` > 0 they are written at most that long after the first
 * one waiting, or at once past ACCESS_LOG_BUFFER (nginx's `access_log … buffer= flush=`): stdout on a file or pipe
 * is a synchronous write per call in Node, so at one request per turn (a single client) a write per line would
 * cost a system call per request. `flush` writes what is pending (at shutdown).
 */
export const makeAccessLog = (
  format: "json" | "text",
  out: (chunk: string) => void = (chunk) => process.stdout.write(chunk),
  flushMs = 0,
  outBytes?: (bytes: Uint8Array) => void
): AccessLog => {
  let pending = ""
  // With `outBytes` (stdout), each line is encoded into one reused buffer as it comes and the batch is written from
  // there: the batch never lives as a long string of many pieces that survives scavenges and is flattened and
  // encoded again at the write. `outBytes` is done with the bytes when it returns (a synchronous write, or a copy).
  const batch = outBytes === undefined ? undefined : Buffer.allocUnsafe(ACCESS_LOG_BUFFER + LINE_ROOM)
  let used = 0
  let scheduled = false
  let timer: ReturnType<typeof setTimeout> | undefined
  // Many lines end within one millisecond under load: their ISO time is built once.
  let lastTime = -1
  let lastIso = ""
  // ... and within one second, only its milliseconds change: `2026-01-02T03:04:05.` is built once a second.
  let lastSecond = Number.NaN
  let secondIso = ""
  const flush = () => {
    scheduled = false
    if (timer !== undefined) {
      clearTimeout(timer)
      timer = undefined
    }
    if (batch !== undefined && used > 0) {
      const n = used
      used = 0
      outBytes!(batch.subarray(0, n))
    }
    if (pending === "") return
    const chunk = pending
    pending = ""
    out(chunk)
  }
  const formatter = new ExchangeFormatter(format === "json")
  // The ISO time of now (many lines end within one millisecond under load: built once).
  const isoOf = (time: number): string => {
    if (time !== lastTime) {
      lastTime = time
      const ms = time % 1000
      const second = time - ms
      // toISOString's range (years 0-9999, whole ms); anything else (never from Date.now) the long way
      if (time < 0 || !Number.isInteger(time) || time >= 253402300800000) lastIso = new Date(time).toISOString()
      else {
        if (second !== lastSecond) {
          lastSecond = second
          secondIso = new Date(second).toISOString().slice(0, 20)
        }
        lastIso = `${secondIso}${MILLIS[ms]}Z`
      }
    }
    return lastIso
  }
  const put = (line: string): void => {
    if (batch === undefined) {
      pending += line
      if (pending.length >= ACCESS_LOG_BUFFER) return flush()
    } else {
      // A UTF-16 unit takes at most 3 bytes: a line that might not fit goes after the batch (alone if it is huge).
      if (used + line.length * 3 > batch.length) {
        flush()
        if (line.length * 3 > batch.length) return outBytes!(Buffer.from(line))
      }
      used += batch.write(line, used)
      if (used >= ACCESS_LOG_BUFFER) return flush()
    }
    if (!scheduled) {
      scheduled = true
      if (flushMs <= 0) setImmediate(flush)
      else {
        timer = setTimeout(flush, flushMs)
        timer.unref()
      }
    }
  }
  return {
    write: (e) => put(formatWithTime(format, e, isoOf(e.time))),
    writeExchange: (ex, durationMs) => put(formatter.line(ex, durationMs, isoOf(Date.now()))),
    flush
  }
}
