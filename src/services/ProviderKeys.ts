// The `ProviderKeys` service: the one KeyResolver of a process (SPEC §2 `$(command)` keys and their cache),
// shared by the request path and the health probes, so a command key is run and cached once for both.
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { KeyResolver } from "../domain/keys.js"

export class ProviderKeys extends Context.Tag("openproxy/ProviderKeys")<ProviderKeys, KeyResolver>() {}

export const layer: Layer.Layer<ProviderKeys> = Layer.sync(ProviderKeys, () => new KeyResolver())

/**
 * The process's resolver, or a resolver of its own for a service built without the layer (unit tests that
 * compose one service): the Main layer always provides it, so the request path and the probes share one.
 */
export const resolver: Effect.Effect<KeyResolver> = Effect.map(Effect.serviceOption(ProviderKeys), (o) =>
  Option.getOrElse(o, () => new KeyResolver())
)
