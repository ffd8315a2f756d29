// Label values for metrics and fields for the access log (SPEC §10), bounded so that no client can grow the
// number of series: providers come from the config, key names from the config, models only as short printable
// tokens (else "unknown") and at most MAX_MODELS distinct ones per Metrics instance (then "other"). The provider
// label is memoized per (immutable) provider object: a pure function's cache, not state.
import type { ProviderConfig, ProviderType } from "../config/types.js"

/** What a provider is called in metrics and logs: its `host` routing key and its index (`api.openai.test#0`). */
const labels = new WeakMap<ProviderConfig, string>()
export const providerLabel = (p: ProviderConfig): string => {
  let s = labels.get(p)
  if (s === undefined) {
    s = `${p.hostRaw}#${p.index}`
    labels.set(p, s)
  }
  return s
}

/** The OpenTelemetry GenAI `gen_ai.provider.name` of a provider type. */
export const genAiProviderName = (t: ProviderType): string =>
  t === "gemini" ? "gcp.gemini" : t === "forward" ? "unknown" : t

const MODEL = /^[A-Za-z0-9._:/-]{1,64}$/
/** Distinct model label values one Metrics instance records before it calls the rest "other". */
export const MAX_MODELS = 256

/**
 * A model name as a label value: itself when a short printable token, else "unknown"; "other" past the cap.
 * Each Metrics instance has its own (no state shared between embedded proxies).
 */
export const makeModelLabel = (max: number = MAX_MODELS) => {
  const models = new Set<string>()
  return (model: string | undefined): string => {
    if (model === undefined) return "unknown"
    // Only names that passed the test are in the set: a known one skips the regular expression.
    if (models.has(model)) return model
    if (!MODEL.test(model)) return "unknown"
    if (models.size >= max) return "other"
    models.add(model)
    return model
  }
}
