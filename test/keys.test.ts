// `$(command)` provider keys (SPEC §2) over real sockets: the command's trimmed stdout is the key; a non-zero
// exit, a time-out (5 s, the whole process group killed) or output with a newline inside is a 502
// `upstream authentication failed`; `api_key_cache_ttl` reuses the key; a slow command delays no other request.
import { readFileSync } from "node:fs"
import { readFile } from "node:fs/promises"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { h1 } from "./support/http.js"
import { type MockProvider, startMockProvider } from "./support/mockProvider.js"
import { type RunningProxy, startProxy, tempDir } from "./support/proxy.js"

let mock: MockProvider
let proxy: RunningProxy
let dir: string

const provider = (host: string, apiKey: string, extra = "") =>
  `  - { type: openai, host: "${host}", endpoint: "127.0.0.1:${mock.port}", tls: false, api_key: '${apiKey}'${extra} }`

beforeAll(async () => {
  mock = await startMockProvider()
  dir = await tempDir("openproxy-keys-")
  const f = (name: string) => path.join(dir, name)
  proxy = await startProxy(`
http_port: 0
http_bind_address: 127.0.0.1
providers:
${provider("ok.test", "$(printf sk-mock-openai)")}
${provider("trailing.test", "$(echo sk-mock-openai)")}
${provider("exit.test", "$(echo sk-mock-openai; exit 3)")}
${provider("newline.test", '$(printf "sk-mock\\nopenai")')}
${provider("empty.test", "$(true)")}
${provider("slow.test", `$(echo $$ > ${f("sh.pid")}; sleep 30 & echo $! > ${f("sleep.pid")}; wait)`)}
${provider("cached.test", `$(echo run >> ${f("cached.count")}; echo sk-mock-openai)`, ", api_key_cache_ttl: 60")}
${provider("uncached.test", `$(echo run >> ${f("uncached.count")}; echo sk-mock-openai)`)}
${provider("static.test", "sk-mock-openai")}
`)
})
afterAll(async () => {
  await proxy?.close()
  await mock?.close()
})

const get = (host: string) => h1(proxy.httpPort!, { host, path: "/v1/models" })

/** Running (a zombie waiting for its reaper counts as gone: it was killed). */
const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
  } catch {
    return false
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z"
  } catch {
    return false
  }
}

describe("$(command) keys", () => {
  it("success: the command's stdout is the key the upstream receives", async () => {
    mock.reset()
    const r = await get("ok.test")
    expect(r.status).toBe(200)
    expect(mock.received.at(-1)!.rawHeaders).toContain("Bearer sk-mock-openai")
  })

  it("a trailing newline is trimmed", async () => {
    expect((await get("trailing.test")).status).toBe(200)
  })

  it("non-zero exit, a newline inside the output, empty output: 502 upstream authentication failed", async () => {
    mock.reset()
    for (const host of ["exit.test", "newline.test", "empty.test"]) {
      const r = await get(host)
      expect(r.status, host).toBe(502)
      expect(r.text, host).toBe("upstream authentication failed")
    }
    // Nothing reached the upstream.
    expect(mock.received).toHaveLength(0)
  })

  it("api_key_cache_ttl reuses the key; without it the command runs per request", async () => {
    for (let i = 0; i < 3; i++) {
      expect((await get("cached.test")).status).toBe(200)
      expect((await get("uncached.test")).status).toBe(200)
    }
    const lines = async (name: string) =>
      (await readFile(path.join(dir, name), "utf8")).split("\n").filter((l) => l.length > 0).length
    expect(await lines("cached.count")).toBe(1)
    expect(await lines("uncached.count")).toBe(3)
  })

  it("time-out at 5 s: 502, other requests are not delayed, and the command's process group is killed", async () => {
    const started = Date.now()
    const slow = get("slow.test")
    // Meanwhile other requests (static and command keys) are answered at once.
    await new Promise((r) => setTimeout(r, 200))
    for (const host of ["static.test", "ok.test", "static.test"]) {
      const t = Date.now()
      expect((await get(host)).status).toBe(200)
      expect(Date.now() - t).toBeLessThan(1_000)
    }
    const shPid = Number(await readFile(path.join(dir, "sh.pid"), "utf8"))
    const sleepPid = Number(await readFile(path.join(dir, "sleep.pid"), "utf8"))
    expect(alive(sleepPid)).toBe(true)
    const r = await slow
    const took = Date.now() - started
    expect(r.status).toBe(502)
    expect(r.text).toBe("upstream authentication failed")
    expect(took).toBeGreaterThanOrEqual(4_900)
    expect(took).toBeLessThan(6_500)
    // The shell and its grandchild `sleep` are gone (killed with the group, then reaped).
    const deadline = Date.now() + 500
    while ((alive(sleepPid) || alive(shPid)) && Date.now() < deadline) await new Promise((res) => setTimeout(res, 20))
    expect(alive(sleepPid)).toBe(false)
    expect(alive(shPid)).toBe(false)
  }, 10_000)
})
