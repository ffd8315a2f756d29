// Usage tap for the OpenAI Realtime API over WebSocket: it watches the server-to-client bytes the proxy relays
// (after the handshake), finds the `response.done` events and sums their `response.usage`; `session.created` /
// `session.updated` give the model. The relay itself stays a byte copy; this runs beside it.
//
// Why a frame parser here: `ws` (and every other WebSocket library) parses frames only as an endpoint that owns
// the socket; its Receiver is not a public API and would have to own flow control. A passive reader needs only
// RFC 6455 §5.2 framing (FIN/RSV1/opcode, 7/16/64-bit lengths, an optional mask, control frames between
// fragments) plus RFC 7692 permessage-deflate, whose inflation is node:zlib's (raw inflate with the
// 00 00 ff ff tail, the context kept across messages unless `server_no_context_takeover` was negotiated).
// Compressed messages are inflated one at a time on zlib's thread pool; text messages are kept only when their
// first bytes name an event the tap reads, and every size is bounded.
import { constants, createInflateRaw, type InflateRaw } from "node:zlib"
import { findObject, findString } from "./scan.js"
import { addUsage, fromOpenAI, modelLabel, parseObject, type Usage } from "./usage.js"

export interface DeflateParams {
  enabled: boolean
  /** the server starts every message with an empty compression context */
  serverNoContextTakeover: boolean
}

/** The permessage-deflate parameters of the handshake answer's `Sec-WebSocket-Extensions` header. */
export const parseDeflateExtension = (header: string | undefined): DeflateParams => {
  if (header !== undefined) {
    for (const ext of header.split(",")) {
      const params = ext.split(";").map((p) => p.trim().toLowerCase())
      if (params[0] !== "permessage-deflate") continue
      return { enabled: true, serverNoContextTakeover: params.includes("server_no_context_takeover") }
    }
  }
  return { enabled: false, serverNoContextTakeover: false }
}

export interface RealtimeUsageResult {
  /** the sum over every `response.done` seen; undefined if there was none */
  usage: Usage | undefined
  responseModel: string
  /** `response.done` events counted */
  responses: number
  /**
   * false when the figures are a lower bound: the tap gave up (a frame it cannot read, a limit passed), or a
   * response was still in progress when the session ended (a `response.created` without its `response.done`:
   * its tokens are billed but never reported)
   */
  complete: boolean
}

const TRAILER = Buffer.from([0x00, 0x00, 0xff, 0xff])
const INTERESTING = /"type"\s*:\s*"(?:response\.done|response\.created|session\.created|session\.updated)"/
const USAGE = Buffer.from('"usage"')
const TYPE = Buffer.from('"type"')
const MODEL = Buffer.from('"model"')
const DECIDE_BYTES = 256

/** One text message being read: kept only if its first bytes name an interesting event, and only up to `max`. */
class TextMessage {
  private parts: Buffer[] = []
  private bytes = 0
  /** 0 undecided, 1 kept, 2 ignored */
  private state = 0

  constructor(private readonly max: number) {}

  feed(b: Buffer): void {
    if (this.state === 2 || b.length === 0) return
    this.parts.push(b)
    this.bytes += b.length
    if (this.bytes > this.max) {
      this.state = 2
      this.parts = []
    } else if (this.state === 0 && this.bytes >= DECIDE_BYTES) this.decide()
  }

  private decide(): void {
    const head = this.parts.length === 1 ? this.parts[0] : Buffer.concat(this.parts, this.bytes)
    const prefix = head.toString("latin1", 0, DECIDE_BYTES)
    this.state = INTERESTING.test(prefix) ? 1 : 2
    if (this.state === 2) this.parts = []
  }

  end(): Buffer | undefined {
    if (this.state === 0) this.decide()
    return this.state === 1 ? Buffer.concat(this.parts, this.bytes) : undefined
  }
}

interface Compressed {
  parts: Buffer[]
  text: boolean
}

export interface WsTapOptions {
  /** largest interesting message kept (default 8 MiB) */
  maxMessageBytes?: number
  /** compressed bytes waiting for the inflater at most (default 16 MiB) */
  maxQueuedBytes?: number
}

