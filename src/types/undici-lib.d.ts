// Types for the undici modules imported one by one in src/undici.ts: each is the same class or function
// the package index re-exports.
declare module "undici/lib/dispatcher/client.js" {
  import { Client } from "undici"
  export default Client
}
declare module "undici/lib/dispatcher/pool.js" {
  import { Pool } from "undici"
  export default Pool
}
declare module "undici/lib/core/connect.js" {
  import { buildConnector } from "undici"
  export default buildConnector
}
declare module "undici/lib/dispatcher/dispatcher.js" {
  import { Dispatcher } from "undici"
  export default Dispatcher
}
declare module "undici/lib/api/index.js" {
  const api: Record<"request" | "stream" | "pipeline" | "upgrade" | "connect", (...args: Array<unknown>) => unknown>
  export default api
}
