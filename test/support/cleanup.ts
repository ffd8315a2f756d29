// Test clean-up in one place: what a test starts (mock providers, proxies in-process or as processes, servers,
// agents) registers how to stop it, and everything registered is stopped after each test (or after the file), last
// started first, so no socket or process outlives the test that opened it. Also the small waits and ports the wire
// tests share.
import { writeFile } from "node:fs/promises"
import type * as http from "node:http"
import type * as http2 from "node:http2"
import * as net from "node:net"
import * as path from "node:path"
import { afterAll, afterEach } from "vitest"
import type { MockOptions, MockProvider } from "./mockProvider.js"
import { startMockProvider } from "./mockProvider.js"
import { type ProxyProcess, type RunningProxy, startProxy, startProxyProcess, tempDir } from "./proxy.js"

/** A `node dist/main.js start` process and the ports it logged (the admin port, when one is configured). */
export interface StartedProcess {
  readonly proc: ProxyProcess
  readonly httpPort: number
  readonly adminPort: number
}

/** A stack of stop functions. */
export class Cleanup {
  private readonly stops: Array<() => unknown> = []

  /** Registers `stop`; returns `value` (so `const x = cleanup.add(await start(), () => x.close())` reads well). */
  add<A>(value: A, stop: (value: A) => unknown): A {
    this.stops.push(() => stop(value))
    return value
  }

  /** Registers a stop function. */
  defer(stop: () => unknown): void {
    this.stops.push(stop)
  }

  /** Stops everything registered so far, last first. */
  async run(): Promise<void> {
    for (const stop of this.stops.splice(0).reverse()) await stop()
  }

  /** Starts a mock provider (src/mock) that is closed with the rest. */
  mock(options?: MockOptions): Promise<MockProvider> {
    return startMockProvider(options).then((m) => this.add(m, () => m.close()))
  }

  /** Starts the proxy in this process (all its layers, support/proxy.ts) from `yaml`; closed with the rest. */
  proxy(yaml: string): Promise<RunningProxy> {
    return startProxy(yaml).then((p) => this.add(p, () => p.close()))
  }

  /** Writes `yaml` to a temp file and starts a proxy process on it (stopped with the rest). */
  async process(yaml: string): Promise<StartedProcess> {
    const file = path.join(await tempDir(), "config.yml")
    await writeFile(file, yaml)
    const proc = this.add(await startProxyProcess(file), (p) => p.stop())
    const admin = /admin listening address=\S+ port=(\d+)/.exec(proc.output())
    return { proc, httpPort: proc.ports.http ?? 0, adminPort: Number(admin?.[1] ?? 0) }
  }
}

/** A Cleanup run after each test of the file that calls this (at its top level). */
export const cleanupAfterEach = (): Cleanup => {
  const c = new Cleanup()
  afterEach(() => c.run())
  return c
}

/** A Cleanup run once the file's tests are done (for what `beforeAll` starts). */
export const cleanupAfterAll = (): Cleanup => {
  const c = new Cleanup()
  afterAll(() => c.run())
  return c
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

/** Polls `what` every 10 ms for up to `ms`; its last answer. */
export const until = async (what: () => boolean, ms = 3000): Promise<boolean> => {
  for (let i = 0; i < ms / 10 && !what(); i++) await sleep(10)
  return what()
}

/** Listens on an ephemeral loopback port; resolves with the port. */
export const listen = (s: net.Server | http.Server | http2.Http2Server): Promise<number> =>
  new Promise((resolve) => s.listen(0, "127.0.0.1", () => resolve((s.address() as net.AddressInfo).port)))

/** A loopback port that was free a moment ago (for configs that need a fixed port, e.g. `workers: N`). */
export const freePort = async (): Promise<number> => {
  const s = net.createServer()
  const port = await listen(s)
  await new Promise((r) => s.close(r))
  return port
}

/** A port nothing listens on (connection refused): bound, then closed. */
export const deadPort = freePort
