// Byte-level helpers that find one key's value in JSON text without parsing the rest: the usage taps parse only
// the small usage object of a large response or event. A key is matched with its quotes (`"usage"`), which cannot
// occur unescaped inside a JSON string, so a hit is a real key (at some depth: callers pick the right one).

const isWs = (c: number): boolean => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09

/** Index of the first non-whitespace byte at or after `i` (or `end`). */
const skipWs = (buf: Uint8Array, i: number, end: number): number => {
  while (i < end && isWs(buf[i])) i++
  return i
}

/** Index just past the JSON object or array that starts at `start` (`{` or `[`), or -1 if it is not closed by `end`. */
export const valueEnd = (buf: Uint8Array, start: number, end: number): number => {
  let depth = 0
  let i = start
  while (i < end) {
    const c = buf[i]
    if (c === 0x22) {
      // a string: skip to its closing quote
      i++
      while (i < end) {
        const s = buf[i]
        if (s === 0x5c) i += 2
        else if (s === 0x22) break
        else i++
      }
    } else if (c === 0x7b || c === 0x5b) depth++
    else if (c === 0x7d || c === 0x5d) {
      depth--
      if (depth === 0) return i + 1
    }
    i++
  }
  return -1
}

/** Where the value of the key at `at` (the index of its opening quote, `keyLen` bytes long) starts, or -1. */
const valueStart = (buf: Uint8Array, at: number, keyLen: number, end: number): number => {
  let i = skipWs(buf, at + keyLen, end)
  if (buf[i] !== 0x3a) return -1
  i = skipWs(buf, i + 1, end)
  return i < end ? i : -1
}

export interface Span {
  start: number
  end: number
}

/**
 * The object value of `key` (given with its quotes) in `buf[from, end)`: the last occurrence whose value is an
 * object (`last`), else the first. Occurrences whose value is not an object (`"usage":null`) are skipped.
 */
export const findObject = (buf: Buffer, key: Buffer, from: number, end: number, last: boolean): Span | undefined => {
  if (end - key.length < from) return undefined
  let at = last ? buf.lastIndexOf(key, end - key.length) : buf.indexOf(key, from)
  while (at >= from && at + key.length <= end) {
    const v = valueStart(buf, at, key.length, end)
    if (v >= 0 && buf[v] === 0x7b) {
      const e = valueEnd(buf, v, end)
      if (e > 0) return { start: v, end: e }
    }
    at = last ? (at === 0 ? -1 : buf.lastIndexOf(key, at - 1)) : buf.indexOf(key, at + 1)
  }
  return undefined
}

/** Bytes scanned in JS before a key search goes native: most keys sought are near the start (a request's `model`). */
const NEAR = 128

/**
 * `buf.indexOf(key, from)`, the first NEAR bytes searched in JS: a native call costs ~100 ns before it reads a
 * byte, a JS scan ~1 ns a byte (a `"model"` 4 bytes into a request: ~30 ns instead of ~110).
 */
export const indexOfKey = (buf: Buffer, key: Buffer, from: number): number => {
  const n = key.length
  const k0 = key[0]
  const near = Math.min(buf.length - n, from + NEAR)
  outer: for (let i = from; i <= near; i++) {
    if (buf[i] !== k0) continue
    for (let j = 1; j < n; j++) if (buf[i + j] !== key[j]) continue outer
    return i
  }
  return near >= buf.length - n ? -1 : buf.indexOf(key, near + 1)
}

/** The last string a `findString` returned: the same string again while the next value has the same bytes. */
export class StringMemo {
  last = ""
  /** `buf[start, end)` as a latin1 string, the last one itself when the bytes are its characters. */
  read(buf: Buffer, start: number, end: number): string {
    const last = this.last
    if (end - start === last.length) {
      let i = 0
      while (i < last.length && buf[start + i] === last.charCodeAt(i)) i++
      if (i === last.length && i > 0) return last
    }
    this.last = buf.toString("latin1", start, end)
    return this.last
  }
}

/**
 * The first string value of `key` in `buf[from, end)`, when it is at most 200 bytes and has no escapes. With
 * `memo`, a value equal to the last one read through it is that same string (no new string per call).
 */
export const findString = (
  whole: Buffer,
  key: Buffer,
  from: number,
  end: number,
  memo?: StringMemo
): string | undefined => {
  // A view that ends at `end`, so a missing key costs a search of this range, not of the rest of the buffer.
  const buf = end < whole.length ? whole.subarray(0, end) : whole
  let at = indexOfKey(buf, key, from)
  while (at >= 0 && at + key.length <= end) {
    const v = valueStart(buf, at, key.length, end)
    if (v >= 0 && buf[v] === 0x22) {
      // the closing quote within 201 bytes, and no backslash before it (an escape: not read)
      const stop = Math.min(end, v + 202)
      let close = v + 1
      while (close < stop && buf[close] !== 0x22) {
        if (buf[close] === 0x5c) return undefined
        close++
      }
      if (close === stop) return undefined
      return memo === undefined ? buf.toString("latin1", v + 1, close) : memo.read(buf, v + 1, close)
    }
    at = buf.indexOf(key, at + 1)
  }
  return undefined
}

/** The string value that follows the first `"type"` key in `buf[from, end)` (the event type of an SSE data line). */
export const firstType = (buf: Buffer, from: number, end: number): string | undefined =>
  findString(buf, TYPE, from, end)

const TYPE = Buffer.from('"type"')
