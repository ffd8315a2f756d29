// The SSE usage tap's key search (src/domain/usage/sse.ts `findMarker`): a JS Boyer–Moore–Horspool scan for
// event-sized spans, native `indexOf` past 1 KiB. Checked against a plain reference search on random bytes with
// planted (and half-planted) markers, for both markers the tap uses, at every span size around the switch.
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { findMarker, shiftTable } from "../src/domain/usage/sse.js"

const reference = (buf: Buffer, m: Buffer, from: number, to: number): number => {
  for (let i = Math.max(0, from); i + m.length <= to; i++) if (buf.subarray(i, i + m.length).equals(m)) return i
  return -1
}

describe("findMarker", () => {
  for (const word of ['"usage"', '"usageMetadata"']) {
    const m = Buffer.from(word)
    const shift = shiftTable(m)
    it(`${word}: the same first hit as a plain search, for any bytes, span and planted copies`, () => {
      // bytes from the marker's own alphabet and a few others, so near-misses are common
      const alphabet = [...new Set([...m, 0x20, 0x3a, 0x7b, 0x0a, 0x22])]
      fc.assert(
        fc.property(
          fc.integer({ min: 0, max: 2200 }),
          fc.integer(),
          fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 1, maxLength: 4, size: "max" }),
          fc.double({ min: 0, max: 1, noNaN: true }),
          fc.double({ min: 0, max: 1, noNaN: true }),
          (len, seed, plants, a, b) => {
            // bytes from a small LCG over the alphabet
            const buf = Buffer.alloc(len)
            let x = seed >>> 0
            for (let i = 0; i < len; i++) {
              x = (Math.imul(x, 1664525) + 1013904223) >>> 0
              buf[i] = alphabet[x % alphabet.length]
            }
            for (const [k, f] of plants.entries()) {
              // a whole copy, or all but its last byte (a near-miss)
              const part = k % 2 === 0 ? m : m.subarray(0, m.length - 1)
              const at = Math.floor(f * (len - part.length + 1))
              if (at >= 0 && at + part.length <= len) part.copy(buf, at)
            }
            const from = Math.floor(Math.min(a, b) * len)
            const to = Math.floor(Math.max(a, b) * len)
            expect(findMarker(buf, m, shift, from, to)).toBe(reference(buf, m, from, to))
          }
        ),
        { numRuns: 3000 }
      )
    })
  }
  it("a marker crossing the end of the span is not a hit; one ending on it is", () => {
    const m = Buffer.from('"usage"')
    const buf = Buffer.from('data: {"usage":{}}\n')
    const at = buf.indexOf(m)
    expect(findMarker(buf, m, shiftTable(m), 0, at + m.length)).toBe(at)
    expect(findMarker(buf, m, shiftTable(m), 0, at + m.length - 1)).toBe(-1)
    expect(findMarker(buf, m, shiftTable(m), at + 1, buf.length)).toBe(-1)
  })
})
