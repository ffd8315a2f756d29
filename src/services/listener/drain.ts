// Draining (SPEC §7): after a listener stops accepting, its connections get up to `graceful_shutdown_timeout` to
// finish. Busy keep-alive connections first finish their current request (answered with `Connection: close`);
// after a short keep-alive grace, idle ones are closed as they turn idle. Time comes from Effect's `Clock`, so a
// drain runs under `TestClock` in tests.
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as FiberSet from "effect/FiberSet"
import * as Schedule from "effect/Schedule"

/** What a drain needs of a port's protocol servers. */
export interface Drainable {
  /** Closes idle HTTP/1.1 keep-alive connections and sends GOAWAY on HTTP/2 sessions. */
  readonly closeIdle: () => void
}

/**
 * How long a drain lets busy keep-alive connections finish their current request (answered with
 * `Connection: close`) before closing idle ones: closing an idle HTTP/1.1 connection races a client that is just
 * sending its next request on it (which then fails with ECONNRESET).
 */
export const keepAliveGraceMs = (graceMs: number): number => Math.min(1_000, graceMs / 2)

/** From the keep-alive grace on, closes the idle connections of `ports()` every `every`, until interrupted. */
const closeIdleFromGrace = (ports: () => Iterable<Drainable>, graceMs: number, every: Duration.DurationInput) =>
  Effect.sleep(keepAliveGraceMs(graceMs)).pipe(
    Effect.zipRight(
      Effect.repeat(
        Effect.sync(() => {
          for (const p of ports()) p.closeIdle()
        }),
        Schedule.spaced(every)
      )
    ),
    Effect.asVoid
  )

/**
 * Waits until every connection fiber in `fibers` has ended and at least `minimumMs` has passed, for at most
 * `graceMs`, closing idle connections of `ports()` meanwhile; returns how many connections are still open. It runs
 * in a finalizer (uninterruptible), so its own waits are made interruptible for the deadline to end them.
 */
export const drainConnections = (
  fibers: FiberSet.FiberSet<void, never>,
  ports: () => Iterable<Drainable>,
  graceMs: number,
  minimumMs: number
): Effect.Effect<number> =>
  Effect.gen(function* () {
    const closer = yield* Effect.fork(Effect.interruptible(closeIdleFromGrace(ports, graceMs, "50 millis")))
    yield* Effect.all([FiberSet.awaitEmpty(fibers), Effect.sleep(minimumMs)], { concurrency: 2, discard: true }).pipe(
      Effect.interruptible,
      Effect.timeoutOption(graceMs)
    )
    yield* Fiber.interrupt(closer)
    return yield* FiberSet.size(fibers)
  })

/**
 * The drain of one port a reload removed (it has stopped accepting): closes its idle connections from the
 * keep-alive grace on, for `graceMs`. The connection fibers are shared by every port, so it runs for the whole
 * grace period; the caller then releases the port's servers, which destroys what is left.
 */
export const drainPort = (port: Drainable, graceMs: number): Effect.Effect<void> =>
  closeIdleFromGrace(() => [port], graceMs, "200 millis").pipe(
    Effect.interruptible,
    Effect.timeoutOption(graceMs),
    Effect.asVoid
  )
