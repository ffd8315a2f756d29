// An exact sliding log: the times (and token amounts) of the admissions of the last minute, oldest first, in a
// growable ring buffer (no allocation per entry). Every entry has a sequence number, so a settlement can find and
// correct its entry while it is still in the window. Exact: a request counts for exactly 60 s after its admission,
// so no 60 s span ever holds more than the limit (a fixed window would allow twice the limit across a boundary).
import { WINDOW_MS } from "./types.js"

export class SlidingLog {
  private times = new Float64Array(16)
  private amounts = new Float64Array(16)
  private head = 0
  /** Sequence number of the entry at `head`. */
  private headSeq = 0
  size = 0
  total = 0

  /** Drops the entries that left the window (admitted at or before `now - 60 s`). */
  prune(now: number): void {
    const cutoff = now - WINDOW_MS
    const cap = this.times.length
    while (this.size > 0 && this.times[this.head] <= cutoff) {
      this.total -= this.amounts[this.head]
      this.head = (this.head + 1) % cap
      this.headSeq++
      this.size--
    }
    if (this.size === 0) this.total = 0
  }

  /** Time of the i-th oldest entry. */
  timeAt(i: number): number {
    return this.times[(this.head + i) % this.times.length]
  }

  amountAt(i: number): number {
    return this.amounts[(this.head + i) % this.amounts.length]
  }

  oldest(): number {
    return this.size === 0 ? -1 : this.timeAt(0)
  }

  /** Appends an entry (times must not decrease) and returns its sequence number. */
  push(time: number, amount: number): number {
    if (this.size === this.times.length) this.grow()
    const i = (this.head + this.size) % this.times.length
    this.times[i] = time
    this.amounts[i] = amount
    this.size++
    this.total += amount
    return this.headSeq + this.size - 1
  }

  /** Sets the amount of entry `seq` if it is still in the log (false: it already left the window). */
  setAmount(seq: number, amount: number): boolean {
    const offset = seq - this.headSeq
    if (offset < 0 || offset >= this.size) return false
    const i = (this.head + offset) % this.amounts.length
    this.total += amount - this.amounts[i]
    this.amounts[i] = amount
    return true
  }

  private grow(): void {
    const cap = this.times.length
    const times = new Float64Array(cap * 2)
    const amounts = new Float64Array(cap * 2)
    for (let k = 0; k < this.size; k++) {
      times[k] = this.times[(this.head + k) % cap]
      amounts[k] = this.amounts[(this.head + k) % cap]
    }
    this.times = times
    this.amounts = amounts
    this.head = 0
  }
}
