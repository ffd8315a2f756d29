// Deterministic byte streams for the mock provider: a cheap xorshift32 PRNG so tests can
// compute the expected bytes (and their hash) of a /__download without storing them.
import { Readable } from "node:stream"

/** Stateful generator: successive `take` calls continue the same stream (take multiples of 4 until the last). */
export class ByteGenerator {
  private x: number

  constructor(seed = 0) {
    this.x = (seed ^ 0x9e3779b9) >>> 0 || 1
  }

  take(n: number): Buffer {
    const words = new Uint32Array(Math.ceil(n / 4))
    let x = this.x
    for (let i = 0; i < words.length; i++) {
      x ^= x << 13
      x ^= x >>> 17
      x ^= x << 5
      words[i] = x
    }
    this.x = x >>> 0
    return Buffer.from(words.buffer, 0, n)
  }
}

/** `n` deterministic bytes for `seed`; `deterministicBytes(a, s)` is a prefix of `deterministicBytes(b, s)` for a < b. */
export const deterministicBytes = (n: number, seed = 0): Buffer => new ByteGenerator(seed).take(n)

/** A readable of `deterministicBytes(n, seed)` produced in `chunk`-sized pieces on demand (backpressure). */
export const deterministicStream = (n: number, seed = 0, chunk = 64 * 1024): Readable => {
  const gen = new ByteGenerator(seed)
  let left = n
  return new Readable({
    highWaterMark: chunk,
    read() {
      if (left <= 0) {
        this.push(null)
        return
      }
      const size = Math.min(chunk, left)
      left -= size
      this.push(gen.take(size))
    }
  })
}
