// Every accepted connection runs as a supervised fiber (src/services/Listener.ts `superviseSocket`): the fiber
// lives as long as the socket, and interrupting it — what the Listener's FiberSet does when its scope closes —
// destroys the socket. Real sockets on loopback.
import * as net from "node:net"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberSet from "effect/FiberSet"
import * as Scope from "effect/Scope"
import { superviseSocket } from "../src/services/Listener.js"

/** A loopback server whose accepted sockets are handed to `onSocket`; returns connected client sockets. */
const socketServer = Effect.acquireRelease(
  Effect.async<{ server: net.Server; accepted: Array<net.Socket>; port: number }>((resume) => {
    const accepted: Array<net.Socket> = []
    const server = net.createServer((s) => accepted.push(s))
    server.listen(0, "127.0.0.1", () => {
      const a = server.address() as net.AddressInfo
      resume(Effect.succeed({ server, accepted, port: a.port }))
    })
  }),
  ({ server }) =>
    Effect.async<void>((resume) => {
      server.close(() => resume(Effect.void))
    })
)

const connect = (port: number, accepted: Array<net.Socket>) =>
  Effect.async<{ client: net.Socket; serverSide: net.Socket }>((resume) => {
    const before = accepted.length
    const client = net.connect(port, "127.0.0.1")
    client.on("error", () => undefined)
    const wait = () => {
      if (accepted.length > before) resume(Effect.succeed({ client, serverSide: accepted[accepted.length - 1] }))
      else setTimeout(wait, 5)
    }
    client.once("connect", wait)
  })

const closed = (socket: net.Socket) =>
  Effect.async<void>((resume) => {
    if (socket.destroyed) return resume(Effect.void)
    socket.once("close", () => resume(Effect.void))
  })

describe("connection supervision", () => {
  it.scoped("a connection's fiber ends when its socket closes", () =>
    Effect.gen(function* () {
      const { accepted, port } = yield* socketServer
      const fibers = yield* FiberSet.make<void, never>()
      const a = yield* connect(port, accepted)
      const b = yield* connect(port, accepted)
      superviseSocket(fibers, a.serverSide)
      superviseSocket(fibers, b.serverSide)
      expect(yield* FiberSet.size(fibers)).toBe(2)
      a.client.destroy()
      yield* closed(a.serverSide)
      // the fiber's exit runs after the socket's close event
      yield* Effect.promise(() => new Promise((r) => setTimeout(r, 20)))
      expect(yield* FiberSet.size(fibers)).toBe(1)
      expect(b.serverSide.destroyed).toBe(false)
      b.client.destroy()
    })
  )

  it.scoped("closing the FiberSet's scope interrupts the fibers and destroys their sockets", () =>
    Effect.gen(function* () {
      const { accepted, port } = yield* socketServer
      const scope = yield* Scope.make()
      const fibers = yield* FiberSet.make<void, never>().pipe(Scope.extend(scope))
      const conns = [yield* connect(port, accepted), yield* connect(port, accepted), yield* connect(port, accepted)]
      for (const c of conns) superviseSocket(fibers, c.serverSide)
      expect(yield* FiberSet.size(fibers)).toBe(3)
      expect(conns.every((c) => !c.serverSide.destroyed)).toBe(true)
      yield* Scope.close(scope, Exit.void)
      expect(conns.every((c) => c.serverSide.destroyed)).toBe(true)
      // and the clients see their connections closed
      for (const c of conns) yield* closed(c.client)
    })
  )

  it.scoped("a socket already destroyed when supervised leaves no fiber behind", () =>
    Effect.gen(function* () {
      const { accepted, port } = yield* socketServer
      const fibers = yield* FiberSet.make<void, never>()
      const c = yield* connect(port, accepted)
      c.serverSide.destroy()
      superviseSocket(fibers, c.serverSide)
      yield* Effect.yieldNow()
      expect(yield* FiberSet.size(fibers)).toBe(0)
      c.client.destroy()
    })
  )
})
