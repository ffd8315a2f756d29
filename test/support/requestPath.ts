// The request path (src/proxy) run in-process on node:http servers from a YAML text, without the services: one
// config snapshot and its Router, fresh pools, the process's KeyResolver, silent health and log, plus whatever
// services a test wants to watch (`onEnd`, `onRetry`, `onCooldown`, `limits`). HTTP/1.1 with WebSocket upgrades
// and CONNECT on one loopback port, and an h2c port when asked for. Registered with a Cleanup, which closes the
// servers and the pools.
import * as http from "node:http"
import * as http2 from "node:http2"
import type * as net from "node:net"
import * as Effect from "effect/Effect"
import { parseConfig } from "../../src/config/load.js"
import type { ConfigSnapshot } from "../../src/config/types.js"
import { KeyResolver } from "../../src/domain/keys.js"
import { Router } from "../../src/domain/router.js"
import { makeLogger } from "../../src/log.js"
import { makeRequestPath, type ProxyContext, type ProxyServices } from "../../src/proxy/context.js"
import { handleRequest } from "../../src/proxy/forward.js"
import { handleConnect } from "../../src/proxy/tunnel.js"
import { UpstreamPools } from "../../src/proxy/upstreams.js"
import { handleUpgrade } from "../../src/proxy/websocket.js"
import { type Cleanup, listen } from "./cleanup.js"

export interface RequestPathOptions {
  /** Services beside the defaults (the log phase's `onEnd`, retry counts, limits). */
  readonly services?: Partial<ProxyServices>
  /** Also serve h2c (prior knowledge) on a second port. */
  readonly h2?: boolean
  /** Called with each client socket once its upgrade is handed to the request path. */
  readonly afterUpgrade?: (socket: net.Socket) => void
}

export interface RequestPath {
  /** The HTTP/1.1 port (requests, WebSocket upgrades, CONNECT). */
  readonly port: number
  /** The h2c port, when `h2` was asked for (else 0). */
  readonly h2port: number
  readonly ctx: ProxyContext
  readonly snapshot: ConfigSnapshot
}

/** The config snapshot of a YAML text (no file, no environment). */
export const snapshotOf = (yaml: string): Promise<ConfigSnapshot> =>
  Effect.runPromise(parseConfig(yaml, "/tmp/request-path-test.yml", {}))

/** Starts the request path on loopback servers; `cleanup` stops them and closes the upstream pools. */
export const startRequestPath = async (
  cleanup: Cleanup,
  yaml: string,
  o: RequestPathOptions = {}
): Promise<RequestPath> => {
  const snapshot = await snapshotOf(yaml)
  const router = new Router(snapshot)
  const pools = new UpstreamPools()
  const ctx = makeRequestPath({
    router: () => router,
    pools,
    keys: new KeyResolver(),
    health: { connectFailed: () => undefined, connected: () => undefined },
    log: makeLogger("text", "error", () => undefined),
    ...o.services
  })
  const h1 = http.createServer((req, res) => handleRequest(ctx, 80, req, res))
  h1.on("upgrade", (req, socket, head) => {
    handleUpgrade(ctx, req, socket as net.Socket, head)
    o.afterUpgrade?.(socket as net.Socket)
  })
  h1.on("connect", (req, socket, head) => handleConnect(ctx, req, socket as net.Socket, head))
  const h2 = o.h2 ? http2.createServer((req, res) => handleRequest(ctx, 80, req, res)) : undefined
  const port = await listen(h1)
  const h2port = h2 === undefined ? 0 : await listen(h2)
  cleanup.defer(async () => {
    h1.closeAllConnections()
    await new Promise((r) => h1.close(r))
    if (h2 !== undefined) await new Promise((r) => h2.close(r))
    await pools.closeAll()
  })
  return { port, h2port, ctx, snapshot }
}
