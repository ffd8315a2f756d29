// Whether a failed attempt is tried again (SPEC §11), and why, as the `reason` label of `openproxy_retries_total`
// (docs/observability.md: connect, status, reset, first_token; a TLS failure counts as `connect`, and the status
// itself is in the access log, which keeps the label set small).
// A retry is only ever made before any byte has reached the client, with a request body that can be sent again
// (none, or buffered because it is at most `retry.max_body_bytes`), within `retry.attempts`. Connect errors and
// time-outs, TLS failures and resets before the response head are always retryable; an upstream status when it is
// in `retry.on_status`; a stream without a content event by `timeouts.first_token` too. A response-head time-out is
// not retried: the upstream may still be working on it (and `response_header` is minutes long).
// Every answer is a preallocated constant: no allocation per decision.
import type { RetrySettings } from "../../config/types.js"

/** What went wrong with an attempt. */
export type FailureKind =
  /** TCP connect refused, unreachable or timed out. */
  | "connect"
  /** TLS handshake or certificate failure. */
  | "tls"
  /** The connection or stream closed (or was reset) before the response head. */
  | "reset"
  /** A response head arrived with a status (retried when it is in `on_status`). */
  | "status"
  /** A stream sent its head but no content event within `timeouts.first_token`. */
  | "first_token"
  /** No response head within `timeouts.response_header`. */
  | "response_timeout"

export interface AttemptFailure {
  /** Attempts made so far, the failed one included (1 after the first). */
  readonly attempts: number
  readonly kind: FailureKind
  /** The upstream status for `status` (ignored otherwise). */
  readonly status: number
  /** The request body can be sent again: none, or fully buffered (at most `max_body_bytes`). */
  readonly replayable: boolean
  /** Some response byte (head included) has been written to the client. */
  readonly sentToClient: boolean
}

export type NoRetryWhy =
  | "client_has_bytes"
  | "attempts_exhausted"
  | "body_not_replayable"
  | "status_not_retried"
  | "not_retryable"

/** The `reason` label; the same set as `RetryReason` of src/services/Metrics.ts. */
export type RetryReason = "connect" | "status" | "reset" | "first_token"

export type RetryDecision =
  | { readonly retry: true; readonly reason: RetryReason }
  | { readonly retry: false; readonly why: NoRetryWhy }

const no = (why: NoRetryWhy): RetryDecision => ({ retry: false, why })
const NO: { readonly [W in NoRetryWhy]: RetryDecision } = {
  client_has_bytes: no("client_has_bytes"),
  attempts_exhausted: no("attempts_exhausted"),
  body_not_replayable: no("body_not_replayable"),
  status_not_retried: no("status_not_retried"),
  not_retryable: no("not_retryable")
}
const yes = (reason: RetryReason): RetryDecision => ({ retry: true, reason })
const RETRY_CONNECT = yes("connect")
const RETRY_RESET = yes("reset")
const RETRY_STATUS = yes("status")
const RETRY_FIRST_TOKEN = yes("first_token")

/** Every `reason` label a retry can carry, for pre-registering metric series. */
export const RETRY_REASONS: ReadonlyArray<RetryReason> = ["connect", "status", "reset", "first_token"]

/** The retry decision for a failed attempt under `settings` (`retry:` of the snapshot). */
export const decideRetry = (
  settings: Pick<RetrySettings, "attempts" | "onStatus">,
  f: AttemptFailure
): RetryDecision => {
  if (f.sentToClient) return NO.client_has_bytes
  let decision: RetryDecision
  switch (f.kind) {
    case "connect":
    case "tls":
      decision = RETRY_CONNECT
      break
    case "reset":
      decision = RETRY_RESET
      break
    case "first_token":
      decision = RETRY_FIRST_TOKEN
      break
    case "status":
      if (!settings.onStatus.includes(f.status)) return NO.status_not_retried
      decision = RETRY_STATUS
      break
    default:
      return NO.not_retryable
  }
  if (f.attempts > settings.attempts) return NO.attempts_exhausted
  if (!f.replayable) return NO.body_not_replayable
  return decision
}

/**
 * How a request body is sent: `buffer` it (at most `max_body_bytes`, so a retry can send it again) or `stream` it
 * once. `contentLength` is undefined for a chunked body: it is buffered up to the limit and streamed from there on
 * (then it is no longer replayable). With `attempts` 0 nothing is ever replayed, so nothing is buffered.
 */
export const bodyPlan = (
  contentLength: number | undefined,
  settings: Pick<RetrySettings, "attempts" | "maxBodyBytes">
): "none" | "buffer" | "buffer_up_to_limit" | "stream" => {
  if (contentLength === 0) return "none"
  if (settings.attempts === 0) return "stream"
  if (contentLength === undefined) return settings.maxBodyBytes === 0 ? "stream" : "buffer_up_to_limit"
  return contentLength <= settings.maxBodyBytes ? "buffer" : "stream"
}
