// OpenAI chat-completions stream usage injection, request side (SPEC §10 `usage.inject_openai_stream_usage`):
// a streamed chat request that did not ask for `stream_options.include_usage: true` gets it added, so the
// upstream sends the final usage chunk (which strip.ts then removes from what the client receives).
// Every other byte of the body stays as the client sent it: the new key is inserted right after the opening
// brace, or only the `stream_options` value is rewritten. A body that is not a JSON object with `"stream": true`
// (or not valid JSON at all) is left alone.
import { valueEnd } from "./scan.js"

const STREAM = Buffer.from('"stream"')
const INSERT = Buffer.from('"stream_options":{"include_usage":true},')
const STREAM_OPTIONS = "stream_options"

const isWs = (c: number): boolean => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09
const skipWs = (buf: Buffer, i: number): number => {
  while (i < buf.length && isWs(buf[i])) i++
  return i
}

/** Index just past the JSON string that starts at `i` (its opening quote). */
const stringEnd = (buf: Buffer, i: number): number => {
  i++
  while (i < buf.length) {
    const c = buf[i]
    if (c === 0x5c) i += 2
    else if (c === 0x22) return i + 1
    else i++
  }
  return -1
}

/** Index just past the scalar (number, true, false, null) at `i`. */
const scalarEnd = (buf: Buffer, i: number): number => {
  while (i < buf.length && buf[i] !== 0x2c && buf[i] !== 0x7d && !isWs(buf[i])) i++
  return i
}

interface TopLevel {
  /** index of the top-level opening brace */
  open: number
  /** the value span of the last top-level `stream_options` key, if any */
  options?: { start: number; end: number }
}

/** Walks the keys of a (valid: the caller parsed it) top-level JSON object. */
const scanTopLevel = (buf: Buffer): TopLevel | undefined => {
  const open = skipWs(buf, 0)
  if (buf[open] !== 0x7b) return undefined
  const top: TopLevel = { open }
  let i = skipWs(buf, open + 1)
  while (i < buf.length && buf[i] === 0x22) {
    const keyEnd = stringEnd(buf, i)
    if (keyEnd < 0) return undefined
    const isOptions =
      keyEnd - i === STREAM_OPTIONS.length + 2 && buf.toString("latin1", i + 1, keyEnd - 1) === STREAM_OPTIONS
    i = skipWs(buf, keyEnd)
    if (buf[i] !== 0x3a) return undefined
    const start = skipWs(buf, i + 1)
    const c = buf[start]
    const end =
      c === 0x7b || c === 0x5b
        ? valueEnd(buf, start, buf.length)
        : c === 0x22
          ? stringEnd(buf, start)
          : scalarEnd(buf, start)
    if (end < 0) return undefined
    if (isOptions) top.options = { start, end }
    i = skipWs(buf, end)
    if (buf[i] !== 0x2c) break
    i = skipWs(buf, i + 1)
  }
  return top
}

/**
 * Whether some `"stream"` key in `body` is followed by `: true` (whitespace allowed): a byte scan, no parse. From
 * the end: SDKs write `stream` after the messages, and Node's `lastIndexOf` also runs about three times faster
 * than `indexOf` over a body without the key (measured on Node 20, 1 KiB: 0.2 µs against 0.6 µs).
 */
export const mayStream = (body: Buffer): boolean => {
  let at = body.lastIndexOf(STREAM)
  while (at >= 0) {
    let i = skipWs(body, at + STREAM.length)
    if (body[i] === 0x3a) {
      i = skipWs(body, i + 1)
      if (body[i] === 0x74 && body[i + 1] === 0x72 && body[i + 2] === 0x75 && body[i + 3] === 0x65) return true
    }
    if (at === 0) return false
    at = body.lastIndexOf(STREAM, at - 1)
  }
  return false
}

/**
 * For a chat-completions (or legacy completions) request body: a new body asking for stream usage, or undefined
 * when the body needs no change (not streamed, usage already asked for, not a JSON object, invalid JSON).
 * The caller sends the new body with its new Content-Length, and strips the usage chunk from the response
 * (strip.ts) only when this returned a body. A body with a `content-encoding` must not be passed here.
 */
export const injectStreamUsage = (body: Buffer): Buffer | undefined => {
  // Cheap exit for the common non-streamed request (no `"stream"` key, or `"stream": false`): the body is parsed
  // only when some `"stream"` key has the value `true`.
  if (!mayStream(body)) return undefined
  let json: unknown
  try {
    json = JSON.parse(body.toString("utf8"))
  } catch {
    return undefined
  }
  if (json === null || typeof json !== "object" || Array.isArray(json)) return undefined
  const req = json as Record<string, unknown>
  if (req.stream !== true) return undefined
  const options = req.stream_options
  if (options !== undefined && options !== null && (typeof options !== "object" || Array.isArray(options))) {
    return undefined // invalid stream_options: the upstream answers 400, as without the proxy
  }
  if (options !== undefined && options !== null && (options as Record<string, unknown>).include_usage === true) {
    return undefined
  }
  const top = scanTopLevel(body)
  if (top === undefined) return undefined
  if (options === undefined || top.options === undefined) {
    const at = top.open + 1
    return Buffer.concat([body.subarray(0, at), INSERT, body.subarray(at)])
  }
  const value = Buffer.from(JSON.stringify({ ...(options ?? {}), include_usage: true }))
  return Buffer.concat([body.subarray(0, top.options.start), value, body.subarray(top.options.end)])
}
