// The worker side of the admin port with `workers: N` (SPEC §10): the primary serves the port and asks every
// worker. Metrics go through prom-client's cluster protocol (each worker's registry, summed by the primary's
// AggregatorRegistry); readiness, providers and keys through one openproxy message pair.
import * as Effect from "effect/Effect"
import { AggregatorRegistry, type Registry } from "prom-client"
import type { AdminSource, KeyView, ProviderView, Readiness } from "../observability/adminHttp.js"

export const ADMIN_REQUEST = "openproxy:admin-state"
export const ADMIN_RESPONSE = "openproxy:admin-state-result"

/** What a worker answers the primary. */
export interface WorkerAdminState {
  readonly type: typeof ADMIN_RESPONSE
  readonly id: number
  readonly readiness: Readiness
  readonly providers: ReadonlyArray<ProviderView>
  readonly keys: ReadonlyArray<KeyView>
}

const isRequest = (m: unknown): m is { type: string; id: number } =>
  typeof m === "object" && m !== null && (m as { type?: unknown }).type === ADMIN_REQUEST

/** In a worker: expose `registry` to the primary's aggregation and answer its admin-state requests. */
export const serveWorkerAdmin = (registry: Registry, source: AdminSource) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      AggregatorRegistry.setRegistries([registry])
      // Constructing one installs prom-client's worker-side listener (once per process).
      new AggregatorRegistry()
      const onMessage = (m: unknown) => {
        if (!isRequest(m)) return
        Promise.all([source.readiness(), source.providers(), source.keys()]).then(
          ([readiness, providers, keys]) => {
            const answer: WorkerAdminState = { type: ADMIN_RESPONSE, id: m.id, readiness, providers, keys }
            process.send?.(answer)
          },
          () => undefined
        )
      }
      process.on("message", onMessage)
      return onMessage
    }),
    (onMessage) => Effect.sync(() => process.removeListener("message", onMessage))
  )
