// The `Inherited` service: listening sockets this process received from the one it replaces (the SIGUSR2
// upgrade, lifecycle/handover.ts), by listener key. A layer input rather than module state: main.ts provides
// `layer(handles)` in a process started by an upgrade and `none` otherwise; the Listener takes a handle instead of
// binding, and closes those the new config no longer listens on.
import type * as net from "node:net"
import * as Context from "effect/Context"
import * as Layer from "effect/Layer"

/**
 * A listening server received from the previous process. Node has it listening (and accepting) as soon as it
 * arrives, before this process has built its listeners: connections accepted meanwhile wait in a queue until a
 * listener adopts the server (they would hang forever otherwise).
 */
export interface InheritedServer {
  readonly server: net.Server
  /** Routes every connection, queued ones first, to `onConnection`. */
  readonly adopt: (onConnection: (socket: net.Socket) => void) => void
}

export interface InheritedService {
  /** Takes the handle for a listener key (`listenerKey`), if the previous process passed one. */
  readonly take: (key: string) => InheritedServer | undefined
  /** Closes the handles nobody took (their connections are destroyed). */
  readonly closeUnused: () => void
}

export class Inherited extends Context.Tag("openproxy/Inherited")<Inherited, InheritedService>() {}

/** Starts queueing a received server's connections at once, until a listener adopts it. */
export const inherit = (server: net.Server): InheritedServer => {
  const queue: Array<net.Socket> = []
  let handler: ((socket: net.Socket) => void) | undefined
  server.on("connection", (socket: net.Socket) => {
    if (handler !== undefined) handler(socket)
    else queue.push(socket)
  })
  return {
    server,
    adopt: (onConnection) => {
      handler = onConnection
      for (const socket of queue.splice(0)) onConnection(socket)
    }
  }
}

/** The key a listening port is known by across processes: the configured kind, address and port. */
export const listenerKey = (kind: "http" | "https", address: string, port: number): string =>
  `${kind}|${address}|${port}`

/** The service over received handles (each taken at most once). */
export const make = (handles: ReadonlyMap<string, InheritedServer>): InheritedService => {
  const left = new Map(handles)
  return {
    take: (key) => {
      const h = left.get(key)
      left.delete(key)
      return h
    },
    closeUnused: () => {
      for (const h of left.values()) {
        h.server.close()
        h.adopt((socket) => socket.destroy())
      }
      left.clear()
    }
  }
}

export const layer = (handles: ReadonlyMap<string, InheritedServer>): Layer.Layer<Inherited> =>
  Layer.sync(Inherited, () => make(handles))

/** A process that inherited nothing (every start but an upgrade's). */
export const none: Layer.Layer<Inherited> = layer(new Map())
