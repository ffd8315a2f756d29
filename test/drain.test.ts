// Draining on Effect's Clock (SPEC §7, services/listener/drain.ts), under TestClock: a drain ends as soon as the
// last connection fiber ends (but not before a cluster worker's minimum), or at the grace period with the count of
// connections left; idle connections are closed only after the keep-alive grace, then again as they turn idle.
// The drains run uninterruptible, as they do in the Listener's finalizer, so the deadline must still end them.
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as FiberSet from "effect/FiberSet"
import * as TestClock from "effect/TestClock"
import { drainConnections, drainPort, keepAliveGraceMs } from "../src/services/listener/drain.js"

/** A port whose idle closes are counted. */
const countingPort = () => {
  const port = { closed: 0, closeIdle: () => void port.closed++ }
  return port
}

const done = <A, E>(f: Fiber.Fiber<A, E>) => Effect.map(Fiber.poll(f), (o) => o._tag === "Some")

describe("drainConnections (TestClock)", () => {
  it.scoped(
    "waits for the grace period when a connection stays, closing idle ones only after the keep-alive grace",
    () =>
      Effect.gen(function* () {
        const fibers = yield* FiberSet.make<void, never>()
        yield* FiberSet.run(fibers, Effect.never)
        const port = countingPort()
        const drain = yield* Effect.fork(Effect.uninterruptible(drainConnections(fibers, () => [port], 10_000, 0)))
        expect(keepAliveGraceMs(10_000)).toBe(1_000)
        yield* TestClock.adjust("999 millis")
        expect(port.closed).toBe(0)
        yield* TestClock.adjust("1 millis")
        expect(port.closed).toBe(1)
        yield* TestClock.adjust("100 millis")
        expect(port.closed).toBe(3)
        yield* TestClock.adjust("8899 millis")
        expect(yield* done(drain)).toBe(false)
        yield* TestClock.adjust("1 millis")
        expect(yield* Fiber.join(drain)).toBe(1)
        // The closer stops with the drain.
        const after = port.closed
        yield* TestClock.adjust("1 second")
        expect(port.closed).toBe(after)
      })
  )

  it.scoped("ends when the last connection ends, long before the deadline", () =>
    Effect.gen(function* () {
      const fibers = yield* FiberSet.make<void, never>()
      yield* FiberSet.run(fibers, Effect.sleep("300 millis"))
      yield* FiberSet.run(fibers, Effect.sleep("700 millis"))
      const port = countingPort()
      const drain = yield* Effect.fork(Effect.uninterruptible(drainConnections(fibers, () => [port], 30_000, 0)))
      yield* TestClock.adjust("300 millis")
      expect(yield* done(drain)).toBe(false)
      yield* TestClock.adjust("400 millis")
      expect(yield* Fiber.join(drain)).toBe(0)
      expect(port.closed).toBe(0)
    })
  )

  it.scoped("with no connection, still lasts the minimum (a cluster worker's hand-off window)", () =>
    Effect.gen(function* () {
      const fibers = yield* FiberSet.make<void, never>()
      const drain = yield* Effect.fork(Effect.uninterruptible(drainConnections(fibers, () => [], 10_000, 300)))
      yield* TestClock.adjust("299 millis")
      expect(yield* done(drain)).toBe(false)
      yield* TestClock.adjust("1 millis")
      expect(yield* Fiber.join(drain)).toBe(0)
    })
  )

  it.scoped("a grace period shorter than the minimum wins", () =>
    Effect.gen(function* () {
      const fibers = yield* FiberSet.make<void, never>()
      const drain = yield* Effect.fork(Effect.uninterruptible(drainConnections(fibers, () => [], 100, 300)))
      yield* TestClock.adjust("100 millis")
      expect(yield* done(drain)).toBe(true)
    })
  )
})

describe("drainPort (TestClock)", () => {
  it.scoped("a removed port is drained for the whole grace period, idle connections closed every 200 ms", () =>
    Effect.gen(function* () {
      const port = countingPort()
      const drain = yield* Effect.fork(drainPort(port, 2_000))
      yield* TestClock.adjust("999 millis")
      expect(port.closed).toBe(0)
      yield* TestClock.adjust("1 millis")
      expect(port.closed).toBe(1)
      yield* TestClock.adjust("600 millis")
      expect(port.closed).toBe(4)
      yield* TestClock.adjust("399 millis")
      expect(yield* done(drain)).toBe(false)
      yield* TestClock.adjust("1 millis")
      expect(yield* done(drain)).toBe(true)
    })
  )
})
