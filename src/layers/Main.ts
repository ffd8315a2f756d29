// Composition only: the proxy's service graph, from a config file (or a ready snapshot) to bound listeners.
import * as Layer from "effect/Layer"
import type { ConfigSnapshot } from "../config/types.js"
import * as Inherited from "../lifecycle/Inherited.js"
import * as Admin from "../services/Admin.js"
import * as Config from "../services/Config.js"
import * as ConnectionPool from "../services/ConnectionPool.js"
import * as HealthChecker from "../services/HealthChecker.js"
import * as Limits from "../services/Limits.js"
import * as Listener from "../services/Listener.js"
import * as Metrics from "../services/Metrics.js"
import * as ProviderKeys from "../services/ProviderKeys.js"
import * as ProviderRegistry from "../services/ProviderRegistry.js"
import * as Reloader from "../services/Reloader.js"

/**
 * Everything below Config: health, registry, pools, metrics, the listeners and the admin port, for a Config layer;
 * the listeners take the sockets `inherited` holds (an upgraded process's) before binding their own.
 */
export const proxyLayer = <E, R>(
  config: Layer.Layer<Config.Config, E, R>,
  inherited: Layer.Layer<Inherited.Inherited> = Inherited.none
) => {
  // One KeyResolver for the probes and the request path (ProviderKeys), provided below both.
  const base = Layer.mergeAll(config, Metrics.layer, ProviderKeys.layer)
  // Below the listeners: its Limiter closes only after they drained (requests settle on it to the end).
  const limits = Limits.layer.pipe(Layer.provideMerge(base))
  const health = HealthChecker.layer.pipe(Layer.provideMerge(limits))
  const registry = ProviderRegistry.layer.pipe(Layer.provideMerge(health))
  const services = Layer.merge(registry, ConnectionPool.layer)
  const listeners = Listener.layer.pipe(Layer.provideMerge(services), Layer.provide(inherited))
  // Built after the listeners, so its finalizer runs first: the admin port closes as a drain starts.
  return Admin.layer.pipe(Layer.provideMerge(listeners))
}

/** The proxy as `openproxy start` runs it. */
export const fromFile = (file: string, override?: Config.SnapshotOverride) => proxyLayer(Config.layer(file, override))

/** The proxy over a snapshot built in code (tests, embedding apps). */
export const fromSnapshot = (snapshot: ConfigSnapshot) => proxyLayer(Config.layerSnapshot(snapshot))

/** `openproxy start`: the proxy from a file plus the SIGHUP reloader, on the sockets an upgrade passed on. */
export const cli = (
  file: string,
  override?: Config.SnapshotOverride,
  inherited: Layer.Layer<Inherited.Inherited> = Inherited.none
) => Reloader.layerSighup.pipe(Layer.provideMerge(proxyLayer(Config.layer(file, override), inherited)))
