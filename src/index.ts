// Package entry: the service layers and the pieces another Effect app needs to embed openproxy.

export { ConfigError, loadConfig, parseConfig, summarize } from "./config/load.js"
export type * from "./config/types.js"
export { type Identity, type RouteResult, Router } from "./domain/router.js"
export * as MainLayer from "./layers/Main.js"
export * as Config from "./services/Config.js"
export * as ConnectionPool from "./services/ConnectionPool.js"
export * as HealthChecker from "./services/HealthChecker.js"
export * as Listener from "./services/Listener.js"
export * as Metrics from "./services/Metrics.js"
export * as ProviderKeys from "./services/ProviderKeys.js"
export * as ProviderRegistry from "./services/ProviderRegistry.js"
export * as Reloader from "./services/Reloader.js"
