// Usage tap for a server-sent-events response: OpenAI chat/completions (the final usage chunk), OpenAI Responses
// (`response.completed` / `.incomplete` / `.failed`), Anthropic (`message_start` merged with `message_delta`) and
// Gemini `streamGenerateContent?alt=sse` (`usageMetadata` in every chunk, cumulative: the last one wins).
//
// Cost per chunk is one search for the usage key (`"usage"` / `"usageMetadata"`: a JS Horspool scan for an event-
// sized chunk, native `indexOf` for a large one): a data line is looked at only when it holds the key, and then only
// that key's object is parsed, never the whole event. Until the first content event and the response model are
// found, lines are also read one by one (usually the first one or two events). Chunk boundaries do not matter: an
// incomplete last line is carried into the next chunk.
//
// Time to first token is the time `push` saw the first event that carries generated output:
// - OpenAI chat/completions: a chunk with a non-empty `content`, `refusal`, `reasoning_content`, `reasoning` or
//   (legacy completions) `text` string, or `tool_calls` / `function_call` / `audio` (the role-only first chunk,
//   whose content is "", is not);
// - OpenAI Responses: the first event whose type ends in `.delta` (output text, reasoning, refusal, tool arguments,
//   audio);
// - Anthropic: the first `content_block_delta` (text, thinking or tool input);
// - Gemini: the first chunk with content `parts`.
// Events are assumed to carry their JSON on one `data:` line, as all three providers send them. Lines end in LF or
// CRLF (a CR stays at the end of the line, where JSON allows whitespace); every search goes forward from the last
// position or back to the nearest LF, so a chunk costs time linear in its size. CR-only line ends (allowed by the
// SSE format, sent by no provider) are not recognized: such a stream reports no usage.

import type { UsageResult } from "./json.js"
import { findObject, findString, firstType } from "./scan.js"
import { fromAnthropic, fromGemini, fromOpenAI, mergeAnthropic, modelLabel, parseObject, type Usage } from "./usage.js"

export type StreamKind = "openai-chat" | "openai-responses" | "anthropic" | "gemini"

export interface SseUsageResult extends UsageResult {
  /** `now()` when the first content event was seen (see the module comment), undefined if none was */
  firstContentAt: number | undefined
}

