// The answer the proxy gives itself when every identity of a request's route is cooling down and the earliest is
// free later than `retry.max_wait` allows (SPEC §11): 429 with `Retry-After` (whole seconds until the earliest is
// free, at least 1) and `retry-after-ms`, and a body in the provider type's error shape, made by the limits
// module's refusal helpers (SPEC §12) so that each SDK raises its own rate-limit error. No upstream is called.
import type { ProviderType } from "../../config/types.js"
import { refusalBody } from "../../limits/headers.js"

export interface CoolingRefusal {
  readonly status: 429
  readonly headers: ReadonlyArray<readonly [string, string]>
  readonly body: string
}

/** The proxy's 429 for a route whose identities are all cooling; `waitMs` until the earliest is free. */
export const coolingRefusal = (providerType: ProviderType, waitMs: number): CoolingRefusal => {
  const ms = Math.max(1, Math.ceil(waitMs))
  const seconds = Math.max(1, Math.ceil(ms / 1000))
  const message = `Every upstream key of this route is rate limited: try again in ${seconds}s.`
  return {
    status: 429,
    headers: [
      ["content-type", "application/json"],
      ["retry-after", String(seconds)],
      ["retry-after-ms", String(ms)]
    ],
    body: refusalBody(providerType, message)
  }
}
