// The `Listener` service: binds the configured ports and runs every accepted connection as a supervised fiber
// in a FiberSet. Closing its scope stops accepting at once, closes idle connections, waits for in-flight work
// up to `graceful_shutdown_timeout`, then interrupts what is left (which destroys those sockets).
import cluster from "node:cluster"
import * as http from "node:http"
import type * as net from "node:net"
import * as netMod from "node:net"
import * as tls from "node:tls"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as FiberSet from "effect/FiberSet"
import * as Layer from "effect/Layer"
import * as Runtime from "effect/Runtime"
import * as SubscriptionRef from "effect/SubscriptionRef"
import type { ConfigSnapshot } from "../config/types.js"
import { closeUnusedInherited, listenerKey, takeInherited } from "../lifecycle/handover.js"
import { logger } from "../log.js"
import type { ProxyContext } from "../proxy/context.js"
import { handleRequest } from "../proxy/forward.js"
import {
  dispatchPlainConnection,
  dispatchTlsConnection,
  type ExtraHandlers,
  makeProtocolServers,
  type ProtocolServers,
  setHandshakeTimeout,
  tlsOptions
} from "../proxy/servers.js"
import { makeExtraHandlers } from "../proxy/upgrade.js"
import { Config } from "./Config.js"
import { ConnectionPool } from "./ConnectionPool.js"
import { HealthChecker } from "./HealthChecker.js"
import * as ProviderKeys from "./ProviderKeys.js"
import { ProviderRegistry } from "./ProviderRegistry.js"
import * as RequestPath from "./RequestPath.js"

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
  /** The listeners bound now (changes on a reload that adds or removes one). */
  readonly bound: ReadonlyArray<BoundListener>
  /** Open client connections across all listeners. */
  readonly connections: Effect.Effect<number>
  /**
   * Applies a new snapshot's listeners (SPEC §7): binds the added ones first — when one cannot bind, closes the
   * ones just bound and fails, changing nothing; otherwise runs `commit` (which swaps the snapshot in), gives the
   * kept ones the new settings and certificate, and closes the removed ones (their connections drain).
   */
  readonly reconfigure: <E>(
    next: ConfigSnapshot,
    commit: Effect.Effect<void, E>
  ) => Effect.Effect<void, ListenError | E>
  /** The listening servers by listener key, for the SIGUSR2 handover. */
  readonly servers: () => ReadonlyArray<{ readonly key: string; readonly server: net.Server }>
}

export class Listener extends Context.Tag("openproxy/Listener")<Listener, ListenerService>() {}

const listen = (server: net.Server, kind: "http" | "https", address: string, port: number) =>
  Effect.async<number, ListenError>((resume) => {
    const onError = (err: NodeJS.ErrnoException) =>
      resume(Effect.fail(new ListenError({ kind, address, port, reason: err.code ?? err.message })))
    server.once("error", onError)
    server.listen({ port, host: address, backlog: 1024 }, () => {
      server.removeListener("error", onError)
      resume(Effect.succeed(portOf(server, port)))
    })
  })

const portOf = (server: net.Server, fallback: number): number => {
  const a = server.address()
  return typeof a === "object" && a !== null ? a.port : fallback
}

/** The listeners a snapshot asks for. */
const wantedListeners = (c: ConfigSnapshot) => {
  const out: Array<{ kind: "http" | "https"; address: string; port: number }> = []
  if (c.http) out.push({ kind: "http", address: c.http.bindAddress, port: c.http.port })
  if (c.https) out.push({ kind: "https", address: c.https.bindAddress, port: c.https.port })
  return out
}

/** Builds the per-request context the plain request path reads from the running services. */
export const makeProxyContext = Effect.gen(function* () {
  const registry = yield* ProviderRegistry
  const { pools } = yield* ConnectionPool
  const health = yield* HealthChecker
  const ctx: ProxyContext = yield* RequestPath.make({
    router: registry.current,
    pools,
    keys: yield* ProviderKeys.resolver,
    health: health.reporter,
    log: logger
  })
  return ctx
})

// Connection fibers run on the bare default runtime (no services, no fiber refs to copy) and join the FiberSet:
// they only wait for the socket to close, and a fiber forked from the layer's full runtime costs ~4 KiB more
// per connection (measured: ~40 MiB at 10,000 idle connections).
const forkBare = Runtime.runFork(Runtime.defaultRuntime)

/**
 * Runs a connection as a supervised fiber in `fibers`: it ends when the socket closes, and interrupting it (the
 * FiberSet's release, at the end of a drain) destroys the socket. The socket is destroyed by an observer of the
 * fiber's exit rather than by an interruption handler inside it: the handler's frames (an uninterruptible
 * region and its callbacks) cost ~1.6 KiB per connection, ~16 MiB at 10,000 idle connections (measured).
 * Destroying a socket that closed by itself does nothing.
 */
