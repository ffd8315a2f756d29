// OpenAI chat-completions stream usage injection, response side: removes exactly the usage-only chunk
// (`"choices":[]` with a `usage` object) that the upstream sent because the proxy asked for it (inject.ts), and
// passes every other byte through unchanged and unsplit where possible. It works on SSE units (the bytes up to
// and including a blank line), whatever the chunk boundaries: a unit is held only while it could still be the
// usage chunk, i.e. until its `"choices"` value shows a first element (almost always within the same chunk).
//
// What else differs for the client: with `include_usage` the upstream also writes `"usage":null` in every other
// chunk (the API does this by design); those bytes reach the client as the upstream sent them. The OpenAI SDKs
// type `usage` as optional and nullable, so a client sees the same values as without the proxy.
// Lines end in LF or CRLF (what OpenAI sends); a unit with CR-only line ends is never recognized and passes
// through once it grows past 64 KiB or the stream ends.
import { Transform, type TransformCallback } from "node:stream"
import { findObject } from "./scan.js"

const LF = 0x0a
const CR = 0x0d
const CHOICES = Buffer.from('"choices"')
const USAGE = Buffer.from('"usage"')
const DATA = Buffer.from("data:")
const MAX_HELD = 64 * 1024

export interface ChunkSink {
  push(chunk: Buffer): void
}

const isWs = (c: number): boolean => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09

/** "pass" when the unit's `choices` has an element, "empty" when it is `[]`, "unknown" while not yet readable. */
const choicesState = (unit: Buffer): "pass" | "empty" | "unknown" => {
  const at = unit.indexOf(CHOICES)
  if (at < 0) return "unknown"
  let i = at + CHOICES.length
  while (i < unit.length && isWs(unit[i])) i++
  if (i >= unit.length) return "unknown"
  if (unit[i] !== 0x3a) return "pass"
  i++
  while (i < unit.length && isWs(unit[i])) i++
  if (i >= unit.length) return "unknown"
  if (unit[i] !== 0x5b) return "pass"
  i++
  while (i < unit.length && isWs(unit[i])) i++
  if (i >= unit.length) return "unknown"
  return unit[i] === 0x5d ? "empty" : "pass"
}

/** A complete unit that is the usage-only chunk. */
export const isUsageOnlyChunk = (unit: Buffer): boolean =>
  unit.indexOf(DATA) >= 0 &&
  choicesState(unit) === "empty" &&
  findObject(unit, USAGE, 0, unit.length, true) !== undefined

/**
 * The same filter without a stream around it, for a caller that already has the chunks in hand (the request
 * path's response relay): `filter` each chunk in order, send what it returns (undefined: nothing now), and send
 * `flush()`'s bytes before the end.
 */
export class UsageChunkFilter {
  /** bytes of the current unit not yet passed on (only while undecided) */
  private held: Buffer[] = []
  private heldBytes = 0
  /** the current unit is known not to be the usage chunk: its bytes pass as they come */
  private passing = false
  /** bytes of the current line seen so far, and its first byte (a blank line is "" or "\r") */
  private lineLen = 0
  private lineFirst = 0
  /** usage-only chunks removed so far */
  removed = 0

  /** What is still held at the end of the stream (an unfinished unit), or undefined. */
  flush(): Buffer | undefined {
    const rest = this.held.length === 0 ? undefined : this.finishUnit(Buffer.concat(this.held))
    this.held = []
    this.heldBytes = 0
    return rest
  }

  /** The unit's bytes if they are to be sent, else undefined (the usage chunk). */
  private finishUnit(unit: Buffer): Buffer | undefined {
    if (isUsageOnlyChunk(unit)) {
      this.removed++
      return undefined
    }
    return unit
  }

  /** Index just past the blank line that ends the current unit, or -1 if it does not end in `buf[from..]`. */
  private unitEnd(buf: Buffer, from: number): number {
    let p = from
    for (;;) {
      const lf = buf.indexOf(LF, p)
      if (lf < 0) {
        if (buf.length > p) {
          if (this.lineLen === 0) this.lineFirst = buf[p]
          this.lineLen += buf.length - p
        }
        return -1
      }
      const n = this.lineLen + (lf - p)
      const first = this.lineLen === 0 ? buf[p] : this.lineFirst
      this.lineLen = 0
      if (n === 0 || (n === 1 && first === CR)) return lf + 1
      p = lf + 1
    }
  }

  /** What of `buf` goes to the client (`buf` itself when all of it), or undefined for nothing now. */
  filter(buf: Buffer): Buffer | undefined {
    let out: Buffer[] | undefined
    let i = 0
    let whole = true
    const emit = (b: Buffer): void => {
      if (b.length === 0) return
      if (out === undefined) out = [b]
      else out.push(b)
    }
    while (i < buf.length) {
      const end = this.unitEnd(buf, i)
      const stop = end < 0 ? buf.length : end
      if (this.passing) {
        emit(buf.subarray(i, stop))
      } else {
        const part = buf.subarray(i, stop)
        let unit: Buffer
        if (this.held.length === 0) unit = part
        else {
          this.held.push(part)
          unit = Buffer.concat(this.held, this.heldBytes + part.length)
          this.held = []
          this.heldBytes = 0
          whole = false
        }
        if (end >= 0) {
          const kept = this.finishUnit(unit)
          if (kept === undefined) whole = false
          else emit(kept)
        } else if (choicesState(unit) === "pass" || unit.length > MAX_HELD) {
          this.passing = true
          emit(unit)
        } else {
          this.held = [unit]
          this.heldBytes = unit.length
          whole = false
        }
      }
      if (end >= 0) this.passing = false
      i = stop
    }
    if (out === undefined) return undefined
    // Nothing held from before, nothing removed, nothing held back: the chunk passes as it came.
    if (whole) return buf
    return out.length === 1 ? out[0] : Buffer.concat(out)
  }
}

export class StripUsageChunk extends Transform {
  private readonly f = new UsageChunkFilter()

  /** `tap` (the usage tap) sees every upstream chunk, the removed one included. */
  constructor(private readonly tap?: ChunkSink) {
    super()
  }

  /** usage-only chunks removed so far */
  get removed(): number {
    return this.f.removed
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    if (this.tap !== undefined) {
      try {
        this.tap.push(chunk)
      } catch {
        // the tap is a side path
      }
    }
    done(null, this.f.filter(chunk))
  }

  override _flush(done: TransformCallback): void {
    done(null, this.f.flush())
  }
}
