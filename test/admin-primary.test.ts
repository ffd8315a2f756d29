// The cluster primary's admin port (lifecycle/adminPrimary.ts) as a scoped resource: bound from the first config
// read, moved / kept / closed by each reload as the re-read config says (a failed read or bind changes nothing), and
// closed with the scope. Reloads are a Stream (the primary's SIGHUP; a Queue here), the ports real sockets. Without
// workers, /readyz answers 503 "no worker running" from the real handler.
import * as net from "node:net"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Queue from "effect/Queue"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { afterEach, describe, expect, it } from "vitest"
import { parseConfig } from "../src/config/load.js"
import type { ConfigSnapshot } from "../src/config/types.js"
import { servePrimaryAdmin } from "../src/lifecycle/adminPrimary.js"
import { makeLogger } from "../src/log.js"
import { h1 } from "./support/http.js"

const freePort = () =>
  new Promise<number>((r) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => {
      const n = (s.address() as net.AddressInfo).port
      s.close(() => r(n))
    })
  })

const config = (admin: string) =>
  Effect.runPromise(
    parseConfig(
      `
http_port: 0
${admin}
providers:
  - { type: openai, host: "llm.test", endpoint: "127.0.0.1:9", tls: false, api_key: "sk-up" }
`,
      "/tmp/admin-primary-test.yml",
      {}
    )
  )

/** Whether something accepts connections on the port. */
const accepts = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = net.connect(port, "127.0.0.1")
    s.once("connect", () => {
      s.destroy()
      resolve(true)
    })
    s.once("error", () => resolve(false))
  })

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
/** Polls `f` until it gives `want` (bounded). */
const eventually = async <A>(f: () => Promise<A>, want: A) => {
  let got = await f()
  for (let i = 0; i < 100 && got !== want; i++) {
    await sleep(20)
    got = await f()
  }
  return got
}

const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

describe("the primary's admin port", () => {
  it("binds from the config, moves, keeps or closes on reload, and closes with its scope", async () => {
    const [p1, p2, p3] = [await freePort(), await freePort(), await freePort()]
    // what the next read of the config returns (a rejected promise: a config the workers refuse)
    let next: () => Promise<ConfigSnapshot> = () => config(`admin: {port: ${p1}, bind_address: 127.0.0.1}`)
    const lines: Array<string> = []
    const logger = makeLogger("text", "info", (line) => lines.push(line))
    const reloads = await Effect.runPromise(Queue.unbounded<void>())
    const scope = await Effect.runPromise(Scope.make())
    let closed = false
    cleanups.push(async () => {
      if (!closed) await Effect.runPromise(Scope.close(scope, Exit.void))
    })
    await Effect.runPromise(
      servePrimaryAdmin(() => next(), logger, Stream.fromQueue(reloads)).pipe(Scope.extend(scope))
    )
    const reload = () => Effect.runPromise(Queue.offer(reloads, undefined))

    expect(await accepts(p1)).toBe(true)
    const ready = await h1(p1, { path: "/readyz" })
    expect(ready.status).toBe(503)
    expect(ready.text).toContain("no worker running")
    expect(lines.join("\n")).toMatch(new RegExp(`admin listening address=127\\.0\\.0\\.1 port=${p1}`))

    // moved: the new port answers, the old one is closed
    next = () => config(`admin: {port: ${p2}, bind_address: 127.0.0.1}`)
    await reload()
    expect(await eventually(() => accepts(p2), true)).toBe(true)
    expect(await eventually(() => accepts(p1), false)).toBe(false)

    // a config the workers refuse: nothing changes
    next = () => Promise.reject(new Error("bad config"))
    await reload()
    await sleep(100)
    expect(await accepts(p2)).toBe(true)

    // a port that cannot be bound: logged, the old port kept
    const blocker = net.createServer()
    await new Promise<void>((r) => blocker.listen(p3, "127.0.0.1", () => r()))
    cleanups.push(() => new Promise((r) => blocker.close(() => r())))
    next = () => config(`admin: {port: ${p3}, bind_address: 127.0.0.1}`)
    await reload()
    expect(await eventually(async () => lines.some((l) => l.includes("admin listener not changed")), true)).toBe(true)
    expect(await accepts(p2)).toBe(true)

    // admin removed from the config: closed
    next = () => config("")
    await reload()
    expect(await eventually(() => accepts(p2), false)).toBe(false)

    // opened again, then the scope closes: closed with it
    next = () => config(`admin: {port: ${p1}, bind_address: 127.0.0.1}`)
    await reload()
    expect(await eventually(() => accepts(p1), true)).toBe(true)
    await Effect.runPromise(Scope.close(scope, Exit.void))
    closed = true
    expect(await accepts(p1)).toBe(false)
  })

  it("fails when the first bind fails", async () => {
    const blocker = net.createServer()
    const port = await freePort()
    await new Promise<void>((r) => blocker.listen(port, "127.0.0.1", () => r()))
    cleanups.push(() => new Promise((r) => blocker.close(() => r())))
    const exit = await Effect.runPromiseExit(
      Effect.scoped(
        servePrimaryAdmin(
          () => config(`admin: {port: ${port}, bind_address: 127.0.0.1}`),
          makeLogger("text", "error", () => undefined),
          Stream.never
        )
      )
    )
    expect(Exit.isFailure(exit)).toBe(true)
    expect(String(Exit.isFailure(exit) ? exit.cause : "")).toMatch(/cannot listen on admin 127\.0\.0\.1/)
  })
})
