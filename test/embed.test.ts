// The package entry is usable from another Effect app: build the proxy from a snapshot made in code, through
// the exported layers, and send a request through it.
import { describe, expect, it } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { Listener, MainLayer, ProviderRegistry, parseConfig } from "../src/index.js"
import { h1 } from "./support/http.js"
import { startMockProvider } from "./support/mockProvider.js"

describe("package entry", () => {
  it.scoped("MainLayer.fromSnapshot serves requests and exposes the services", () =>
    Effect.gen(function* () {
      const mock = yield* Effect.acquireRelease(
        Effect.promise(() => startMockProvider()),
        (m) => Effect.promise(() => m.close())
      )
      const snapshot = yield* parseConfig(
        `http_port: 0
http_bind_address: 127.0.0.1
providers:
  - { type: forward, host: "embedded.test", endpoint: "127.0.0.1:${mock.port}", tls: false }
`,
        "/tmp/embedded.yml",
        {}
      )
      // built in the test's scope: the proxy runs until the scope closes
      const context = yield* Layer.build(MainLayer.fromSnapshot(snapshot))
      const port = Context.get(context, Listener.Listener).bound[0].port
      const router = Context.get(context, ProviderRegistry.ProviderRegistry).current()
      expect(router.snapshot.providers).toHaveLength(1)
      const r = yield* Effect.promise(() => h1(port, { host: "embedded.test", path: "/__headers" }))
      expect(r.status).toBe(200)
    })
  )
})
