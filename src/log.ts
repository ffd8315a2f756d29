// A tiny structured logger for the request path and lifecycle events.
// It writes one line per event to stderr, as text or JSON (`--log-format`). It takes plain fields only:
// callers never pass secrets (keys are `Redacted` everywhere and never reach here).
export type LogLevel = "debug" | "info" | "warn" | "error"
export type LogFields = Readonly<Record<string, string | number | boolean | undefined>>

export interface Logger {
  readonly log: (level: LogLevel, message: string, fields?: LogFields) => void
}

const levelRank: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 }

const textValue = (v: string | number | boolean): string => {
  const s = String(v)
  return /[\s"=]/.test(s) ? JSON.stringify(s) : s
}

/** A logger writing to `write` (stderr by default). Lines below `minLevel` are dropped. */
export const makeLogger = (
  format: "text" | "json" = "text",
  minLevel: LogLevel = "info",
  write: (line: string) => void = (line) => process.stderr.write(line)
): Logger => {
  const min = levelRank[minLevel]
  return {
    log: (level, message, fields) => {
      if (levelRank[level] < min) return
      const time = new Date().toISOString()
      if (format === "json") {
        write(JSON.stringify({ time, level, message, ...fields }) + "\n")
        return
      }
      let line = `${time} ${level.toUpperCase()} ${message}`
      if (fields) {
        for (const k in fields) {
          const v = fields[k]
          if (v !== undefined) line += ` ${k}=${textValue(v)}`
        }
      }
      write(line + "\n")
    }
  }
}

/** The process-wide logger; replaced once at start-up from the CLI flags (and by tests that capture output). */
export let logger: Logger = makeLogger()

export const setLogger = (l: Logger): void => {
  logger = l
}
