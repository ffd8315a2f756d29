// The `Listener` service: binds the configured ports and runs every accepted connection as a supervised fiber
// in a FiberSet. Closing its scope stops accepting at once, closes idle connections, waits for in-flight work
// up to `graceful_shutdown_timeout`, then interrupts what is left (which destroys those sockets).
import type * as net from "node:net"
import * as netMod from "node:net"
import * as tls from "node:tls"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as FiberSet from "effect/FiberSet"
import * as Layer from "effect/Layer"
import * as SubscriptionRef from "effect/SubscriptionRef"
import type { ConfigSnapshot } from "../config/types.js"
import { logger } from "../log.js"
import { handleRequest, type ProxyContext } from "../proxy/forward.js"
import { KeyResolver } from "../proxy/keys.js"
import {
  dispatchPlainConnection,
  dispatchTlsConnection,
  type ExtraHandlers,
  makeProtocolServers,
  type ProtocolServers,
  tlsOptions
} from "../proxy/servers.js"
import { makeExtraHandlers } from "../proxy/upgrade.js"
import { Config } from "./Config.js"
import { ConnectionPool } from "./ConnectionPool.js"
import { HealthChecker } from "./HealthChecker.js"
import { ProviderRegistry } from "./ProviderRegistry.js"

export class ListenError extends Data.TaggedError("ListenError")<{
  readonly kind: "http" | "https"
  readonly address: string
  readonly port: number
  readonly reason: string
}> {
  override get message(): string {
    return `cannot listen on ${this.kind} ${this.address}:${this.port}: ${this.reason}`
  }
}

export interface BoundListener {
  readonly kind: "http" | "https"
  readonly address: string
  /** The bound port (the real one when the config asked for 0). */
  readonly port: number
}

export interface ListenerService {
  readonly bound: ReadonlyArray<BoundListener>
  /** Open client connections across all listeners. */
  readonly connections: Effect.Effect<number>
}

export class Listener extends Context.Tag("openproxy/Listener")<Listener, ListenerService>() {}

const listen = (server: net.Server, kind: "http" | "https", address: string, port: number) =>
  Effect.async<number, ListenError>((resume) => {
    const onError = (err: NodeJS.ErrnoException) =>
      resume(Effect.fail(new ListenError({ kind, address, port, reason: err.code ?? err.message })))
    server.once("error", onError)
    server.listen({ port, host: address, backlog: 1024 }, () => {
      server.removeListener("error", onError)
      const a = server.address()
      resume(Effect.succeed(typeof a === "object" && a !== null ? a.port : port))
    })
  })

/** Builds the per-request context the plain request path reads from the running services. */
export const makeProxyContext = Effect.gen(function* () {
  const registry = yield* ProviderRegistry
  const { pools } = yield* ConnectionPool
  const health = yield* HealthChecker
  const ctx: ProxyContext = {
    router: registry.current,
    pools,
    keys: new KeyResolver(),
    health: health.reporter,
    log: logger
  }
  return ctx
})

interface Port {
  readonly server: net.Server
  readonly protocols: ProtocolServers
  readonly bound: BoundListener
}

export const make = Effect.gen(function* () {
  const config = yield* Config
  const snapshot: ConfigSnapshot = yield* SubscriptionRef.get(config.current)
  const ctx = yield* makeProxyContext
  const extra: ExtraHandlers = makeExtraHandlers(ctx)
  const fibers = yield* FiberSet.make<void, never>()
  const run = yield* FiberSet.runtime(fibers)<never>()

  /** One supervised fiber per connection: ends when the socket closes; interrupting it destroys the socket. */
  const supervise = (socket: net.Socket): void => {
    run(
      Effect.async<void>((resume) => {
        if (socket.destroyed) return resume(Effect.void)
        socket.once("close", () => resume(Effect.void))
        return Effect.sync(() => socket.destroy())
      })
    )
  }

  const ports: Array<Port> = []
  const bindPort = (kind: "http" | "https", address: string, port: number) =>
    Effect.gen(function* () {
      const defaultPort = kind === "https" ? 443 : 80
      const protocols = makeProtocolServers(
        snapshot,
        (req, res, expectContinue) => handleRequest(ctx, defaultPort, req, res, expectContinue),
        extra
      )
      let server: net.Server
      if (kind === "https") {
        const t = tls.createServer(tlsOptions(snapshot.https!, snapshot))
        t.on("secureConnection", (socket: tls.TLSSocket) => {
          supervise(socket)
          dispatchTlsConnection(socket, protocols)
        })
        t.on("tlsClientError", () => undefined)
        server = t
      } else {
        server = netMod.createServer({ pauseOnConnect: true, noDelay: true }, (socket) => {
          supervise(socket)
          dispatchPlainConnection(socket, protocols)
        })
      }
      const actual = yield* listen(server, kind, address, port)
      // after a successful bind only: a bind failure is reported once, by the ListenError
      server.on("error", (err) => logger.log("error", "listener error", { kind, error: err.message }))
      const bound: BoundListener = { kind, address, port: actual }
      ports.push({ server, protocols, bound })
      logger.log("info", "listening", { kind, address, port: actual })
    })

  // Release: stop accepting, close idle connections, wait for the rest up to the grace period. Connections
  // that finish their last request meanwhile are closed as they turn idle. (The FiberSet, made earlier,
  // is released after this and interrupts whatever is still open.)
  yield* Effect.addFinalizer(() =>
    Effect.gen(function* () {
      const grace = (yield* SubscriptionRef.get(config.current)).gracefulShutdownTimeoutMs
      for (const p of ports) p.server.close()
      const closeIdle = Effect.sync(() => {
        for (const p of ports) p.protocols.closeIdle()
      })
      // Finalizers are uninterruptible, so poll instead of racing a timer against the drain.
      const deadline = Date.now() + grace
      while ((yield* FiberSet.size(fibers)) > 0 && Date.now() < deadline) {
        yield* closeIdle
        yield* Effect.sleep("50 millis")
      }
      const left = yield* FiberSet.size(fibers)
      if (left > 0) logger.log("warn", "grace period over, closing connections", { open: left })
      for (const p of ports) p.protocols.destroyAll()
    })
  )

  if (snapshot.http) yield* bindPort("http", snapshot.http.bindAddress, snapshot.http.port)
  if (snapshot.https) yield* bindPort("https", snapshot.https.bindAddress, snapshot.https.port)

  return {
    bound: ports.map((p) => p.bound),
    connections: FiberSet.size(fibers)
  } satisfies ListenerService
})

export const layer: Layer.Layer<Listener, ListenError, Config | ProviderRegistry | ConnectionPool | HealthChecker> =
  Layer.scoped(Listener, make)
