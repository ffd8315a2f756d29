// The real active health probe (SPEC §6): the provider's `health_check` request answered 2xx (sent with the
// provider's credential), or — without a `health_check` block — a TCP (and TLS) connection that succeeds.
// Every probe is interruptible: interrupting it (the per-check time-out, a reload) destroys its socket.
import * as net from "node:net"
import * as tls from "node:tls"
import * as Effect from "effect/Effect"
import type { ConfigSnapshot, ProviderConfig } from "../config/types.js"
import { providerCredentialHeaders } from "../domain/credentials.js"
import type { KeyResolver } from "../domain/keys.js"
import { originOf, upstreamTls } from "../domain/providers.js"
import { Client } from "../undici.js"

/** One active check of one provider: succeeds with true when healthy. Never fails. */
export type Probe = (p: ProviderConfig, snapshot: ConfigSnapshot) => Effect.Effect<boolean>

/** A TCP (+TLS when `tls`) connection to the upstream that opens, then is closed at once. */
export const connectProbe = (p: ProviderConfig): Effect.Effect<boolean> =>
  Effect.async<boolean>((resume) => {
    const socket: net.Socket = p.tls
      ? tls.connect({
          host: p.endpointHost,
          port: p.endpointPort,
          ALPNProtocols: ["http/1.1"],
          ...upstreamTls(p)
        })
      : net.connect({ host: p.endpointHost, port: p.endpointPort })
    const done = (ok: boolean) => {
      socket.removeAllListeners()
      socket.on("error", () => undefined)
      socket.destroy()
      resume(Effect.succeed(ok))
    }
    socket.once(p.tls ? "secureConnect" : "connect", () => done(true))
    socket.once("error", () => done(false))
    socket.once("close", () => done(false))
    return Effect.sync(() => {
      socket.removeAllListeners()
      socket.on("error", () => undefined)
      socket.destroy()
    })
  })

/** The `health_check` request with the provider's first key; healthy on 2xx. */
export const requestProbe =
  (keys: KeyResolver) =>
  (p: ProviderConfig): Effect.Effect<boolean> =>
    Effect.async<boolean>((resume) => {
      const hc = p.healthCheck!
      const controller = new AbortController()
      const client = new Client(originOf(p), {
        connect: { ...(p.tls ? upstreamTls(p) : {}) },
        pipelining: 0
      })
      const finish = (ok: boolean) => {
        client.destroy().catch(() => undefined)
        resume(Effect.succeed(ok))
      }
      const send = async (): Promise<boolean> => {
        const key = p.keys[0]
        const resolved = key === undefined ? undefined : await keys.resolve(key.source, p.apiKeyCacheTtlMs)
        const headers: Array<string> = ["host", p.upstreamHostHeader]
        for (const [name, value] of hc.headers) headers.push(name, value)
        headers.push(...providerCredentialHeaders(p.type, resolved, key?.source._tag === "Command", undefined))
        const res = await client.request({
          origin: originOf(p),
          path: hc.path,
          method: hc.method as "GET",
          headers,
          body: hc.body ?? null,
          signal: controller.signal
        })
        await res.body.dump()
        return res.statusCode >= 200 && res.statusCode < 300
      }
      send().then(finish, () => finish(false))
      return Effect.sync(() => {
        controller.abort()
        client.destroy().catch(() => undefined)
      })
    })

/** The real probe: the request probe when the provider has a `health_check` block, else a connect probe. */
export const makeProbe =
  (keys: KeyResolver): Probe =>
  (p) =>
    p.healthCheck !== undefined ? requestProbe(keys)(p) : connectProbe(p)

/** For log lines: never the key, only where the probe went. */
export const probeTarget = (p: ProviderConfig): string => `${originOf(p)}${p.healthCheck?.path ?? ""}`
