// The admin listener's HTTP handling (SPEC §10), independent of where its answers come from (this process, or
// the workers of a cluster through the primary): GET /metrics (Prometheus text), /healthz, /readyz, /providers,
// /keys. With an `auth_key`, everything but /healthz and /readyz needs `Authorization: Bearer <auth_key>`,
// compared in constant time; anything else is 401. Answers never carry a key: /keys lists names only.
import { createHash, timingSafeEqual } from "node:crypto"
import type * as http from "node:http"
import * as Redacted from "effect/Redacted"

/** Readiness: config loaded, listeners bound, every route with a healthy provider; else why not. */
export interface Readiness {
  readonly ready: boolean
  readonly reason: string
}

/** One provider as /providers shows it. */
export interface ProviderView {
  readonly id: string
  readonly index: number
  readonly host: string
  readonly endpoint: string
  readonly type: string
  readonly healthy: boolean
  readonly weight: number
  /** Requests in flight to the provider's upstream origin (shared by providers with the same endpoint). */
  readonly inflight: number
  /** `connect` (passive: a failed upstream connection) or `health_check` (an active probe failed); null: none. */
  readonly last_error: string | null
  readonly last_error_at: string | null
  /** Its keys cooling down after a rate limit now (SPEC §11), by key index; empty when none. Never a key. */
  readonly cooling: ReadonlyArray<KeyCooldownView>
}

/** One provider key cooling down, as /providers shows it (observability/cooldownView.ts). */
export interface KeyCooldownView {
  /** The key's index in the provider's `api_keys` (0 for `api_key`, or a provider without a key). */
  readonly key: number
  /** When it is free again (ISO 8601), and how long that is from now. */
  readonly until: string
  readonly remaining_ms: number
  /** The provider's answer that asked for it: 429, or a 503/529 naming a time. */
  readonly status: number
  /** Where its length came from: `retry-after-ms`, `retry-after`, `ratelimit-reset`, or `default` (none named). */
  readonly source: string
  /** When that answer came (ISO 8601). */
  readonly since: string
  /** How many processes have it cooling (each worker learns from its own 429s); 1 without `workers`. */
  readonly workers: number
}

/** One client key as /keys shows it: its name and where it is accepted, never the key. */
export interface KeyView {
  readonly name: string
  /** "all" for a global key, else the providers (`host#index`) that accept it. */
  readonly providers: "all" | ReadonlyArray<string>
  /**
   * Its limits now (SPEC §12), per limit: `limit` (null: unlimited), `used` in the current window or period,
   * `remaining`, `reset_ms`; null when the key has none. Absent with `limits_error` when the store did not answer.
   */
  readonly limits?: Readonly<Record<string, LimitFigure>> | null
  readonly limits_error?: string
}

/** One limit of one key on /keys. */
export interface LimitFigure {
  readonly limit: number | null
  readonly used: number
  readonly remaining: number | null
  readonly reset_ms: number
}

export interface AdminSource {
  /** The live admin key, read per request (a reload may change it). */
  readonly authKey: () => Redacted.Redacted<string> | undefined
  readonly metrics: () => Promise<{ readonly contentType: string; readonly body: string }>
  readonly readiness: () => Promise<Readiness>
  readonly providers: () => Promise<ReadonlyArray<ProviderView>>
  readonly keys: () => Promise<ReadonlyArray<KeyView>>
}

const digest = (s: string): Buffer => createHash("sha256").update(s).digest()

/** True when the request carries `Authorization: Bearer <key>`; compares digests, so in constant time. */
export const authorized = (req: http.IncomingMessage, key: Redacted.Redacted<string> | undefined): boolean => {
  if (key === undefined) return true
  const h = req.headers.authorization
  if (h === undefined || h.length < 7 || h.slice(0, 7).toLowerCase() !== "bearer ") return false
  return timingSafeEqual(digest(h.slice(7).trim()), digest(Redacted.value(key)))
}

const send = (res: http.ServerResponse, status: number, type: string, body: string): void => {
  res.writeHead(status, {
    "content-type": type,
    "content-length": Buffer.byteLength(body),
    "cache-control": "no-store"
  })
  res.end(body)
}

const text = (res: http.ServerResponse, status: number, body: string) =>
  send(res, status, "text/plain; charset=utf-8", `${body}\n`)
const json = (res: http.ServerResponse, status: number, body: unknown) =>
  send(res, status, "application/json", `${JSON.stringify(body)}\n`)

/** The request handler of an admin listener. */
export const adminHandler =
  (source: AdminSource) =>
  (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const url = req.url ?? "/"
    const q = url.indexOf("?")
    const path = q < 0 ? url : url.slice(0, q)
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.setHeader("allow", "GET, HEAD")
      return text(res, 405, "method not allowed")
    }
    if (path === "/healthz") return text(res, 200, "ok")
    const run = async (): Promise<void> => {
      if (path === "/readyz") {
        const r = await source.readiness()
        return text(res, r.ready ? 200 : 503, r.ready ? "ready" : `not ready: ${r.reason}`)
      }
      if (!authorized(req, source.authKey())) {
        res.setHeader("www-authenticate", 'Bearer realm="openproxy admin"')
        return text(res, 401, "unauthorized")
      }
      switch (path) {
        case "/metrics": {
          const m = await source.metrics()
          return send(res, 200, m.contentType, m.body)
        }
        case "/providers":
          return json(res, 200, { providers: await source.providers() })
        case "/keys":
          return json(res, 200, { keys: await source.keys() })
        default:
          return text(res, 404, "not found")
      }
    }
    run().catch((e: unknown) => {
      // Detail stays out of the answer (it is the admin's own error, but may name internals).
      if (!res.headersSent) text(res, 500, "internal error")
      else res.destroy()
      void e
    })
  }
