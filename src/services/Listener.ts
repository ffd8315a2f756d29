// The `Listener` service: binds the configured ports and runs every accepted connection as a supervised fiber
// in a FiberSet. Closing its scope stops accepting at once, closes idle connections, waits for in-flight work
// up to `graceful_shutdown_timeout`, then interrupts what is left (which destroys those sockets). The parts live
// in listener/: binding a port (bind.ts), the connection gate (gate.ts), the per-connection fiber (supervise.ts),
// draining (drain.ts) and a reload's diff (reconfigure.ts).
import cluster from "node:cluster"
import type * as net from "node:net"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as FiberSet from "effect/FiberSet"
import * as Layer from "effect/Layer"
import * as SubscriptionRef from "effect/SubscriptionRef"
import type { ConfigSnapshot } from "../config/types.js"
import type { CooldownRegistry } from "../domain/retry/index.js"
import { Inherited } from "../lifecycle/Inherited.js"
import { event, plain } from "../log.js"
import type { ProxyContext } from "../proxy/context.js"
import { makeExtraHandlers } from "../proxy/upgrade.js"
import { Config } from "./Config.js"
import { ConnectionPool } from "./ConnectionPool.js"
import { HealthChecker } from "./HealthChecker.js"
import {
  type BoundListener,
  bindPort,
  type ListenError,
  type Port,
  type PortDeps,
  wantedListeners
} from "./listener/bind.js"
import { drainConnections, drainPort } from "./listener/drain.js"
import { ConnectionGate } from "./listener/gate.js"
import { reconfigure } from "./listener/reconfigure.js"
import * as ProviderKeys from "./ProviderKeys.js"
import { ProviderRegistry } from "./ProviderRegistry.js"
import * as RequestPath from "./RequestPath.js"

export { type BoundListener, ListenError } from "./listener/bind.js"
export { ConnectionGate } from "./listener/gate.js"
export { superviseSocket } from "./listener/supervise.js"

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
  /** The request path's provider-key cool-downs (SPEC §11), for the admin listener's `/providers`. */
  readonly cooldowns: CooldownRegistry
}

export class Listener extends Context.Tag("openproxy/Listener")<Listener, ListenerService>() {}

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
    log: yield* plain
  })
  return ctx
})

/** How long a closing cluster worker stays up for connections the primary handed it just before. */
const CLUSTER_HANDOFF_MS = 300

export const make = Effect.gen(function* () {
  const config = yield* Config
  const inherited = yield* Inherited
  const snapshot: ConfigSnapshot = yield* SubscriptionRef.get(config.current)
  const ctx = yield* makeProxyContext
  const fibers = yield* FiberSet.make<void, never>()
  const scope = yield* Effect.scope
  const gate = new ConnectionGate(snapshot.maxConnections, ctx.log)
  yield* Effect.addFinalizer(() => Effect.sync(() => gate.dispose()))
  const deps: PortDeps = { ctx, extra: makeExtraHandlers(ctx), gate, fibers, inherited, log: ctx.log }

  /** Listening ports by key; `retired` are ports a reload removed whose connections are still draining. */
  const ports = new Map<string, Port>()
  const retired = new Set<Port>()

  /** Stops accepting on a port and drains its connections for up to the grace period, then closes the rest. */
  const retire = (p: Port, graceMs: number) =>
    Effect.gen(function* () {
      retired.add(p)
      p.state.draining = true
      p.listening.close()
      yield* event("info", "listener closed", { kind: p.bound.kind, address: p.bound.address, port: p.bound.port })
      yield* drainPort(p.protocols, graceMs)
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
      // A cluster worker keeps running a moment after closing: the primary may have handed it connections that
      // are still in the IPC pipe; it must live to accept them (or to answer "not accepted"), or they hang.
      const minimum = cluster.isWorker ? CLUSTER_HANDOFF_MS : 0
      const left = yield* drainConnections(fibers, () => all().map((p) => p.protocols), grace, minimum)
      if (left > 0) yield* event("warn", "grace period over, closing connections", { open: left })
      for (const p of all()) p.protocols.release()
    })
  )

  for (const w of wantedListeners(snapshot)) {
    const p = yield* bindPort(deps, w, snapshot)
    ports.set(p.key, p)
  }
  inherited.closeUnused()

  const self = {
    ports,
    bind: (w: Parameters<typeof bindPort>[1], c: ConfigSnapshot) => bindPort(deps, w, c),
    retire,
    configureShared: (next: ConfigSnapshot) => {
      gate.max = next.maxConnections
    }
  }

  return {
    get bound() {
      return [...ports.values()].map((p) => p.bound)
    },
    connections: FiberSet.size(fibers),
    reconfigure: Effect.fn("Listener.reconfigure")(function* <E>(next: ConfigSnapshot, commit: Effect.Effect<void, E>) {
      return yield* reconfigure(self, next, commit)
    }),
    servers: () => [...ports.values()].map((p) => ({ key: p.key, server: p.listening })),
    cooldowns: ctx.cooldowns
  } satisfies ListenerService
})

export const layer: Layer.Layer<
  Listener,
  ListenError,
  Config | Inherited | ProviderRegistry | ConnectionPool | HealthChecker
> = Layer.scoped(Listener, make)