/** One per WebSocket: `push` every server-to-client chunk after the handshake, `finish` once when it closes. */
export class WsUsageTap {
  private readonly deflate: DeflateParams
  private readonly maxMessage: number
  private readonly maxQueued: number
  // frame header being read (at most 14 bytes)
  private readonly header = Buffer.alloc(14)
  private headerLen = 0
  // payload of the current frame
  private remaining = 0
  private inPayload = false
  private control = false
  private fin = false
  private mask: Buffer | undefined
  private maskOffset = 0
  // current message
  private message: TextMessage | undefined
  private compressed: Compressed | undefined
  private inMessage = false
  // inflation
  private inflater: InflateRaw | undefined
  private readonly queue: Compressed[] = []
  private queuedBytes = 0
  private busy = false
  private inflating: TextMessage | undefined
  private idle: (() => void) | undefined
  // results
  private usage: Usage | undefined
  private responses = 0
  // `response.created` and `response.done` events seen: fewer done than created, a response was cut
  private created = 0
  private ended = 0
  private model: string | undefined
  private failed = false
  private closed = false

  constructor(extensions: string | undefined, opts: WsTapOptions = {}) {
    this.deflate = parseDeflateExtension(extensions)
    this.maxMessage = opts.maxMessageBytes ?? 8 * 1024 * 1024
    this.maxQueued = opts.maxQueuedBytes ?? 16 * 1024 * 1024
  }

  push(chunk: Buffer): void {
    if (this.failed || this.closed) return
    try {
      this.take(chunk)
    } catch {
      this.fail()
    }
  }

  private fail(): void {
    this.failed = true
    this.message = undefined
    this.compressed = undefined
    this.queue.length = 0
    this.inflater?.close()
    this.inflater = undefined
    this.busy = false
    this.idle?.()
  }

  private take(chunk: Buffer): void {
    let i = 0
    while (i < chunk.length && !this.failed && !this.closed) {
      if (!this.inPayload) {
        i = this.readHeader(chunk, i)
        continue
      }
      const n = Math.min(this.remaining, chunk.length - i)
      if (n > 0) this.payload(chunk.subarray(i, i + n))
      i += n
      this.remaining -= n
      if (this.remaining === 0) this.frameEnd()
    }
  }

  /** Reads header bytes from `chunk[i..]`; returns the new index. */
  private readHeader(chunk: Buffer, i: number): number {
    while (i < chunk.length) {
      this.header[this.headerLen++] = chunk[i++]
      const h = this.header
      if (this.headerLen < 2) continue
      const len7 = h[1] & 0x7f
      const masked = (h[1] & 0x80) !== 0
      const extra = len7 === 126 ? 2 : len7 === 127 ? 8 : 0
      const need = 2 + extra + (masked ? 4 : 0)
      if (this.headerLen < need) continue
      let len = len7
      if (len7 === 126) len = h.readUInt16BE(2)
      else if (len7 === 127) {
        const big = h.readBigUInt64BE(2)
        if (big > BigInt(Number.MAX_SAFE_INTEGER)) {
          this.fail()
          return chunk.length
        }
        len = Number(big)
      }
      this.headerLen = 0
      this.startFrame(h[0], len, masked ? Buffer.from(h.subarray(2 + extra, 6 + extra)) : undefined)
      return i
    }
    return i
  }

  private startFrame(b0: number, len: number, mask: Buffer | undefined): void {
    const opcode = b0 & 0x0f
    this.fin = (b0 & 0x80) !== 0
    this.control = opcode >= 8
    this.mask = mask
    this.maskOffset = 0
    this.remaining = len
    this.inPayload = true
    if (opcode === 8) this.closed = true
    else if (opcode === 1 || opcode === 2) {
      if (this.inMessage) return this.fail() // a new message inside a fragmented one
      this.inMessage = true
      const rsv1 = (b0 & 0x40) !== 0
      if (rsv1 && !this.deflate.enabled) return this.fail()
      if (rsv1) this.compressed = { parts: [], text: opcode === 1 }
      else if (opcode === 1) this.message = new TextMessage(this.maxMessage)
    } else if (opcode === 0) {
      if (!this.inMessage) return this.fail()
    } else if (!this.control) return this.fail() // reserved opcode
    if (len === 0) this.frameEnd()
  }

