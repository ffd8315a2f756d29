// The relayed response body's way to the client, one write per upstream chunk (never batched, never delayed:
// an SSE event leaves as soon as it came). On HTTP/1.1, Node's `ServerResponse.write` frames a chunked body as four
// socket writes (size line, CRLF, data, CRLF) under a cork it releases on the next tick: per SSE event four
// `Writable.write` calls, a `process.nextTick` and a `writev` of four buffers, about a tenth of the proxy's busy
// time at thousands of streams (issue 17's S6 profile). Once the response's head is on its socket, this writes the
// same bytes (the same lower-case hex size line) to the socket itself: a small chunk as one framed buffer (one
// `write`), a large one as three writes under a cork released at once (one `writev`, no copy). The response keeps
// its own state: its terminating chunk, trailers and `finish` still come from `res.end()`, after these bytes.
// Everything else goes through `res.write` as before: HTTP/2, a head not yet sent, a body Node does not frame as
// chunked (Content-Length, HTTP/1.0, HEAD, 204/304), a socket not (yet) this response's.
import type * as http from "node:http"
import type { ClientResponse } from "./respond.js"

/** Chunks up to this size are copied into one framed buffer (Buffer.allocUnsafe's pool serves up to 4 KiB). */
const COPY_MAX = 4000
const CRLF = Buffer.from("\r\n")
/** '0'–'9', 'a'–'f' */
const HEX = Buffer.from("0123456789abcdef")

/** Digits of `n` in hexadecimal (n > 0). */
const hexDigits = (n: number): number => {
  let d = 1
  for (let v = n >>> 4; v > 0; v >>>= 4) d++
  return d
}

/** Writes `n` in lower-case hexadecimal into `buf[0, digits)`. */
const writeHex = (buf: Buffer, n: number, digits: number): void => {
  for (let i = digits - 1, v = n; i >= 0; i--, v >>>= 4) buf[i] = HEX[v & 15]
}

/** `<hex size>\r\n<chunk>\r\n` in one buffer. */
export const frameChunk = (chunk: Buffer): Buffer => {
  const len = chunk.length
  const d = hexDigits(len)
  const out = Buffer.allocUnsafe(d + len + 4)
  writeHex(out, len, d)
  out[d] = 0x0d
  out[d + 1] = 0x0a
  out.set(chunk, d + 2)
  out[d + 2 + len] = 0x0d
  out[d + 3 + len] = 0x0a
  return out
}

/** `<hex size>\r\n` alone (large chunks). */
const sizeLine = (len: number): Buffer => {
  const d = hexDigits(len)
  const out = Buffer.allocUnsafe(d + 2)
  writeHex(out, len, d)
  out[d] = 0x0d
  out[d + 1] = 0x0a
  return out
}

/**
 * Node's own fields (the same on Node 20, 22 and 24): `chunkedEncoding`, whether Node frames this body as chunked;
 * `_headerSent`, whether the head went to the socket (`headersSent` is already true after `writeHead`, before
 * anything was written). Either one missing in a later Node only turns the direct path off.
 */
type H1Response = http.ServerResponse & { chunkedEncoding?: boolean; _headerSent?: boolean }

/**
 * Writes one body chunk to the client. Returns false when the client's side is full: `onDrain` is then called
 * once when it has room again (the caller pauses the upstream until then).
 */
export const writeBody = (res: ClientResponse, isH2: boolean, chunk: Buffer, onDrain: () => void): boolean => {
  if (!isH2 && chunk.length > 0) {
    const h1 = res as H1Response
    const socket = h1.socket
    // `socket` is only set while this response owns it (Node assigns it in turn to pipelined responses, and
    // detaches it at the end); `_headerSent` with a socket means the head and every byte before went to it.
    if (
      socket !== null &&
      h1.chunkedEncoding === true &&
      h1._headerSent === true &&
      !h1.writableEnded &&
      socket.writable
    ) {
      let ok: boolean
      if (chunk.length <= COPY_MAX) ok = socket.write(frameChunk(chunk))
      else {
        socket.cork()
        socket.write(sizeLine(chunk.length))
        socket.write(chunk)
        ok = socket.write(CRLF)
        socket.uncork()
      }
      if (!ok) socket.once("drain", onDrain)
      return ok
    }
  }
  if ((res as NodeJS.WritableStream).write(chunk)) return true
  res.once("drain", onDrain)
  return false
}