const USAGE = Buffer.from('"usage"')
const USAGE_METADATA = Buffer.from('"usageMetadata"')
const MODEL = Buffer.from('"model"')
const MODEL_VERSION = Buffer.from('"modelVersion"')
const PARTS = Buffer.from('"parts"')
const CHAT_CONTENT =
  /"(?:content|refusal|reasoning_content|reasoning|text)"\s*:\s*"(?!")|"(?:tool_calls|function_call|audio)"\s*:\s*[[{]/
/** A line longer than this (a huge `response.completed`) is skipped rather than held. */
const MAX_LINE = 16 * 1024 * 1024

const LF = 0x0a

const isDataLine = (buf: Buffer, s: number, e: number): boolean =>
  e - s >= 5 &&
  buf[s] === 0x64 &&
  buf[s + 1] === 0x61 &&
  buf[s + 2] === 0x74 &&
  buf[s + 3] === 0x61 &&
  buf[s + 4] === 0x3a

/** Whether `: {` (whitespace allowed) follows at `i`. */
const objectFollows = (buf: Buffer, i: number, e: number): boolean => {
  while (i < e && (buf[i] === 0x20 || buf[i] === 0x09)) i++
  if (buf[i] !== 0x3a) return false
  i++
  while (i < e && (buf[i] === 0x20 || buf[i] === 0x09)) i++
  return buf[i] === 0x7b
}

/** Boyer–Moore–Horspool shifts of a marker: per byte, how far the window may move when it ends on that byte. */
export const shiftTable = (marker: Buffer): Uint8Array => {
  const t = new Uint8Array(256).fill(marker.length)
  for (let i = 0; i < marker.length - 1; i++) t[marker[i]] = marker.length - 1 - i
  return t
}

/**
 * Spans up to this many bytes are searched in JS: a native `Buffer#indexOf` call costs ~0.4–0.6 µs whatever the
 * size (argument checks, the C++ binding), a Horspool scan of a ~130-byte SSE event ~0.1 µs (5 bytes per step for
 * `"usage"`); past ~1 KiB the native search wins.
 */
const JS_SCAN_MAX = 1024

/** The first `marker` lying wholly in `buf[from, to)`, or -1 (`shift`: its shiftTable). */
export const findMarker = (buf: Buffer, marker: Buffer, shift: Uint8Array, from: number, to: number): number => {
  const last = marker.length - 1
  if (to - from > JS_SCAN_MAX) {
    const p = buf.indexOf(marker, from)
    return p >= 0 && p + last < to ? p : -1
  }
  const end = marker[last]
  for (let i = from + last; i < to; i += shift[buf[i]]) {
    if (buf[i] !== end) continue
    let j = 1
    while (j <= last && buf[i - j] === marker[last - j]) j++
    if (j > last) return i - last
  }
  return -1
}

const USAGE_SHIFT = shiftTable(USAGE)
const USAGE_METADATA_SHIFT = shiftTable(USAGE_METADATA)

/** Index of the first LF at or after `from`, or -1. */
const firstEol = (buf: Buffer, from: number): number => buf.indexOf(LF, from)

/** One per response: `push` every chunk as it passes to the client, `finish` once at the end. Never throws. */
export class SseUsageTap {
  private readonly marker: Buffer
  private readonly shift: Uint8Array
  private readonly modelKey: Buffer
  private carry: Buffer[] | undefined
  private carryBytes = 0
  private skipping = false
  private firstContentAt: number | undefined
  private model: string | undefined
  private openai: Usage | undefined
  private anthropic: Record<string, unknown> | undefined
  private gemini: Buffer | undefined

  constructor(
    private readonly kind: StreamKind,
    private readonly now: () => number = () => performance.now()
  ) {
    this.marker = kind === "gemini" ? USAGE_METADATA : USAGE
    this.shift = kind === "gemini" ? USAGE_METADATA_SHIFT : USAGE_SHIFT
    this.modelKey = kind === "gemini" ? MODEL_VERSION : MODEL
  }

  /** True once a content event has been pushed (the first-token deadline of SPEC §11 watches this). */
  get contentSeen(): boolean {
    return this.firstContentAt !== undefined
  }

  push(chunk: Buffer): void {
    try {
      this.take(chunk)
    } catch {
      // A tap must never break the response it watches.
    }
  }

  private take(chunk: Buffer): void {
    let from = 0
    if (this.carry !== undefined || this.skipping) {
      const eol = firstEol(chunk, 0)
      if (eol < 0) {
        this.hold(chunk)
        return
      }
      if (this.skipping) this.skipping = false
      else {
        this.carry?.push(chunk.subarray(0, eol))
        const line = Buffer.concat(this.carry ?? [])
        this.carry = undefined
        this.carryBytes = 0
        this.lines(line, 0, line.length)
      }
      from = eol + 1
    }
    const last = chunk[chunk.length - 1] === LF ? chunk.length - 1 : chunk.lastIndexOf(LF)
    if (last >= from) this.lines(chunk, from, last)
    const rest = Math.max(last + 1, from)
    if (rest < chunk.length) this.hold(chunk.subarray(rest))
  }

  /** Keeps an incomplete line for the next chunk (a reference, not a copy). */
  private hold(part: Buffer): void {
    if (this.skipping) return
    this.carryBytes += part.length
    if (this.carryBytes > MAX_LINE) {
      this.carry = undefined
      this.carryBytes = 0
      this.skipping = true
      return
    }
    if (this.carry === undefined) this.carry = [part]
    else this.carry.push(part)
  }

  /** Complete lines in `buf[s, e)`. */
  private lines(buf: Buffer, s: number, e: number): void {
    if (this.firstContentAt === undefined || this.model === undefined) this.firstLines(buf, s, e)
    const m = this.marker.length
    let p = findMarker(buf, this.marker, this.shift, s, e)
    while (p >= 0) {
      // Most hits are `"usage":null` (OpenAI chat with include_usage): skip them before finding their line.
      if (!objectFollows(buf, p + m, e)) {
        p = findMarker(buf, this.marker, this.shift, p + m, e)
        continue
      }
      const ls = Math.max(s, buf.lastIndexOf(LF, p) + 1)
      let le = firstEol(buf, p)
      if (le < 0 || le > e) le = e
      if (isDataLine(buf, ls, le)) this.usageLine(buf, p, le)
      p = findMarker(buf, this.marker, this.shift, le, e)
    }
  }

  /** Line by line, until the first content event and the response model are known. */
  private firstLines(buf: Buffer, s: number, e: number): void {
    let ls = s
    while (ls < e) {
      let le = firstEol(buf, ls)
      if (le < 0 || le > e) le = e
      if (isDataLine(buf, ls, le)) {
        if (this.model === undefined) this.model = findString(buf, this.modelKey, ls, le)
        if (this.firstContentAt === undefined && this.isContent(buf, ls, le)) this.firstContentAt = this.now()
        if (this.model !== undefined && this.firstContentAt !== undefined) return
      }
      ls = le + 1
    }
  }

  private isContent(buf: Buffer, s: number, e: number): boolean {
    switch (this.kind) {
      case "openai-chat":
        return CHAT_CONTENT.test(buf.toString("latin1", s, e))
      case "openai-responses":
        return firstType(buf, s, e)?.endsWith(".delta") === true
      case "anthropic":
        return firstType(buf, s, e) === "content_block_delta"
      case "gemini": {
        return buf.subarray(s, e).indexOf(PARTS) >= 0
      }
    }
  }

  /** A data line with the usage key at `s` (and maybe again later in the line: the last one is the top-level one). */
  private usageLine(buf: Buffer, s: number, e: number): void {
    const span = findObject(buf, this.marker, s, e, true)
    if (span === undefined) return
    if (this.kind === "gemini") {
      // Cumulative in every chunk: keep the last one's bytes, parse once at the end.
      this.gemini = buf.subarray(span.start, span.end)
      return
    }
    const raw = parseObject(buf.toString("utf8", span.start, span.end))
    if (raw === undefined) return
    if (this.kind === "anthropic") this.anthropic = mergeAnthropic(this.anthropic ?? {}, raw)
    else this.openai = fromOpenAI(raw)
  }

  /** The usage seen so far (also after a client abort); a last line without its line break is counted too. */
  finish(): SseUsageResult {
    if (this.carry !== undefined) {
      const line = Buffer.concat(this.carry)
      this.carry = undefined
      this.carryBytes = 0
      try {
        this.lines(line, 0, line.length)
      } catch {
        // as in push
      }
    }
    let usage: Usage | undefined
    if (this.kind === "gemini") {
      const raw = this.gemini === undefined ? undefined : parseObject(this.gemini.toString("utf8"))
      usage = raw === undefined ? undefined : fromGemini(raw)
    } else if (this.kind === "anthropic")
      usage = this.anthropic === undefined ? undefined : fromAnthropic(this.anthropic)
    else usage = this.openai
    return { usage, responseModel: modelLabel(this.model), firstContentAt: this.firstContentAt }
  }
}
