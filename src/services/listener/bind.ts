// Binding one listening port (SPEC §2): a plain or TLS server in front of the protocol servers, or a socket
// inherited from the process an upgrade replaces. Every accepted connection passes the connection gate and runs
// as a supervised fiber.
import * as http from "node:http"
import * as net from "node:net"
import * as tls from "node:tls"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import type * as FiberSet from "effect/FiberSet"
import type { ConfigSnapshot } from "../../config/types.js"
import { type InheritedService, listenerKey } from "../../lifecycle/Inherited.js"
import { event, type Logger } from "../../log.js"
import type { ProxyContext } from "../../proxy/context.js"
import { handleRequest } from "../../proxy/forward.js"
import {
  dispatchPlainConnection,
  dispatchTlsConnection,
  type ExtraHandlers,
  makeProtocolServers,
  type ProtocolServers,
  tlsOptions
} from "../../proxy/servers.js"
import type { ConnectionGate } from "./gate.js"
import { bindMode } from "./reusePort.js"
import { superviseSocket } from "./supervise.js"

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

/** A listener as the config names it (port 0: a free port the kernel picks). */
export interface WantedListener {
  readonly kind: "http" | "https"
  readonly address: string
  readonly port: number
}

/** A bound listening port. */
export interface Port {
  readonly key: string
  /** The server holding the listening socket (`server` itself, or one inherited from an upgrade). */
  readonly listening: net.Server
  /** The server connections are handed to (plain, or TLS). */
  readonly server: net.Server
  readonly protocols: ProtocolServers
  readonly bound: BoundListener
  /** Set when the port stops accepting: requests from then on are answered with `Connection: close`. */
  readonly state: { draining: boolean }
}

/** What every port of a Listener shares. */
export interface PortDeps {
  readonly ctx: ProxyContext
  readonly extra: ExtraHandlers
  readonly gate: ConnectionGate
  readonly fibers: FiberSet.FiberSet<void, never>
  readonly inherited: InheritedService
  readonly log: Logger
}

/** The listeners a snapshot asks for. */
export const wantedListeners = (c: ConfigSnapshot): ReadonlyArray<WantedListener> => {
  const out: Array<WantedListener> = []
  if (c.http) out.push({ kind: "http", address: c.http.bindAddress, port: c.http.port })
  if (c.https) out.push({ kind: "https", address: c.https.bindAddress, port: c.https.port })
  return out
}

export const keyOf = (w: WantedListener): string => listenerKey(w.kind, w.address, w.port)

const portOf = (server: net.Server, fallback: number): number => {
  const a = server.address()
  return typeof a === "object" && a !== null ? a.port : fallback
}

const listen = (server: net.Server, { kind, address, port }: WantedListener, reuse: boolean) =>
  Effect.async<number, ListenError>((resume) => {
    const onError = (err: NodeJS.ErrnoException) =>
      resume(Effect.fail(new ListenError({ kind, address, port, reason: err.code ?? err.message })))
    server.once("error", onError)
    // `exclusive`: the worker binds the socket itself rather than asking the cluster primary for its handle.
    const own = reuse ? { exclusive: true, reusePort: true } : {}
    server.listen({ port, host: address, backlog: 1024, ...own } as net.ListenOptions, () => {
      server.removeListener("error", onError)
      resume(Effect.succeed(portOf(server, port)))
    })
  })

/** The server a port hands its connections to: TLS (handshake first) or plain (HTTP/1.1 or h2c by the preface). */
const frontServer = (deps: PortDeps, w: WantedListener, c: ConfigSnapshot, protocols: ProtocolServers) => {
  const { gate, fibers } = deps
  if (w.kind === "https") {
    const t = tls.createServer(tlsOptions(c.https!, c))
    // before TLS's own 'connection' listener: a refused connection costs no handshake
    t.prependListener("connection", (socket: net.Socket) => {
      gate.admit(socket)
    })
    t.on("secureConnection", (socket: tls.TLSSocket) => {
      superviseSocket(fibers, socket)
      dispatchTlsConnection(socket, protocols)
    })
    // A failed or timed-out handshake: Node reports it here and leaves the socket open (`tls_handshake` would
    // otherwise close nothing).
    t.on("tlsClientError", (_err: Error, socket: tls.TLSSocket) => socket.destroy())
    return t
  }
  return net.createServer({ pauseOnConnect: true, noDelay: true }, (socket) => {
    if (!gate.admit(socket)) return
    superviseSocket(fibers, socket)
    dispatchPlainConnection(socket, protocols)
  })
}

/** Binds a port (or adopts the inherited socket for it); fails with a ListenError, releasing what it made. */
export const bindPort = (deps: PortDeps, w: WantedListener, c: ConfigSnapshot) =>
  Effect.gen(function* () {
    const { kind, address, port } = w
    const defaultPort = kind === "https" ? 443 : 80
    const state = { draining: false }
    const protocols = makeProtocolServers(
      c,
      (req, res, expectContinue) => {
        // Draining: answer with `Connection: close` so keep-alive clients leave cleanly instead of racing a close.
        if (state.draining && res instanceof http.ServerResponse) res.shouldKeepAlive = false
        handleRequest(deps.ctx, defaultPort, req, res, expectContinue)
      },
      deps.extra,
      deps.log
    )
    const server = frontServer(deps, w, c, protocols)
    const key = keyOf(w)
    const inherited = deps.inherited.take(key)
    let listening = server
    let mode: ReturnType<typeof bindMode> = "own"
    if (inherited !== undefined) {
      // Upgrade: the socket is already bound and listening; its connections go to our server from now on.
      listening = inherited.server
      inherited.adopt((socket) => server.emit("connection", socket))
    } else {
      mode = bindMode(c.reusePort)
      yield* listen(server, w, mode === "reuseport").pipe(Effect.onError(() => Effect.sync(() => protocols.release())))
    }
    const actual = portOf(listening, port)
    // after a successful bind only: a bind failure is reported once, by the ListenError
    listening.on("error", (err) => deps.log.log("error", "listener error", { kind, error: err.message }))
    const bound: BoundListener = { kind, address, port: actual }
    yield* event("info", "listening", {
      kind,
      address,
      port: actual,
      ...(inherited ? { inherited: true } : {}),
      ...(mode === "reuseport" ? { reuse_port: true } : {})
    })
    if (c.reusePort && mode === "round-robin")
      yield* event("warn", "reuse_port needs Node 22.12 or later on Linux: workers share the port round-robin", {
        node: process.versions.node
      })
    return { key, listening, server, protocols, bound, state } satisfies Port
  })

/** Closes a port bound for a reload that did not happen: nothing was accepted on it yet. */
export const unbind = (p: Port): void => {
  p.listening.close()
  p.protocols.release()
}
