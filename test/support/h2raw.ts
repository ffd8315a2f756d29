// Raw HTTP/2 frames for abuse tests: what a hostile client writes, byte by byte (RFC 9113 §4.1, HPACK literals
// from RFC 7541 §6.2), and a reader that splits what the server answers into frames.
import * as net from "node:net"

export const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
export const FrameType = { DATA: 0, HEADERS: 1, RST_STREAM: 3, SETTINGS: 4, PING: 6, GOAWAY: 7, CONTINUATION: 9 }
export const Flag = { END_STREAM: 1, ACK: 1, END_HEADERS: 4 }

export const frame = (type: number, flags: number, stream: number, payload: Buffer = Buffer.alloc(0)): Buffer => {
  const h = Buffer.alloc(9)
  h.writeUIntBE(payload.length, 0, 3)
  h[3] = type
  h[4] = flags
  h.writeUInt32BE(stream & 0x7fffffff, 5)
  return Buffer.concat([h, payload])
}

/** An HPACK integer with an N-bit prefix (RFC 7541 §5.1), first byte ORed with `mask`. */
const hpackInt = (n: number, prefix: number, mask: number): Buffer => {
  const max = (1 << prefix) - 1
  if (n < max) return Buffer.from([mask | n])
  const out = [mask | max]
  n -= max
  while (n >= 128) {
    out.push((n & 0x7f) | 0x80)
    n >>= 7
  }
  out.push(n)
  return Buffer.from(out)
}

/** A literal header field without indexing, new name (RFC 7541 §6.2.2). */
export const literal = (name: string, value: string): Buffer =>
  Buffer.concat([
    Buffer.from([0]),
    hpackInt(name.length, 7, 0),
    Buffer.from(name),
    hpackInt(value.length, 7, 0),
    Buffer.from(value)
  ])

/** A GET request's header block: `:method GET`, `:scheme http`, `:path`, `:authority`, from the static table. */
export const getBlock = (authority: string, path = "/"): Buffer =>
  Buffer.concat([
    Buffer.from([0x82, 0x86]), // :method GET, :scheme http
    path === "/"
      ? Buffer.from([0x84])
      : Buffer.concat([hpackInt(4, 4, 0), hpackInt(path.length, 7, 0), Buffer.from(path)]),
    hpackInt(1, 4, 0), // :authority, literal without indexing, indexed name
    hpackInt(authority.length, 7, 0),
    Buffer.from(authority)
  ])

export const rstStream = (stream: number, code = 8 /* CANCEL */): Buffer => {
  const p = Buffer.alloc(4)
  p.writeUInt32BE(code)
  return frame(FrameType.RST_STREAM, 0, stream, p)
}

export interface Frame {
  readonly type: number
  readonly flags: number
  readonly stream: number
  readonly payload: Buffer
}

/** A raw connection: writes what it is told, collects the server's frames, notes when the server closes it. */
export interface RawH2 {
  readonly socket: net.Socket
  readonly frames: Array<Frame>
  readonly closed: Promise<number>
  /** Writes with backpressure; resolves false when the server closed the connection meanwhile. */
  readonly write: (b: Buffer) => Promise<boolean>
}

export const connectRaw = (port: number, ackSettings = true): Promise<RawH2> =>
  new Promise((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1")
    const frames: Array<Frame> = []
    let buf = Buffer.alloc(0)
    const t0 = Date.now()
    const closed = new Promise<number>((r) => socket.once("close", () => r(Date.now() - t0)))
    socket.on("error", () => undefined)
    socket.on("data", (c: Buffer) => {
      buf = Buffer.concat([buf, c])
      while (buf.length >= 9) {
        const len = buf.readUIntBE(0, 3)
        if (buf.length < 9 + len) break
        const f = {
          type: buf[3],
          flags: buf[4],
          stream: buf.readUInt32BE(5) & 0x7fffffff,
          payload: buf.subarray(9, 9 + len)
        }
        frames.push(f)
        buf = buf.subarray(9 + len)
        // as every client must (RFC 9113 §6.5.3): the server's limits apply from this ACK on
        if (ackSettings && f.type === FrameType.SETTINGS && (f.flags & Flag.ACK) === 0 && socket.writable)
          socket.write(frame(FrameType.SETTINGS, Flag.ACK, 0))
      }
    })
    const write = (b: Buffer) =>
      new Promise<boolean>((r) => {
        if (socket.destroyed || !socket.writable) return r(false)
        if (socket.write(b)) return r(true)
        const done = (ok: boolean) => {
          socket.removeListener("drain", onDrain)
          socket.removeListener("close", onClose)
          r(ok)
        }
        const onDrain = () => done(true)
        const onClose = () => done(false)
        socket.once("drain", onDrain)
        socket.once("close", onClose)
      })
    socket.once("connect", () => {
      socket.write(Buffer.concat([PREFACE, frame(FrameType.SETTINGS, 0, 0)]))
      resolve({ socket, frames, closed, write })
    })
    socket.once("error", reject)
  })
