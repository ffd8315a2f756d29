// Phase 3, admit (ARCHITECTURE "The request as phases"): the accepted client key's limits reserve before any
// upstream call (SPEC §12). A seam for now: every request is admitted. The limits service plugs in here (a
// refusal is a 429 in the provider type's error shape); the log phase settles what was reserved.
import type { ErrorKind } from "../../errors.js"
import type { Exchange } from "../exchange.js"

/** undefined: admitted. */
export const admit = (_ex: Exchange): ErrorKind | undefined => undefined
