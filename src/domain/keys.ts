// Provider keys at request time (SPEC §2): a static key as it is, or a `$(command)` key run with `sh -c`,
// asynchronously, bounded at 5 s (the whole process group is killed on time-out), optionally cached.
import { spawn } from "node:child_process"
import * as Redacted from "effect/Redacted"
import type { KeySource } from "../config/types.js"

export const COMMAND_TIMEOUT_MS = 5_000
const HEADER_SAFE = /^[\t\x20-\x7e\x80-\xff]+$/
const MAX_OUTPUT = 64 * 1024

export class KeyCommandError extends Error {
  constructor(readonly reason: "exit" | "timeout" | "empty" | "invalid" | "spawn" | "output") {
    super(`api_key command failed: ${reason}`)
  }
}

/** Runs `command` with `sh -c`; resolves with its trimmed stdout when it is a usable key. */
export const runKeyCommand = (command: string, timeoutMs = COMMAND_TIMEOUT_MS): Promise<string> =>
  new Promise((resolve, reject) => {
    let settled = false
    const chunks: Array<Buffer> = []
    let size = 0
    const child = spawn("sh", ["-c", command], { stdio: ["ignore", "pipe", "ignore"], detached: true })
    const finish = (err: KeyCommandError | undefined, value?: string) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      if (err) reject(err)
      else resolve(value!)
    }
    const killGroup = () => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, "SIGKILL")
      } catch {
        // already gone
      }
    }
    const timer = setTimeout(() => {
      killGroup()
      finish(new KeyCommandError("timeout"))
    }, timeoutMs)
    child.stdout.on("data", (c: Buffer) => {
      size += c.length
      if (size > MAX_OUTPUT) {
        killGroup()
        finish(new KeyCommandError("output"))
        return
      }
      chunks.push(c)
    })
    child.on("error", () => finish(new KeyCommandError("spawn")))
    child.on("close", (code) => {
      if (code !== 0) return finish(new KeyCommandError("exit"))
      const key = Buffer.concat(chunks).toString("utf8").trim()
      if (key.length === 0) return finish(new KeyCommandError("empty"))
      // Only what an HTTP header value may carry (Node's rule): CR/LF/NUL, other controls or characters past
      // U+00FF would make the upstream request throw.
      if (!HEADER_SAFE.test(key)) return finish(new KeyCommandError("invalid"))
      finish(undefined, key)
    })
  })

interface CacheEntry {
  readonly key: Redacted.Redacted<string>
  readonly expires: number
}

/** Resolves key sources; `$(command)` results are cached per command for `ttlMs` when it is > 0. */
export class KeyResolver {
  private readonly cache = new Map<string, CacheEntry>()
  private readonly inflight = new Map<string, Promise<Redacted.Redacted<string>>>()

  resolve(source: KeySource, ttlMs: number): Redacted.Redacted<string> | Promise<Redacted.Redacted<string>> {
    if (source._tag === "Static") return source.value
    const command = Redacted.value(source.command)
    if (ttlMs <= 0) return runKeyCommand(command).then(Redacted.make)
    const hit = this.cache.get(command)
    if (hit !== undefined && hit.expires > Date.now()) return hit.key
    const pending = this.inflight.get(command)
    if (pending !== undefined) return pending
    const p = runKeyCommand(command)
      .then((k) => {
        const key = Redacted.make(k)
        this.cache.set(command, { key, expires: Date.now() + ttlMs })
        return key
      })
      .finally(() => this.inflight.delete(command))
    this.inflight.set(command, p)
    return p
  }
}
