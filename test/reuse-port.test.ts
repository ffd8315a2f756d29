// `reuse_port: true` with `workers: 2` (src/services/listener/reusePort.ts), over a real `node dist/main.js start`
// process and real sockets. On a Node that has `reusePort` (22.12+, 23.1+, Linux) each worker holds its own
// listening socket on the one configured port and the primary holds none (read from /proc: the kernel's table of
// listening sockets and each process's descriptors); on an older Node (20) the primary holds the only one
// (round-robin, as without the option) and a warning says why. Either way both workers answer on that port: 64
// requests, each on a new connection, carry two request-id prefixes (random per process).
import { readdirSync, readFileSync, readlinkSync } from "node:fs"
import { writeFile } from "node:fs/promises"
import * as net from "node:net"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { reusePortSupported } from "../src/services/listener/reusePort.js"
import { h1 } from "./support/http.js"
import { type MockProvider, startMockProvider } from "./support/mockProvider.js"
import { type ProxyProcess, startProxyProcess, tempDir } from "./support/proxy.js"

const freePort = () =>
  new Promise<number>((r) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => {
      const n = (s.address() as net.AddressInfo).port
      s.close(() => r(n))
    })
  })

/** Inodes of the IPv4 sockets listening on 127.0.0.1:port (/proc/net/tcp: state 0A is LISTEN). */
const listeningInodes = (port: number): Array<string> => {
  const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, "0")}`
  return readFileSync("/proc/net/tcp", "utf8")
    .split("\n")
    .slice(1)
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f[1] === local && f[3] === "0A")
    .map((f) => f[9])
}

/** The socket inodes a process has open. */
const socketInodes = (pid: number): Set<string> => {
  const out = new Set<string>()
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`))
      if (m) out.add(m[1])
    } catch {
      // closed meanwhile
    }
  }
  return out
}

let mock: MockProvider
let proxy: ProxyProcess
let port = 0

beforeAll(async () => {
  mock = await startMockProvider()
  port = await freePort()
  const file = path.join(await tempDir(), "reuse-port.yml")
  await writeFile(
    file,
    `http_port: ${port}
http_bind_address: 127.0.0.1
workers: 2
reuse_port: true
providers:
  - { type: forward, host: "rp.test", endpoint: "127.0.0.1:${mock.port}", tls: false }
`
  )
  proxy = await startProxyProcess(file)
}, 30_000)

afterAll(async () => {
  await proxy?.stop()
  await mock?.close()
})

describe("reuse_port with workers: 2", () => {
  it("binds per worker where Node has reusePort (else round-robin, with a warning), and both workers serve the port", async () => {
    const workers = (/worker_pids=(\d+),(\d+)/.exec(proxy.output()) ?? []).slice(1).map(Number)
    expect(workers).toHaveLength(2)
    const listening = listeningInodes(port)
    const owner = (pid: number) => listening.filter((i) => socketInodes(pid).has(i)).length
    if (reusePortSupported()) {
      expect(listening).toHaveLength(2)
      expect(workers.map(owner)).toEqual([1, 1])
      expect(owner(proxy.pid)).toBe(0)
      expect(proxy.output().match(/listening kind=http .* reuse_port=true/g)).toHaveLength(2)
    } else {
      expect(listening).toHaveLength(1)
      expect(owner(proxy.pid)).toBe(1)
      expect(workers.map(owner)).toEqual([0, 0])
      expect(proxy.output()).toContain("reuse_port needs Node 22.12 or later on Linux")
    }

    const prefixes = new Map<string, number>()
    const batch = async () => {
      const r = await h1(port, {
        host: "rp.test",
        path: "/__sse?events=1&interval_ms=1",
        headers: [["connection", "close"]]
      })
      expect(r.status).toBe(200)
      const id = r.headers["x-request-id"] as string
      expect(id).toMatch(/^[A-Za-z0-9_-]{12}-[0-9a-z]+$/)
      prefixes.set(id.slice(0, 12), (prefixes.get(id.slice(0, 12)) ?? 0) + 1)
    }
    for (let i = 0; i < 8; i++) await Promise.all(Array.from({ length: 8 }, batch))
    expect(prefixes.size).toBe(2)
    expect([...prefixes.values()].reduce((a, b) => a + b)).toBe(64)
  }, 30_000)
})
