// Log lines (src/log.ts): the services' Effect logs and the request path's plain logger write the same lines, in
// the formats operators and tests read (`TIME LEVEL message k=v`, or one JSON object), and the log layer replaces
// every other logger (a second, differently formatted copy of each line was a real bug under NodeRuntime.runMain).
// Under TestClock the time is the epoch, so whole lines are compared.
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Logger from "effect/Logger"
import * as Log from "../src/log.js"

const capture = (format: Log.LogFormat, minLevel?: Log.LogLevel) => {
  const lines: Array<string> = []
  return { lines, layer: Log.layer(format, { write: (l) => lines.push(l), minLevel }) }
}

const T0 = "1970-01-01T00:00:00.000Z"

describe("log lines", () => {
  it.effect("text: level, message, fields in order; values with a space, quote or = quoted; undefined left out", () =>
    Effect.gen(function* () {
      const c = capture("text")
      yield* Log.event("info", "listening", { kind: "http", address: "127.0.0.1", port: 8080 }).pipe(
        Effect.provide(c.layer)
      )
      yield* Log.event("warn", "config reload failed", { error: 'a b="c"', skipped: undefined, ok: false }).pipe(
        Effect.provide(c.layer)
      )
      yield* Log.event("error", "no fields").pipe(Effect.provide(c.layer))
      expect(c.lines).toEqual([
        `${T0} INFO listening kind=http address=127.0.0.1 port=8080\n`,
        `${T0} WARN config reload failed error="a b=\\"c\\"" ok=false\n`,
        `${T0} ERROR no fields\n`
      ])
    })
  )

  it.effect("json: one object per line with time, level, message and the fields", () =>
    Effect.gen(function* () {
      const c = capture("json")
      yield* Log.event("warn", "grace period over, closing connections", { open: 2, gone: undefined }).pipe(
        Effect.provide(c.layer)
      )
      expect(c.lines).toEqual([
        `{"time":"${T0}","level":"warn","message":"grace period over, closing connections","open":2}\n`
      ])
    })
  )

  it.effect("the plain view writes the same lines through the same layer, and drops what is below its level", () =>
    Effect.gen(function* () {
      const c = capture("text", "info")
      const plain = yield* Log.plain.pipe(Effect.provide(c.layer))
      plain.log("debug", "websocket open", { ws: 1 })
      plain.log("warn", "upstream failed mid-response", { provider: 0 })
      expect(c.lines).toHaveLength(1)
      expect(c.lines[0]).toMatch(/^\S+Z WARN upstream failed mid-response provider=0\n$/)
      const all = capture("text", "debug")
      const verbose = yield* Log.plain.pipe(Effect.provide(all.layer))
      verbose.log("debug", "websocket open", { ws: 1 })
      expect(all.lines[0]).toMatch(/^\S+Z DEBUG websocket open ws=1\n$/)
    })
  )

  it.effect("matches makeLogger's lines (the standalone plain logger) field for field", () =>
    Effect.gen(function* () {
      const fields = { kind: "https", address: "::1", port: 443, inherited: true, note: "x y" }
      for (const format of ["text", "json"] as const) {
        const c = capture(format)
        yield* Log.event("info", "listening", fields).pipe(Effect.provide(c.layer))
        const standalone: Array<string> = []
        Log.makeLogger(format, "info", (l) => standalone.push(l)).log("info", "listening", fields)
        const strip = (l: string) => l.replace(/\d{4}-\d\d-\d\dT[\d:.]+Z/, "TIME")
        expect(strip(c.lines[0])).toBe(strip(standalone[0]))
      }
    })
  )

  it.effect("replaces every other logger, so each event is one line", () =>
    Effect.gen(function* () {
      let other = 0
      const c = capture("text")
      yield* Log.event("info", "config reloaded").pipe(
        Effect.provide(c.layer),
        Effect.provide(Logger.add(Logger.make(() => void other++)))
      )
      expect([c.lines.length, other]).toEqual([1, 0])
    })
  )
})