export const superviseSocket = (fibers: FiberSet.FiberSet<void, never>, socket: net.Socket): void => {
  const fiber = forkBare(
    Effect.async<void>((resume) => {
      if (socket.destroyed) resume(Effect.void)
      else socket.once("close", () => resume(Effect.void))
    })
  )
  fiber.addObserver(() => socket.destroy())
  FiberSet.unsafeAdd(fibers, fiber)
}

/**
 * `max_connections` (SPEC §8): client connections open in this process, across every listener (kept, added and
 * retired). Over the limit a new connection is closed at once, before any TLS handshake; refusals are logged as
 * one line per 5 s with their count, so a flood does not flood the log.
 */
export class ConnectionGate {
  open = 0
  private refused = 0
  private flush: NodeJS.Timeout | undefined
  constructor(public max: number) {}

  /** Counts a new raw connection in, or closes it when the process is full. */
  readonly admit = (socket: net.Socket): boolean => {
    if (this.open >= this.max) {
      socket.destroy()
      this.refused++
      if (this.flush === undefined) {
        this.report()
        this.flush = setTimeout(() => {
          this.flush = undefined
          if (this.refused > 0) this.report()
        }, 5_000).unref()
      }
      return false
    }
    this.open++
    socket.once("close", this.onClose)
    return true
  }

  private readonly onClose = (): void => {
    this.open--
  }

  private report(): void {
    logger.log("warn", "connections refused: max_connections reached", { max: this.max, refused: this.refused })
    this.refused = 0
  }

  dispose(): void {
    clearTimeout(this.flush)
  }
}

interface Port {
  readonly key: string
  /** The server holding the listening socket (`server` itself, or one inherited from an upgrade). */
  readonly listening: net.Server
  /** The server connections are handed to (plain, or TLS). */
  readonly server: net.Server
  readonly protocols: ProtocolServers
  readonly bound: BoundListener
  readonly state: { draining: boolean }
}

/**
 * How long a drain lets busy keep-alive connections finish their current request (answered with
 * `Connection: close`) before closing idle ones: closing an idle HTTP/1.1 connection races a client that is just
 * sending its next request on it (which then fails with ECONNRESET).
 */
/** How long a closing cluster worker stays up for connections the primary handed it just before. */
const CLUSTER_HANDOFF_MS = 300

const keepAliveGraceMs = (graceMs: number): number => Math.min(1_000, graceMs / 2)

