// The parts of undici openproxy uses, imported from their own modules. The package index also loads fetch,
// WebSocket, EventSource, the cache and the mock agents (about 600 KB of the bundle and a few MiB of heap at
// start-up) that a proxy never calls. undici has no `exports` map, so these paths are its public layout; the
// version is pinned exactly in package.json. Like the index, this adds the promise API (`request`, `stream`,
// `pipeline`, `upgrade`, `connect`) to every dispatcher; the request path itself only uses `dispatch`.

import api from "undici/lib/api/index.js"
import buildConnectorImpl from "undici/lib/core/connect.js"
import ClientImpl from "undici/lib/dispatcher/client.js"
import DispatcherImpl from "undici/lib/dispatcher/dispatcher.js"
import PoolImpl from "undici/lib/dispatcher/pool.js"

Object.assign(DispatcherImpl.prototype, api)

export const Client = ClientImpl
export const Pool = PoolImpl
export const buildConnector = buildConnectorImpl
