// Upstream connection pools: one undici dispatcher per distinct upstream (scheme, host, port, HTTP/2 mode, CA,
// time-outs). HTTP/1.1 pools keep connections alive; HTTP/2 connections (ALPN over TLS, or h2c prior knowledge)
// multiplex streams. Pools unused for a while are closed by `sweep`. Every connection is made through
// `TrackedClient`, so the request path knows which connection a request was written on and whether that
// connection had served before (the one case where a non-idempotent request may be replayed: src/proxy/replay.ts).
import type * as net from "node:net"
import type * as tls from "node:tls"
import type { buildConnector as BuildConnector, Dispatcher, Client as UndiciClient } from "undici"
import type { ProviderConfig, Timeouts } from "../config/types.js"
import { originOf, upstreamTls } from "../domain/providers.js"
import { buildConnector, Client, Pool } from "../undici.js"

/** Streams per HTTP/2 upstream connection (a Node h2 server allows 100 by default). */
const H2_STREAMS = 100

export interface Upstream {
  readonly key: string
  readonly dispatcher: Dispatcher
  readonly origin: string
  /** Protocol of the connections this upstream uses, learnt from ALPN on connect (for `x-upstream-protocol`). */
  protocol: "h2" | "http/1.1"
  lastUsed: number
  inflight: number
  /** Set when the sweep closed it: a cached reference must not be used any more. */
  closed: boolean
}

/** One upstream connection (a TCP/TLS socket, or the socket of an HTTP/2 session). */
export interface UpstreamConnection {
  readonly socket: net.Socket
  readonly h2: boolean
  /** Responses that started on it; above 0, the connection is a reused (kept-alive) one. */
  served: number
}

/** A dispatch handler that wants to know the client its request was handed to (src/proxy/httpExchange.ts). */
export interface ConnectionAware {
  via: TrackedClient | undefined
}

/**
 * An undici Client that knows its current connection: `conn` is set by the connect hook before undici gets the
 * socket, and a Client has one socket at a time, so when undici calls a handler's `onConnect` (synchronously,
 * just before it writes the request) `via.conn` is the connection the request goes out on.
 */
export class TrackedClient extends Client {
  conn: UpstreamConnection | undefined
  override dispatch(opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    if ("via" in handler) (handler as ConnectionAware).via = this
    return super.dispatch(opts, handler)
  }
}

/** Wraps a connector so that each new socket becomes the client's current connection. */
const tracked = (
  client: () => TrackedClient,
  base: BuildConnector.connector,
  onSocket?: (socket: net.Socket) => void
): BuildConnector.connector =>
  ((options: BuildConnector.Options, cb: BuildConnector.Callback) =>
    base(options, (err, socket) => {
      if (err !== null) return cb(err, null)
      onSocket?.(socket as net.Socket)
      client().conn = { socket: socket as net.Socket, h2: (socket as tls.TLSSocket).alpnProtocol === "h2", served: 0 }
      cb(null, socket)
    })) as BuildConnector.connector

export class UpstreamPools {
  private readonly pools = new Map<string, Upstream>()
  /** Per provider object (immutable, one per snapshot): skips building the key string on every request. */
  private readonly byProvider = new WeakMap<ProviderConfig, { readonly t: Timeouts; readonly u: Upstream }>()

  /** The upstream for a provider under the given time-outs, created on first use. */
  get(p: ProviderConfig, t: Timeouts): Upstream {
    const cached = this.byProvider.get(p)
    if (cached !== undefined && cached.t === t && !cached.u.closed) {
      cached.u.lastUsed = Date.now()
      return cached.u
    }
    const origin = originOf(p)
    const key = `${origin}|${p.http2}|${p.caFile ?? ""}|${t.connectMs}|${t.tlsHandshakeMs}|${t.responseHeaderMs}|${t.idleMs}`
    let u = this.pools.get(key)
    if (u === undefined) {
      u = this.create(key, origin, p, t)
      this.pools.set(key, u)
    }
    u.lastUsed = Date.now()
    this.byProvider.set(p, { t, u })
    return u
  }

