// Retries and failover as policy (SPEC §11), free of I/O and of the request path: how long a provider asks a key
// to back off, which keys are cooling down, whether a failed attempt is retried, which identity comes next, the
// first-content deadline of a stream and the proxy's own 429 when every key is cooling. docs/retries.md tells the
// whole story. Imports nothing from src/proxy or src/services.
export { type Cooldown, type CooldownSource, cooldownOf, DEFAULT_COOLDOWN_MS, type RawHeaders } from "./cooldown.js"
export {
  type AttemptFailure,
  bodyPlan,
  decideRetry,
  type FailureKind,
  type NoRetryWhy,
  RETRY_REASONS,
  type RetryDecision,
  type RetryReason
} from "./decide.js"
export { type CoolingView, coolingWait, nextIdentity, type OrderEntry, type OrderIdentity } from "./order.js"
export { type CoolingRefusal, coolingRefusal } from "./refusal.js"
export { type CooldownCause, type CooldownEntry, CooldownRegistry, identityId } from "./registry.js"
export { armFirstToken, FirstTokenWatchdog } from "./watchdog.js"
