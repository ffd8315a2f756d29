// Framing checks of an HTTP request head (SPEC §5, §3.5), before anything reaches an upstream: a
// `Transfer-Encoding` other than chunked, `Content-Length` with `Transfer-Encoding`, conflicting
// `Content-Length`s, several `Host` headers. Node's parser lets some of these through (or checks them only after
// the 'request' handler ran), and an upstream could read them differently.
import type { ErrorKind } from "../errors.js"
import type { RequestHeadInfo } from "./headers.js"

/** The refusal for a request whose framing is broken (always sent with `Connection: close`), or undefined. */
export const framingError = (info: RequestHeadInfo, isH2: boolean): ErrorKind | undefined => {
  if (info.transferEncoding !== undefined && !isH2) {
    if (info.transferEncoding.trim().toLowerCase() !== "chunked") return "unsupportedEncoding"
    if (info.contentLengths > 0) return "badFraming"
  }
  if (info.contentLengths > 1) return "badFraming"
  if (!isH2 && info.hostCount > 1) return "multipleHost"
  return undefined
}