  private create(key: string, origin: string, p: ProviderConfig, t: Timeouts): Upstream {
    const timing = {
      headersTimeout: t.responseHeaderMs,
      bodyTimeout: t.idleMs,
      keepAliveTimeout: 4_000,
      keepAliveMaxTimeout: 60_000
    }
    const upstream: Upstream = {
      key,
      origin,
      dispatcher: undefined as unknown as Dispatcher,
      protocol: p.http2 === true && !p.tls ? "h2" : "http/1.1",
      lastUsed: Date.now(),
      inflight: 0,
      closed: false
    }
    if (!p.tls && p.http2 === true) {
      // h2c prior knowledge (what undici's H2CClient sets up), on one tracked client
      const base = buildConnector({ timeout: t.connectMs, allowH2: true, useH2c: true } as BuildConnector.BuildOptions)
      const dispatcher: TrackedClient = new TrackedClient(origin, {
        ...timing,
        allowH2: true,
        pipelining: H2_STREAMS,
        maxConcurrentStreams: H2_STREAMS,
        connect: tracked(() => dispatcher, base)
      })
      return Object.assign(upstream, { dispatcher })
    }
    if (!p.tls) {
      const base = buildConnector({ timeout: t.connectMs, noDelay: true })
      const dispatcher = new Pool(origin, {
        ...timing,
        factory: (o, opts) => {
          const client: TrackedClient = new TrackedClient(o, {
            ...(opts as UndiciClient.Options),
            connect: tracked(() => client, base)
          })
          return client
        }
      })
      return Object.assign(upstream, { dispatcher })
    }
    const allowH2 = p.http2 !== false
    const base = buildConnector({
      timeout: t.connectMs + t.tlsHandshakeMs,
      noDelay: true,
      allowH2,
      ...(p.http2 === true ? { ALPNProtocols: ["h2"] } : {}),
      ...upstreamTls(p)
    })
    const dispatcher = new Pool(origin, {
      ...timing,
      allowH2,
      factory: (o, opts) => {
        // Each connection learns its protocol from ALPN: an h2 connection may carry many streams at once,
        // an HTTP/1.1 one exactly one request at a time (no pipelining: LLM answers are long).
        const client: TrackedClient = new TrackedClient(o, {
          ...(opts as UndiciClient.Options),
          connect: tracked(
            () => client,
            base,
            (socket) => {
              if ((socket as tls.TLSSocket).alpnProtocol === "h2") {
                upstream.protocol = "h2"
                client.pipelining = H2_STREAMS
              } else {
                upstream.protocol = "http/1.1"
              }
            }
          )
        })
        return client
      }
    })
    return Object.assign(upstream, { dispatcher })
  }

  /** Closes pools idle for longer than `idleMs` with nothing in flight. */
  sweep(idleMs: number): void {
    const now = Date.now()
    for (const [key, u] of this.pools) {
      if (u.inflight === 0 && now - u.lastUsed > idleMs) {
        u.closed = true
        this.pools.delete(key)
        u.dispatcher.close().catch(() => undefined)
      }
    }
  }

  /** Requests in flight to a provider's upstream origin (read-only, for the admin API). */
  inflightTo(p: ProviderConfig): number {
    const origin = originOf(p)
    let n = 0
    for (const u of this.pools.values()) if (u.origin === origin) n += u.inflight
    return n
  }

  get size(): number {
    return this.pools.size
  }

  /** Closes every pool (at shutdown, after in-flight work has drained or the grace period is over). */
  async closeAll(): Promise<void> {
    const all = [...this.pools.values()]
    for (const u of all) u.closed = true
    this.pools.clear()
    await Promise.all(all.map((u) => u.dispatcher.destroy().catch(() => undefined)))
  }
}
