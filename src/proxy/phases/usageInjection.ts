// Phase 5 addition, OpenAI stream usage injection (SPEC §10 `usage.inject_openai_stream_usage`): a chat-completions
// request with `"stream": true` that did not ask for `stream_options.include_usage` is sent upstream asking for it
// (src/domain/usage/inject.ts: one key inserted, every other byte as the client sent it), so the stream ends with
// the usage chunk; the response filter (responseFilter.ts) reads it and removes it from what the client receives.
// Only gathered bodies (a Buffer) without a Content-Encoding, and only when something reads usage.
import { injectStreamUsage, mayStream } from "../../domain/usage/inject.js"
import type { Exchange } from "../exchange.js"
import { usageWanted } from "./responseFilter.js"

const hasContentEncoding = (raw: ReadonlyArray<string>): boolean => {
  for (let i = 0; i < raw.length; i += 2) {
    const n = raw[i]
    if (n.length === 16 && n.toLowerCase() === "content-encoding") return true
  }
  return false
}

/** The body to send upstream in place of `body`, or undefined to send it unchanged. */
export const injectUsage = (ex: Exchange, body: Buffer, rawHeaders: ReadonlyArray<string>): Buffer | undefined => {
  if (ex.identity!.provider.type !== "openai") return undefined
  const path = ex.path
  const q = path.indexOf("?")
  const end = q < 0 ? path.length : q
  if (!path.startsWith("/chat/completions", end - 17)) return undefined
  const snapshot = ex.router.snapshot
  if (!snapshot.usage.injectOpenaiStreamUsage || ex.ctx.onEnd === undefined || !usageWanted(snapshot)) return undefined
  // Then the body: a byte scan for `"stream": true` (most chat requests are not streamed), no parse.
  if (!mayStream(body)) return undefined
  if (hasContentEncoding(rawHeaders)) return undefined
  return injectStreamUsage(body)
}

/** Sets the upstream headers' Content-Length (if the client sent one) to the injected body's length. */
export const fixContentLength = (headers: Array<string>, length: number): void => {
  for (let i = 0; i < headers.length; i += 2) {
    const n = headers[i]
    if (n.length === 14 && n.toLowerCase() === "content-length") headers[i + 1] = String(length)
  }
}
