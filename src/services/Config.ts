// The `Config` service: the live configuration snapshot in a `SubscriptionRef`. Other services subscribe to
// its changes; a request reads the current snapshot once (through the ProviderRegistry) and keeps it.
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as SubscriptionRef from "effect/SubscriptionRef"
import { type ConfigError, loadConfig } from "../config/load.js"
import type { ConfigSnapshot } from "../config/types.js"

export interface ConfigService {
  /** The file the snapshot was read from; undefined for a snapshot given directly (tests, embedding apps). */
  readonly file: string | undefined
  readonly current: SubscriptionRef.SubscriptionRef<ConfigSnapshot>
  /**
   * Re-reads and validates the file without swapping it in. Reloading is the Reloader's (services/Reloader.ts): it
   * binds new listeners first and sets the snapshot only when they bound (SPEC §7); nothing else swaps it.
   */
  readonly load: Effect.Effect<ConfigSnapshot, ConfigError>
}

export class Config extends Context.Tag("openproxy/Config")<Config, ConfigService>() {}

/** Adjustments the command line makes to every snapshot read from the file (e.g. `--enable-health-check`). */
export type SnapshotOverride = (c: ConfigSnapshot) => ConfigSnapshot

export const make = (file: string, override: SnapshotOverride = (c) => c): Effect.Effect<ConfigService, ConfigError> =>
  Effect.gen(function* () {
    const current = yield* SubscriptionRef.make(override(yield* loadConfig(file)))
    const load = loadConfig(file).pipe(Effect.map(override))
    return { file, current, load }
  })

/** The real layer: loads `file` (failing with a ConfigError that names the field). */
export const layer = (file: string, override?: SnapshotOverride): Layer.Layer<Config, ConfigError> =>
  Layer.effect(Config, make(file, override))

/** A layer over a ready snapshot, for tests and for apps that build their config in code. */
export const layerSnapshot = (snapshot: ConfigSnapshot): Layer.Layer<Config> =>
  Layer.effect(
    Config,
    Effect.gen(function* () {
      const current = yield* SubscriptionRef.make(snapshot)
      return { file: undefined, current, load: SubscriptionRef.get(current) }
    })
  )
