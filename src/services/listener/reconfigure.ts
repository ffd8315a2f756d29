// A reload's listeners (SPEC §7): the diff between the ports bound now and those a new snapshot asks for. Added
// ports are bound before anything changes; the snapshot is swapped in only when they all bound; kept ports take
// the new settings and certificate; removed ports stop accepting and drain.
import type * as tls from "node:tls"
import * as Effect from "effect/Effect"
import type { ConfigSnapshot } from "../../config/types.js"
import { setHandshakeTimeout, tlsOptions } from "../../proxy/servers.js"
import { keyOf, type ListenError, type Port, unbind, type WantedListener, wantedListeners } from "./bind.js"

/** What the diff works on: the ports by key, and how to bind one and retire one. */
export interface Ports {
  readonly ports: Map<string, Port>
  readonly bind: (w: WantedListener, c: ConfigSnapshot) => Effect.Effect<Port, ListenError>
  /** Stops accepting on a removed port and starts its drain (in the background). */
  readonly retire: (p: Port, graceMs: number) => Effect.Effect<void>
  /** Applies the new snapshot to what is not per port (the connection limit). */
  readonly configureShared: (next: ConfigSnapshot) => void
}

export const reconfigure = <E>(
  self: Ports,
  next: ConfigSnapshot,
  commit: Effect.Effect<void, E>
): Effect.Effect<void, ListenError | E> =>
  Effect.gen(function* () {
    const { ports } = self
    const wanted = wantedListeners(next)
    const wantedKeys = new Set(wanted.map(keyOf))
    const added: Array<Port> = []
    for (const w of wanted) {
      if (ports.has(keyOf(w))) continue
      const r = yield* Effect.either(self.bind(w, next))
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
    self.configureShared(next)
    for (const p of added) ports.set(p.key, p)
    for (const [key, p] of ports) {
      if (!wantedKeys.has(key)) {
        ports.delete(key)
        yield* self.retire(p, next.gracefulShutdownTimeoutMs)
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