export const make = Effect.gen(function* () {
  const config = yield* Config
  const snapshot: ConfigSnapshot = yield* SubscriptionRef.get(config.current)
  const ctx = yield* makeProxyContext
  const extra: ExtraHandlers = makeExtraHandlers(ctx)
  const fibers = yield* FiberSet.make<void, never>()
  const scope = yield* Effect.scope
  const supervise = (socket: net.Socket): void => superviseSocket(fibers, socket)
  const gate = new ConnectionGate(snapshot.maxConnections)
  yield* Effect.addFinalizer(() => Effect.sync(() => gate.dispose()))

  /** Listening ports by key; `retired` are ports a reload removed whose connections are still draining. */
  const ports = new Map<string, Port>()
  const retired = new Set<Port>()

  const bindPort = (kind: "http" | "https", address: string, port: number, c: ConfigSnapshot) =>
    Effect.gen(function* () {
      const defaultPort = kind === "https" ? 443 : 80
      const state = { draining: false }
      const protocols = makeProtocolServers(
        c,
        (req, res, expectContinue) => {
          // Draining: answer with `Connection: close` so keep-alive clients leave cleanly instead of racing a close.
          if (state.draining && res instanceof http.ServerResponse) res.shouldKeepAlive = false
          handleRequest(ctx, defaultPort, req, res, expectContinue)
        },
        extra
      )
      let server: net.Server
      if (kind === "https") {
        const t = tls.createServer(tlsOptions(c.https!, c))
        // before TLS's own 'connection' listener: a refused connection costs no handshake
        t.prependListener("connection", (socket: net.Socket) => {
          gate.admit(socket)
        })
        t.on("secureConnection", (socket: tls.TLSSocket) => {
          supervise(socket)
          dispatchTlsConnection(socket, protocols)
        })
        // A failed or timed-out handshake: Node reports it here and leaves the socket open (`tls_handshake` would
        // otherwise close nothing).
        t.on("tlsClientError", (_err: Error, socket: tls.TLSSocket) => socket.destroy())
        server = t
      } else {
        server = netMod.createServer({ pauseOnConnect: true, noDelay: true }, (socket) => {
          if (!gate.admit(socket)) return
          supervise(socket)
          dispatchPlainConnection(socket, protocols)
        })
      }
      const key = listenerKey(kind, address, port)
      const inherited = takeInherited(key)
      let listening = server
      if (inherited !== undefined) {
        // Upgrade: the socket is already bound and listening; its connections go to our server from now on.
        listening = inherited.server
        inherited.adopt((socket) => server.emit("connection", socket))
      } else {
        yield* listen(server, kind, address, port).pipe(Effect.onError(() => Effect.sync(() => protocols.release())))
      }
      const actual = portOf(listening, port)
      // after a successful bind only: a bind failure is reported once, by the ListenError
      listening.on("error", (err) => logger.log("error", "listener error", { kind, error: err.message }))
      const bound: BoundListener = { kind, address, port: actual }
      logger.log("info", "listening", { kind, address, port: actual, ...(inherited ? { inherited: true } : {}) })
      return { key, listening, server, protocols, bound, state } satisfies Port
    })

  /** Stops accepting on a port and drains its connections for up to the grace period, then closes the rest. */
  const retire = (p: Port, graceMs: number) =>
    Effect.gen(function* () {
      retired.add(p)
      p.state.draining = true
      p.listening.close()
      logger.log("info", "listener closed", { kind: p.bound.kind, address: p.bound.address, port: p.bound.port })
      const start = Date.now()
      const deadline = start + graceMs
      while (Date.now() < deadline) {
        if (Date.now() - start >= keepAliveGraceMs(graceMs)) p.protocols.closeIdle()
        yield* Effect.sleep("200 millis")
      }
      p.protocols.release()
      retired.delete(p)
    }).pipe(Effect.forkIn(scope), Effect.asVoid)

  // Release: stop accepting, close idle connections, wait for the rest up to the grace period. Connections
  // that finish their last request meanwhile are closed as they turn idle. (The FiberSet, made earlier,
  // is released after this and interrupts whatever is still open.)
  yield* Effect.addFinalizer(() =>
    Effect.gen(function* () {
      const grace = (yield* SubscriptionRef.get(config.current)).gracefulShutdownTimeoutMs
      const all = () => [...ports.values(), ...retired]
      for (const p of ports.values()) {
        p.state.draining = true
        p.listening.close()
      }
      const closeIdle = Effect.sync(() => {
        for (const p of all()) p.protocols.closeIdle()
      })
      // Finalizers are uninterruptible, so poll instead of racing a timer against the drain.
      const start = Date.now()
      const deadline = start + grace
      // A cluster worker keeps running a moment after closing: the primary may have handed it connections that
      // are still in the IPC pipe; it must live to accept them (or to answer "not accepted"), or they hang.
      const minimum = start + (cluster.isWorker ? CLUSTER_HANDOFF_MS : 0)
      while (((yield* FiberSet.size(fibers)) > 0 || Date.now() < minimum) && Date.now() < deadline) {
        if (Date.now() - start >= keepAliveGraceMs(grace)) yield* closeIdle
        yield* Effect.sleep("50 millis")
      }
      const left = yield* FiberSet.size(fibers)
      if (left > 0) logger.log("warn", "grace period over, closing connections", { open: left })
      for (const p of all()) p.protocols.release()
    })
  )

  for (const w of wantedListeners(snapshot)) {
    const p = yield* bindPort(w.kind, w.address, w.port, snapshot)
    ports.set(p.key, p)
  }
  closeUnusedInherited()

  /** A port bound for a reload that did not happen: nothing was accepted on it yet. */
  const unbind = (p: Port) => {
    p.listening.close()
    p.protocols.release()
  }

  const reconfigure = Effect.fn("Listener.reconfigure")(function* <E>(
    next: ConfigSnapshot,
    commit: Effect.Effect<void, E>
  ) {
    const wanted = wantedListeners(next)
    const wantedKeys = new Set(wanted.map((w) => listenerKey(w.kind, w.address, w.port)))
    const added: Array<Port> = []
    for (const w of wanted) {
      if (ports.has(listenerKey(w.kind, w.address, w.port))) continue
      const r = yield* Effect.either(bindPort(w.kind, w.address, w.port, next))
      if (r._tag === "Left") {
        for (const p of added) unbind(p)
        return yield* r.left
      }
      added.push(r.right)
    }
    yield* commit.pipe(
      Effect.onError(() =>
        Effect.sync(() => {
          for (const p of added) unbind(p)
        })
      )
    )
    gate.max = next.maxConnections
    for (const p of added) ports.set(p.key, p)
    for (const [key, p] of ports) {
      if (!wantedKeys.has(key)) {
        ports.delete(key)
        yield* retire(p, next.gracefulShutdownTimeoutMs)
        continue
      }
      if (added.includes(p)) continue
      p.protocols.configure(next)
      // New certificate, key and handshake deadline for new handshakes; connections already up keep theirs.
      if (p.bound.kind === "https" && next.https) {
        const t = p.server as tls.Server
        t.setSecureContext(tlsOptions(next.https, next))
        setHandshakeTimeout(t, next.timeouts.tlsHandshakeMs)
      }
    }
  })

  return {
    get bound() {
      return [...ports.values()].map((p) => p.bound)
    },
    connections: FiberSet.size(fibers),
    reconfigure,
    servers: () => [...ports.values()].map((p) => ({ key: p.key, server: p.listening }))
  } satisfies ListenerService
})

export const layer: Layer.Layer<Listener, ListenError, Config | ProviderRegistry | ConnectionPool | HealthChecker> =
  Layer.scoped(Listener, make)
