// The first-content deadline of a streamed response (`timeouts.first_token`, SPEC §11): a timer armed when the
// response head arrives that fires unless the first content event comes first, so the attempt can be abandoned and
// retried while nothing has reached the client. One timer per stream, and none at all when the option is off
// (`armFirstToken` returns undefined, so the off case costs one comparison).

export class FirstTokenWatchdog {
  private timer: NodeJS.Timeout | undefined
  private fired = false

  constructor(ms: number, onExpire: () => void) {
    this.timer = setTimeout(() => {
      this.timer = undefined
      this.fired = true
      onExpire()
    }, ms)
    // A pending deadline alone does not keep the process alive (the stream's socket does).
    this.timer.unref()
  }

  /** The first content event arrived: the deadline no longer applies. Idempotent. */
  markContent(): void {
    if (this.timer !== undefined) {
      clearTimeout(this.timer)
      this.timer = undefined
    }
  }

  /** The attempt ended another way (error, client gone): same as `markContent`. */
  cancel(): void {
    this.markContent()
  }

  /** True once the deadline has passed without content. */
  get expired(): boolean {
    return this.fired
  }

  /** True while the deadline is pending. */
  get armed(): boolean {
    return this.timer !== undefined
  }
}

/** A watchdog for `firstTokenMs` (0: off, then undefined and no timer). */
export const armFirstToken = (firstTokenMs: number, onExpire: () => void): FirstTokenWatchdog | undefined =>
  firstTokenMs > 0 ? new FirstTokenWatchdog(firstTokenMs, onExpire) : undefined
