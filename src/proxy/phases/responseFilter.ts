// Phase 7, response filter (SPEC §10): the response head is relayed as it came; on the side, a usage tap for the
// responses that carry token usage (by provider type, path and content type: src/domain/usage), fed every body
// chunk as it passes to the client and read once at the end, never holding a byte back. The first-token deadline
// of SPEC §11 attaches here too (a seam).
import { createUsageTap, type ResponseUsageTap, requestModel, usageSource } from "../../domain/usage/index.js"
import type { Exchange } from "../exchange.js"

/** One header of a relayed head: flat pairs (HTTP/1.1, any letter case) or an object (HTTP/2, lower-case). */
const headerValue = (
  headers: Array<string> | Record<string, string | Array<string>>,
  name: string
): string | undefined => {
  if (!Array.isArray(headers)) {
    const v = headers[name]
    return Array.isArray(v) ? v[0] : v
  }
  for (let i = 0; i < headers.length; i += 2) {
    const n = headers[i]
    if (n.length === name.length && n.toLowerCase() === name) return headers[i + 1]
  }
  return undefined
}

/**
 * The usage tap for the exchange's response, or undefined when it carries no usage (or nobody reads it: no log
 * sink). Sets the exchange's request model when there is a tap (read from a gathered body, or Gemini's path).
 */
export const usageTap = (
  ex: Exchange,
  headers: Array<string> | Record<string, string | Array<string>>,
  requestBody: Buffer | undefined
): ResponseUsageTap | undefined => {
  const type = ex.identity!.provider.type
  if (type === "forward" || ex.ctx.onEnd === undefined) return undefined
  const q = ex.path.indexOf("?")
  const path = q < 0 ? ex.path : ex.path.slice(0, q)
  const source = usageSource(type, path, headerValue(headers, "content-type"))
  if (source.kind === "none") return undefined
  const tap = createUsageTap(source, headerValue(headers, "content-encoding"))
  if (tap !== undefined) ex.model = requestModel(type, path, requestBody)
  return tap
}
