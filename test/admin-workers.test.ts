// The admin port with `workers: 2` (SPEC §10), over a real `node dist/main.js start` process: the primary serves
// /metrics as the sum over both workers (open connections spread over them, config reloads counted by each),
// /readyz and /providers from the workers' answers, /keys from the config, and no secret in any of them.
import { writeFile } from "node:fs/promises"
import * as net from "node:net"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { freePort, sleep } from "./support/cleanup.js"
import { h1 } from "./support/http.js"
import { seriesValue } from "./support/metrics.js"
import { DEFAULT_KEYS, type MockProvider, startMockProvider } from "./support/mockProvider.js"
import { type ProxyProcess, startProxyProcess, tempDir } from "./support/proxy.js"

const ADMIN_KEY = "adm-TOPSECRET-w"
const CLIENT_KEY = "sk-client-TOPSECRET-w"
const SECRETS = [ADMIN_KEY, CLIENT_KEY, DEFAULT_KEYS.openai]

let mock: MockProvider
let proxy: ProxyProcess
let admin: number
let file: string
let yaml: string
const sockets: Array<net.Socket> = []

beforeAll(async () => {
  mock = await startMockProvider()
  const dir = await tempDir()
  file = path.join(dir, "workers.yml")
  yaml = `http_port: ${await freePort()}
http_bind_address: 127.0.0.1
workers: 2
admin: {port: 0, auth_key: ${ADMIN_KEY}}
auth_keys: [{name: team-w, key: ${CLIENT_KEY}}]
providers:
  - { type: openai, host: "127.0.0.1", endpoint: "127.0.0.1:${mock.port}", tls: false, api_key: ${DEFAULT_KEYS.openai} }
`
  await writeFile(file, yaml)
  proxy = await startProxyProcess(file)
  admin = Number(/admin listening address=\S+ port=(\d+)/.exec(proxy.output())?.[1])
}, 30_000)

afterAll(async () => {
  for (const s of sockets) s.destroy()
  await proxy?.stop()
  await mock?.close()
})

const metrics = async () =>
  (await h1(admin, { path: "/metrics", headers: [["Authorization", `Bearer ${ADMIN_KEY}`]] })).text

/** Polls /metrics until `series` has `value` (bounded); returns the last value seen. */
const waitFor = async (series: string, value: number) => {
  let seen: number | undefined
  for (let i = 0; i < 100; i++) {
    seen = seriesValue(await metrics(), series)
    if (seen === value) break
    await sleep(100)
  }
  return seen
}

describe("admin port with workers: 2", () => {
  it("is served by the primary", () => {
    expect(admin).toBeGreaterThan(0)
    expect(proxy.output()).toMatch(/admin listening/)
  })

  it("sums open connections over both workers", async () => {
    const port = Number(/listening kind=http address=\S+ port=(\d+)/.exec(proxy.output())?.[1])
    for (let i = 0; i < 6; i++) {
      const s = net.connect(port, "127.0.0.1")
      await new Promise((r) => s.once("connect", r))
      sockets.push(s)
    }
    // Round-robin hands three to each worker; the sum is all six, never one worker's share.
    expect(await waitFor("openproxy_open_connections", 6)).toBe(6)
    for (const s of sockets.splice(0)) s.destroy()
    expect(await waitFor("openproxy_open_connections", 0)).toBe(0)
  })

  it("counts a SIGHUP reload once per worker", async () => {
    expect(seriesValue(await metrics(), 'openproxy_config_reloads_total{result="ok"}')).toBe(0)
    proxy.child.kill("SIGHUP")
    expect(await waitFor('openproxy_config_reloads_total{result="ok"}', 2)).toBe(2)
  })

  it("answers /readyz, /providers and /keys from the workers and the config, without secrets", async () => {
    const auth: ReadonlyArray<readonly [string, string]> = [["Authorization", `Bearer ${ADMIN_KEY}`]]
    expect((await h1(admin, { path: "/readyz" })).status).toBe(200)
    expect((await h1(admin, { path: "/providers" })).status).toBe(401)
    const providers = JSON.parse((await h1(admin, { path: "/providers", headers: auth })).text).providers
    expect(providers.map((p: { host: string; healthy: boolean }) => [p.host, p.healthy])).toEqual([["127.0.0.1", true]])
    const keys = JSON.parse((await h1(admin, { path: "/keys", headers: auth })).text).keys
    expect(keys).toEqual([{ name: "team-w", providers: "all", limits: null }])
    for (const p of ["/metrics", "/providers", "/keys"]) {
      const body = (await h1(admin, { path: p, headers: auth })).text
      for (const s of SECRETS) expect({ p, leaked: body.includes(s) }).toEqual({ p, leaked: false })
    }
  })

  // last: it moves the port the tests above use
  it("moves to the port a SIGHUP-reloaded config names, and closes the old one", async () => {
    const moved = await freePort()
    await writeFile(file, yaml.replace("admin: {port: 0,", `admin: {port: ${moved}, bind_address: 127.0.0.1,`))
    proxy.child.kill("SIGHUP")
    let status = 0
    for (let i = 0; i < 100 && status !== 200; i++) {
      status = await h1(moved, { path: "/readyz" }).then(
        (r) => r.status,
        () => 0
      )
      if (status !== 200) await sleep(100)
    }
    expect(status).toBe(200)
    const old = await h1(admin, { path: "/readyz" }).then(
      (r) => r.status,
      () => 0
    )
    expect(old).toBe(0)
  })
})
