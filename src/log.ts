// Log lines, one per event on stderr, as text or JSON (`--log-format`). The services and the lifecycle log through
// Effect's `Logger` (`Effect.logInfo(message, fields)`), replaced by `layer(format)` with one that writes today's
// line formats; the request path and Node callbacks, which run outside any fiber, take the plain `Logger` below
// (`plain` gives a view of the current fiber's Effect loggers, so both end in the same place). Nothing here is
// module state: where lines go is a layer input. Callers pass plain fields only, never secrets (keys are
// `Redacted` everywhere and never reach here).
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as FiberRef from "effect/FiberRef"
import * as HashMap from "effect/HashMap"
import * as HashSet from "effect/HashSet"
import * as Layer from "effect/Layer"
import * as List from "effect/List"
import * as EffectLogger from "effect/Logger"
import * as EffectLogLevel from "effect/LogLevel"
import { makeStdoutSink } from "./observability/stdoutSink.js"

export type LogLevel = "debug" | "info" | "warn" | "error"
export type LogFields = Readonly<Record<string, string | number | boolean | undefined>>
export type LogFormat = "text" | "json"

/** The plain logger the request path receives in its context (`ctx.log`), and Node callbacks use. */
export interface Logger {
  readonly log: (level: LogLevel, message: string, fields?: LogFields) => void
}

const levelRank: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 }

const textValue = (v: unknown): string => {
  const s = String(v)
  return /[\s"=]/.test(s) ? JSON.stringify(s) : s
}

/**
 * One line: `TIME LEVEL message k=v ...` (values quoted when they hold a space, `"` or `=`), or a JSON object
 * `{time, level, message, ...fields}`. Undefined fields are left out in both.
 */
export const formatLine = (
  format: LogFormat,
  time: Date,
  level: string,
  message: string,
  fields?: Readonly<Record<string, unknown>>
): string => {
  const iso = time.toISOString()
  if (format === "json") return JSON.stringify({ time: iso, level, message, ...fields }) + "\n"
  let line = `${iso} ${level.toUpperCase()} ${message}`
  if (fields) {
    for (const k in fields) {
      const v = fields[k]
      if (v !== undefined) line += ` ${k}=${textValue(v)}`
    }
  }
  return line + "\n"
}

const stderr = (line: string): void => {
  process.stderr.write(line)
}

/** The access log's batches (stdout: written directly when it is a regular file, src/observability/stdoutSink.ts). */
const stdout = makeStdoutSink()

/** Where the access log goes (SPEC §10: stdout, in the process's `--log-format`); set by `layer`. */
export interface AccessOutput {
  readonly format: LogFormat
  readonly write: (chunk: string) => void
  /** Batches as bytes the writer is done with on return (stdout's: set when `write` is stdout's). */
  readonly writeBytes?: (bytes: Uint8Array) => void
}

/** The access log's output for fibers run under `layer` (a constant reference; its value is per fiber). */
export const accessOutput: FiberRef.FiberRef<AccessOutput> = FiberRef.unsafeMake<AccessOutput>({
  format: "text",
  write: stdout,
  writeBytes: stdout
})

/** A standalone plain logger writing to `write` (stderr by default). Lines below `minLevel` are dropped. */
export const makeLogger = (format: LogFormat = "text", minLevel: LogLevel = "info", write = stderr): Logger => {
  const min = levelRank[minLevel]
  return {
    log: (level, message, fields) => {
      if (levelRank[level] < min) return
      write(formatLine(format, new Date(), level, message, fields))
    }
  }
}

const effectLevel: Record<LogLevel, EffectLogLevel.LogLevel> = {
  debug: EffectLogLevel.Debug,
  info: EffectLogLevel.Info,
  warn: EffectLogLevel.Warning,
  error: EffectLogLevel.Error
}

/** Our level names for Effect's (`Warning` is `warn`, as in today's lines). */
const levelName = (l: EffectLogLevel.LogLevel): string => (l._tag === "Warning" ? "warn" : l.label.toLowerCase())

const isFields = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Error)

/**
 * An Effect `Logger` writing our lines. A message is `"text"` or `["text", fields]` (what `Effect.logInfo(text,
 * fields)` passes); log annotations follow the fields, and a failure's cause comes last as `cause`.
 */
export const lineLogger = (format: LogFormat, write: (line: string) => void = stderr) =>
  EffectLogger.make<unknown, void>(({ annotations, cause, date, logLevel, message }) => {
    const parts: ReadonlyArray<unknown> = Array.isArray(message) ? message : [message]
    let text = ""
    let fields: Record<string, unknown> | undefined
    for (const p of parts) {
      if (fields === undefined && text !== "" && isFields(p)) fields = { ...p }
      else text += (text === "" ? "" : " ") + (typeof p === "string" ? p : String(p))
    }
    if (HashMap.size(annotations) > 0) {
      fields ??= {}
      for (const [k, v] of annotations) if (!(k in fields)) fields[k] = v
    }
    if (!Cause.isEmpty(cause)) {
      fields ??= {}
      fields.cause = Cause.pretty(cause)
    }
    write(formatLine(format, date, levelName(logLevel), text, fields))
  })

/**
 * Lines in `format` to `write` (stderr) for every fiber run under this layer, from `minLevel` (info) up: the
 * process's logger (`openproxy start --log-format`), or a test's capture. It replaces every other logger (Effect's
 * default one, and the pretty one `NodeRuntime.runMain` installs) but the tracer's, which only annotates spans.
 * The access log takes the same format and goes to `access` (stdout).
 */
export const layer = (
  format: LogFormat,
  options?: { write?: (line: string) => void; minLevel?: LogLevel; access?: (chunk: string) => void }
) =>
  Layer.mergeAll(
    Layer.locallyScoped(
      FiberRef.currentLoggers,
      HashSet.make(lineLogger(format, options?.write), EffectLogger.tracerLogger)
    ),
    Layer.locallyScoped(
      accessOutput,
      options?.access === undefined ? { format, write: stdout, writeBytes: stdout } : { format, write: options.access }
    ),
    EffectLogger.minimumLogLevel(effectLevel[options?.minLevel ?? "info"])
  )

/** Logs `message` with `fields` at `level` through Effect's loggers (the services' and lifecycle's way). */
export const event = (level: LogLevel, message: string, fields?: LogFields): Effect.Effect<void> =>
  fields === undefined
    ? Effect.logWithLevel(effectLevel[level], message)
    : Effect.logWithLevel(effectLevel[level], message, fields)

/**
 * A plain `Logger` over the current fiber's Effect loggers and minimum level, for code that runs outside any
 * fiber (the request path, Node callbacks). Taken once, when a service is built: its lines go where the layer's
 * lines go.
 */
export const plain: Effect.Effect<Logger> = Effect.withFiberRuntime((fiber) => {
  const loggers = fiber.getFiberRef(FiberRef.currentLoggers)
  const min = fiber.getFiberRef(FiberRef.currentMinimumLogLevel)
  const context = fiber.getFiberRefs()
  const fiberId = fiber.id()
  const log: Logger["log"] = (level, message, fields) => {
    const logLevel = effectLevel[level]
    if (EffectLogLevel.lessThan(logLevel, min)) return
    const options = {
      fiberId,
      logLevel,
      message: fields === undefined ? [message] : [message, fields],
      cause: Cause.empty,
      context,
      spans: List.empty(),
      annotations: HashMap.empty<string, unknown>(),
      date: new Date()
    }
    for (const l of loggers) l.log(options)
  }
  return Effect.succeed({ log })
})
