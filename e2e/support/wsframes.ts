// e2e helper: the few WebSocket frames (RFC 6455) a test client needs on an HTTP/2 extended CONNECT
// stream (RFC 8441), where the `ws` package cannot run: masked client frames out, unmasked frames in.
import { randomBytes } from "node:crypto"

export const OP_TEXT = 0x1
export const OP_BINARY = 0x2
export const OP_CLOSE = 0x8
export const OP_PING = 0x9
export const OP_PONG = 0xa

/** One final, masked client frame. */
export const clientFrame = (opcode: number, payload: Buffer): Buffer => {
  const len = payload.length
  const head = len < 126 ? Buffer.alloc(2) : len < 65536 ? Buffer.alloc(4) : Buffer.alloc(10)
  head[0] = 0x80 | opcode
  if (len < 126) head[1] = 0x80 | len
  else if (len < 65536) {
    head[1] = 0x80 | 126
    head.writeUInt16BE(len, 2)
  } else {
    head[1] = 0x80 | 127
    head.writeBigUInt64BE(BigInt(len), 2)
  }
  const mask = randomBytes(4)
  const masked = Buffer.alloc(len)
  for (let i = 0; i < len; i++) masked[i] = payload[i] ^ mask[i & 3]
  return Buffer.concat([head, mask, masked])
}

export interface Frame {
  fin: boolean
  opcode: number
  payload: Buffer
}

/** Incremental parser of server frames (unmasked; no extensions negotiated). */
export class FrameReader {
  private buf: Buffer = Buffer.alloc(0)

  push(chunk: Buffer): Frame[] {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk])
    const out: Frame[] = []
    for (;;) {
      if (this.buf.length < 2) return out
      const b0 = this.buf[0]
      const b1 = this.buf[1]
      let len = b1 & 0x7f
      let off = 2
      if (len === 126) {
        if (this.buf.length < 4) return out
        len = this.buf.readUInt16BE(2)
        off = 4
      } else if (len === 127) {
        if (this.buf.length < 10) return out
        len = Number(this.buf.readBigUInt64BE(2))
        off = 10
      }
      const masked = (b1 & 0x80) !== 0
      const maskOff = off
      if (masked) off += 4
      if (this.buf.length < off + len) return out
      let payload = Buffer.from(this.buf.subarray(off, off + len))
      if (masked) {
        const mask = this.buf.subarray(maskOff, maskOff + 4)
        payload = Buffer.from(payload.map((x, i) => x ^ mask[i & 3]))
      }
      out.push({ fin: (b0 & 0x80) !== 0, opcode: b0 & 0x0f, payload })
      this.buf = this.buf.subarray(off + len)
    }
  }
}
