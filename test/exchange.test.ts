// The request as phases (issue 13): one exchange per request flows route → admit → select → credential →
// dispatch → log, and the log phase runs exactly once per request whatever the outcome (answered, refused,
// upstream unreachable, client gone), with the status the client got, the key name and a request id that is
// unique per request. Over real sockets: a node:http server running the request path against a local upstream.
import * as http from "node:http"
import { beforeAll, describe, expect, it } from "vitest"
import type { Exchange } from "../src/proxy/exchange.js"
import { cleanupAfterAll, deadPort, listen, sleep } from "./support/cleanup.js"
import { h1 } from "./support/http.js"
import { startRequestPath } from "./support/requestPath.js"

interface Ended {
  readonly requestId: string
  readonly status: number
  readonly outcome: string
  readonly keyName: string | undefined
  readonly attempts: number
  readonly provider: number | undefined
}

const cleanup = cleanupAfterAll()
const ended: Array<Ended> = []
let port = 0

beforeAll(async () => {
  const upstream = http.createServer((req, res) => {
    if (req.url === "/slow") return // never answers: the client leaves first
    res.writeHead(200, { "content-type": "text/plain" })
    res.end("up")
  })
  const upPort = await listen(upstream)
  cleanup.defer(async () => {
    upstream.closeAllConnections()
    await new Promise((r) => upstream.close(r))
  })
  const dead = await deadPort()
  const path = await startRequestPath(
    cleanup,
    `
http_port: 0
auth_keys: [{ name: team-a, key: "client-key" }]
providers:
  - { type: openai, host: "ok.test", endpoint: "127.0.0.1:${upPort}", tls: false, api_key: "sk-up" }
  - { type: openai, host: "dead.test", endpoint: "127.0.0.1:${dead}", tls: false, api_key: "sk-up" }
`,
    {
      services: {
        onEnd: (ex: Exchange) =>
          ended.push({
            requestId: ex.requestId,
            status: ex.status,
            outcome: ex.outcome,
            keyName: ex.keyName,
            attempts: ex.attempts,
            provider: ex.identity?.provider.index
          })
      }
    }
  )
  port = path.port
})

/** Waits until `n` exchanges have ended (the log phase runs when the response closes). */
const endedCount = async (n: number) => {
  for (let i = 0; i < 200 && ended.length < n; i++) await sleep(10)
  // one more turn: a second (wrong) call would land now
  await sleep(50)
  return ended.length
}

describe("the log phase", () => {
  it("runs exactly once per request, with the status, outcome and key name, whatever the outcome", async () => {
    const auth: ReadonlyArray<readonly [string, string]> = [["Authorization", "Bearer client-key"]]
    const ok = await h1(port, { host: "ok.test", path: "/v1/x", headers: auth })
    expect(ok.status).toBe(200)
    expect(ok.text).toBe("up")
    const notFound = await h1(port, { host: "nobody.test", headers: auth })
    expect(notFound.status).toBe(404)
    expect(notFound.text).toBe("No provider found")
    const unauthorized = await h1(port, { host: "ok.test", headers: [["Authorization", "Bearer wrong"]] })
    expect(unauthorized.status).toBe(401)
    const dead = await h1(port, { host: "dead.test", headers: auth })
    expect(dead.status).toBe(502)
    expect(dead.text).toBe("upstream connection failed")
    expect(await endedCount(4)).toBe(4)
    expect(ended.map(({ requestId: _, ...e }) => e)).toEqual([
      { status: 200, outcome: "ok", keyName: "team-a", attempts: 1, provider: 0 },
      { status: 404, outcome: "refused", keyName: undefined, attempts: 0, provider: undefined },
      { status: 401, outcome: "refused", keyName: undefined, attempts: 0, provider: undefined },
      { status: 502, outcome: "upstream_error", keyName: "team-a", attempts: 1, provider: 1 }
    ])
    expect(new Set(ended.map((e) => e.requestId)).size).toBe(4)
  })

  it("a client that leaves before the answer ends its exchange once, as client_abort", async () => {
    const before = ended.length
    await new Promise<void>((resolve) => {
      const req = http.request({
        host: "127.0.0.1",
        port,
        path: "/slow",
        headers: { Host: "ok.test", Authorization: "Bearer client-key" },
        agent: false
      })
      req.on("error", () => resolve())
      req.end()
      setTimeout(() => {
        req.destroy()
        resolve()
      }, 200)
    })
    expect(await endedCount(before + 1)).toBe(before + 1)
    expect(ended.at(-1)).toMatchObject({ status: 0, outcome: "client_abort", keyName: "team-a" })
  })
})
