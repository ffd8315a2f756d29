// A request keeps the config snapshot it started with, and a reload is visible to the very next request
// (issue 10, defect 7; SPEC §7): the router is rebuilt as the reloader swaps the snapshot in (not on a forked
// fiber's next turn), and a request's later steps (its upstream time-outs, its retries) never read a newer one.
import { access, writeFile } from "node:fs/promises"
import * as http from "node:http"
import * as path from "node:path"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Scope from "effect/Scope"
import * as SubscriptionRef from "effect/SubscriptionRef"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import * as Main from "../src/layers/Main.js"
import { Config } from "../src/services/Config.js"
import { Listener } from "../src/services/Listener.js"
import { ProviderRegistry } from "../src/services/ProviderRegistry.js"
import * as Reloader from "../src/services/Reloader.js"
import { h1 } from "./support/http.js"
import { type MockProvider, startMockProvider } from "./support/mockProvider.js"
import { startProxyProcess, tempDir } from "./support/proxy.js"

let dir: string
let mock: MockProvider
beforeAll(async () => {
  dir = await tempDir("openproxy-snapshot-")
  mock = await startMockProvider()
})
afterAll(async () => {
  await mock?.close()
})

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

const forwardTo = (host: string, port: number, extra = "") => `
http_port: 0
http_bind_address: 127.0.0.1
${extra}
providers:
  - { type: forward, host: "${host}", endpoint: "127.0.0.1:${port}", tls: false }
`

describe("config snapshots", () => {
  it("once a reload reports success, the router already serves the new snapshot", async () => {
    const file = path.join(dir, "reload-visible.yml")
    await writeFile(file, forwardTo("before.test", mock.port))
    const scope = Effect.runSync(Scope.make())
    const layer = Reloader.layer.pipe(Layer.provideMerge(Main.fromFile(file)))
    const ctx = await Effect.runPromise(Layer.buildWithScope(layer, scope))
    try {
      const port = Context.get(ctx, Listener).bound[0]!.port
      expect((await h1(port, { host: "before.test", path: "/__headers" })).status).toBe(200)
      for (let i = 0; i < 5; i++) {
        const host = `after${i}.test`
        await writeFile(file, forwardTo(host, mock.port))
        // In the reload's own fiber, right after it reports: no other fiber has had a turn yet.
        const seen = await Effect.runPromise(
          Effect.gen(function* () {
            const ok = yield* Context.get(ctx, Reloader.Reloader).reload
            const live = yield* SubscriptionRef.get(Context.get(ctx, Config).current)
            return { ok, same: Context.get(ctx, ProviderRegistry).current().snapshot === live }
          })
        )
        expect(seen).toEqual({ ok: true, same: true })
        expect((await h1(port, { host, path: "/__headers" })).status).toBe(200)
        expect((await h1(port, { host: i === 0 ? "before.test" : `after${i - 1}.test`, path: "/" })).status).toBe(404)
      }
    } finally {
      await Effect.runPromise(Scope.close(scope, Exit.void))
    }
  })

  it("a request keeps its snapshot's time-outs when a SIGHUP swaps in new ones while it is under way", async () => {
    // The upstream answers after 1.5 s. The first snapshot allows 30 s for the response head; the reload, made
    // while the request waits for its `$(command)` key, allows 0.3 s. The request started on the first one.
    const slow = http.createServer((_req, res) => {
      setTimeout(() => res.end("slow ok"), 1_500)
    })
    await new Promise<void>((r) => slow.listen(0, "127.0.0.1", r))
    const port = (slow.address() as { port: number }).port
    const started = path.join(dir, "key-started")
    const go = path.join(dir, "key-go")
    const key = `"$(touch ${started}; while [ ! -e ${go} ]; do sleep 0.05; done; echo sk-gated)"`
    const yaml = (responseHeader: string) => `
http_port: 0
http_bind_address: 127.0.0.1
timeouts: { response_header: ${responseHeader} }
providers:
  - { type: openai, host: "gated.test", endpoint: "127.0.0.1:${port}", tls: false, api_key: ${key} }
`
    const file = path.join(dir, "keep-snapshot.yml")
    await writeFile(file, yaml("30"))
    const proc = await startProxyProcess(file)
    try {
      const reply = h1(proc.ports.http!, { host: "gated.test", path: "/v1/models" })
      const deadline = Date.now() + 10_000
      while (
        !(await access(started).then(
          () => true,
          () => false
        ))
      ) {
        if (Date.now() > deadline) throw new Error("the key command never ran")
        await sleep(20)
      }
      await writeFile(file, yaml("0.3"))
      proc.child.kill("SIGHUP")
      while (!proc.output().includes("config reloaded")) {
        if (Date.now() > deadline) throw new Error(`no reload:\n${proc.output()}`)
        await sleep(20)
      }
      await writeFile(go, "")
      const r = await reply
      expect(r.status, r.text).toBe(200)
      expect(r.text).toBe("slow ok")
      // and the next request is on the new snapshot: its 0.3 s are too short for this upstream
      expect((await h1(proc.ports.http!, { host: "gated.test", path: "/v1/models" })).status).toBe(504)
    } finally {
      proc.child.kill("SIGKILL")
      await proc.exited
      slow.close()
    }
  })
})