  private payload(data: Buffer): void {
    if (this.control) return
    let bytes = data
    if (this.mask !== undefined) {
      bytes = Buffer.allocUnsafe(data.length)
      for (let k = 0; k < data.length; k++) bytes[k] = data[k] ^ this.mask[(this.maskOffset + k) & 3]
      this.maskOffset = (this.maskOffset + data.length) & 3
    }
    if (this.compressed !== undefined) {
      this.compressed.parts.push(bytes)
      this.queuedBytes += bytes.length
      if (this.queuedBytes > this.maxQueued) this.fail()
    } else this.message?.feed(bytes)
  }

  private frameEnd(): void {
    this.inPayload = false
    if (this.control || !this.fin) return
    this.inMessage = false
    if (this.compressed !== undefined) {
      this.queue.push(this.compressed)
      this.compressed = undefined
      this.pump()
    } else if (this.message !== undefined) {
      const text = this.message.end()
      this.message = undefined
      if (text !== undefined) this.event(text)
    }
  }

  /** Inflates the next queued message (one at a time, so each output belongs to one message). */
  private pump(): void {
    if (this.busy || this.failed) return
    const next = this.queue.shift()
    if (next === undefined) {
      this.idle?.()
      return
    }
    if (this.inflater === undefined) {
      const inflater = createInflateRaw({ windowBits: 15 })
      inflater.on("data", (d: Buffer) => this.inflating?.feed(d))
      inflater.on("error", () => this.fail())
      this.inflater = inflater
    }
    const inflater = this.inflater
    this.busy = true
    this.inflating = next.text ? new TextMessage(this.maxMessage) : undefined
    for (const p of next.parts) {
      this.queuedBytes -= p.length
      inflater.write(p)
    }
    inflater.write(TRAILER)
    inflater.flush(constants.Z_SYNC_FLUSH, () => {
      if (this.failed || this.inflater !== inflater) return
      const text = this.inflating?.end()
      this.inflating = undefined
      this.busy = false
      if (text !== undefined) this.event(text)
      // Not needed to decode (a message that never refers to earlier ones inflates the same with them in the
      // window) but frees the window early, as ws does.
      if (this.deflate.serverNoContextTakeover) inflater.reset()
      this.pump()
    })
  }

  /** A complete interesting event (its first bytes named one). */
  private event(text: Buffer): void {
    const type = findString(text, TYPE, 0, text.length)
    if (type === "response.created") this.created++
    else if (type === "response.done") {
      this.ended++
      const span = findObject(text, USAGE, 0, text.length, true)
      const raw = span === undefined ? undefined : parseObject(text.toString("utf8", span.start, span.end))
      if (raw === undefined) return
      const u = fromOpenAI(raw)
      this.usage = this.usage === undefined ? u : addUsage(this.usage, u)
      this.responses++
    } else if (type === "session.created" || type === "session.updated") {
      const model = findString(text, MODEL, 0, text.length)
      if (model !== undefined) this.model = model
    }
  }

  /** The sums so far, once every complete message has been inflated. Call once, when the WebSocket has ended. */
  finish(): Promise<RealtimeUsageResult> {
    const result = (): RealtimeUsageResult => {
      this.inflater?.close()
      this.inflater = undefined
      return {
        usage: this.usage,
        responseModel: modelLabel(this.model),
        responses: this.responses,
        complete: !this.failed && this.ended >= this.created
      }
    }
    if (this.failed || (!this.busy && this.queue.length === 0)) return Promise.resolve(result())
    return new Promise((resolve) => {
      this.idle = () => {
        if (this.failed || (!this.busy && this.queue.length === 0)) {
          this.idle = undefined
          resolve(result())
        }
      }
    })
  }
}
