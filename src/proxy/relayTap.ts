// What the log phase learns from a relayed WebSocket or CONNECT tunnel (SPEC §10): every byte each way after the
// handshake (`bytes_in` from the client, `bytes_out` to it), and, for an OpenAI Realtime WebSocket, the token usage
// and model its server events report (src/domain/usage/websocket.ts). Passive: one 'data' listener per direction
// beside the pipes of socket.ts's `bridge`, which never pauses, holds or changes a chunk; attached only when the
// context has an end consumer (metrics, access log), so a proxy without one pays nothing.
import type { Duplex } from "node:stream"
import { splitPath } from "../domain/credentials.js"
import { modelLabel } from "../domain/usage/usage.js"
import { WsUsageTap } from "../domain/usage/websocket.js"
import type { Exchange } from "./exchange.js"

/**
 * Counts the relayed bytes into `ex.bytesIn`/`bytesOut`, starting with the bytes that came with the handshake
 * (`clientHead`, `upstreamHead`: already written by the caller). With `usage`, the upstream's bytes are also fed to
 * the Realtime tap, in order, from the first frame on.
 */
export const countRelay = (
  ex: Exchange,
  client: Duplex,
  upstream: Duplex,
  clientHead: Buffer,
  upstreamHead: Buffer,
  usage?: WsUsageTap
): void => {
  ex.bytesIn += clientHead.length
  ex.bytesOut += upstreamHead.length
  client.on("data", (c: Buffer) => {
    ex.bytesIn += c.length
  })
  if (usage === undefined) {
    upstream.on("data", (c: Buffer) => {
      ex.bytesOut += c.length
    })
    return
  }
  if (upstreamHead.length > 0) usage.push(upstreamHead)
  upstream.on("data", (c: Buffer) => {
    ex.bytesOut += c.length
    usage.push(c)
  })
}

/** Whether a WebSocket to this provider type and path (query allowed) is an OpenAI Realtime session. */
export const isRealtime = (providerType: string, path: string): boolean =>
  providerType === "openai" && splitPath(path).path.endsWith("/realtime")

/** The Realtime session's requested model: the `model` query parameter, as a bounded label; undefined if none. */
export const realtimeQueryModel = (url: string): string | undefined => {
  const { query } = splitPath(url)
  if (query === undefined || !query.includes("model=")) return undefined
  let model: string | null
  try {
    model = new URLSearchParams(query).get("model")
  } catch {
    return undefined
  }
  const label = modelLabel(model ?? undefined)
  return label === "unknown" ? undefined : label
}

/** A Realtime usage tap for the upstream's `Sec-WebSocket-Extensions` answer (permessage-deflate or none). */
export const realtimeTap = (extensions: string | Array<string> | undefined): WsUsageTap =>
  new WsUsageTap(Array.isArray(extensions) ? extensions.join(", ") : extensions)

/**
 * Writes what the tap read into the exchange once every message it holds is decoded (resolves, never rejects):
 * the summed `response.done` usage, the session's model as the response model, and as the request model when the
 * query named none. A session whose usage is a lower bound (a response cut by the session's end, or server
 * events the tap could not read) that would log `ok` logs `truncated` (docs/observability.md).
 */
export const settleRealtime = async (ex: Exchange, tap: WsUsageTap): Promise<void> => {
  const r = await tap.finish()
  if (!r.complete && ex.outcome === "ok") ex.outcome = "truncated"
  if (r.usage !== undefined) ex.usage = r.usage
  if (r.responseModel !== "unknown") ex.responseModel = r.responseModel
  ex.model ??= ex.responseModel
}
