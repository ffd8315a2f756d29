// Every client protocol × every upstream protocol (SPEC §5): HTTP/1.1, HTTP/2 over TLS and h2c on the client
// side; HTTP/1.1 and HTTP/2 upstreams with and without TLS. Real sockets, real TLS with a generated CA.
import * as http2 from "node:http2"
import * as https from "node:https"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { makeTestCerts, type TestCerts } from "./support/certs.js"
import { h1, h2req, type Reply } from "./support/http.js"
import { DEFAULT_KEYS, type MockProvider, startMockProvider } from "./support/mockProvider.js"
import { type RunningProxy, startProxy, tempDir } from "./support/proxy.js"

let certs: TestCerts
let proxy: RunningProxy
const mocks: Record<string, MockProvider> = {}

const UPSTREAMS = {
  "h1-plain": { expect: "http/1.1", mockVersion: "1.1" },
  "h1-tls": { expect: "http/1.1", mockVersion: "1.1" },
  "h2-tls": { expect: "h2", mockVersion: "2.0" },
  h2c: { expect: "h2", mockVersion: "2.0" }
} as const
type Upstream = keyof typeof UPSTREAMS

beforeAll(async () => {
  const dir = await tempDir()
  certs = await makeTestCerts(dir)
  const tls = { cert: certs.cert, key: certs.key }
  mocks["h1-plain"] = await startMockProvider()
  mocks["h1-tls"] = await startMockProvider({ tls })
  mocks["h2-tls"] = await startMockProvider({ tls, http2: true })
  mocks.h2c = await startMockProvider({ http2: true })
  const p = (name: string, port: number, extra: string) =>
    `  - { type: openai, host: "${name}.test", endpoint: "localhost:${port}", api_key: "${DEFAULT_KEYS.openai}", ${extra} }`
  proxy = await startProxy(
    `
http_port: 0
http_bind_address: 127.0.0.1
https_port: 0
https_bind_address: 127.0.0.1
cert_file: "${certs.certFile}"
private_key_file: "${certs.keyFile}"
auth_keys: ["ck"]
providers:
${p("h1-plain", mocks["h1-plain"].port, "tls: false")}
${p("h1-tls", mocks["h1-tls"].port, `tls: true, ca_file: "${certs.caFile}"`)}
${p("h2-tls", mocks["h2-tls"].port, `tls: true, ca_file: "${certs.caFile}"`)}
${p("h2c", mocks.h2c.port, "tls: false, http2: true")}
`,
    dir
  )
})
afterAll(async () => {
  await proxy?.close()
  await Promise.all(Object.values(mocks).map((m) => m.close()))
})

const body = JSON.stringify({ model: "gpt-test", messages: [{ role: "user", content: "hello" }] })
const auth = "Bearer ck"

type Client = (host: string) => Promise<Reply>

const clients: Record<string, () => { send: Client; close: () => void }> = {
  "http/1.1": () => ({
    send: (host) =>
      h1(proxy.httpPort!, {
        host,
        method: "POST",
        path: "/v1/chat/completions",
        headers: [
          ["authorization", auth],
          ["content-type", "application/json"]
        ],
        body
      }),
    close: () => undefined
  }),
  h2c: () => {
    const s = http2.connect(`http://127.0.0.1:${proxy.httpPort}`)
    return {
      send: (host) =>
        h2req(s, {
          authority: host,
          method: "POST",
          path: "/v1/chat/completions",
          headers: { authorization: auth, "content-type": "application/json" },
          body
        }),
      close: () => s.close()
    }
  },
  "https/1.1": () => ({
    send: (host) =>
      new Promise<Reply>((resolve, reject) => {
        const req = https.request({
          host: "127.0.0.1",
          port: proxy.httpsPort,
          servername: "proxy.test", // SNI need not equal Host (SPEC §3.5)
          ca: certs.caCert,
          method: "POST",
          path: "/v1/chat/completions",
          headers: { host, authorization: auth, "content-type": "application/json" },
          agent: false
        })
        req.on("response", (res) => {
          const chunks: Array<Buffer> = []
          res.on("data", (c: Buffer) => chunks.push(c))
          res.on("end", () => {
            const b = Buffer.concat(chunks)
            resolve({ status: res.statusCode!, headers: res.headers, body: b, text: b.toString() })
          })
        })
        req.on("error", reject)
        req.end(body)
      }),
    close: () => undefined
  }),
  "h2 (TLS)": () => {
    const s = http2.connect(`https://127.0.0.1:${proxy.httpsPort}`, { ca: certs.caCert, servername: "proxy.test" })
    return {
      send: (host) =>
        h2req(s, {
          authority: host,
          method: "POST",
          path: "/v1/chat/completions",
          headers: { authorization: auth, "content-type": "application/json" },
          body
        }),
      close: () => s.close()
    }
  }
}

describe("client protocol × upstream protocol", () => {
  for (const [clientName, make] of Object.entries(clients)) {
    for (const up of Object.keys(UPSTREAMS) as Array<Upstream>) {
      it(`${clientName} → ${up}`, async () => {
        const c = make()
        try {
          for (let i = 0; i < 3; i++) {
            const r = await c.send(`${up}.test`)
            expect(r.status).toBe(200)
            expect(r.headers["x-upstream-protocol"]).toBe(UPSTREAMS[up].expect)
            const json = JSON.parse(r.text) as { object: string; model: string }
            expect(json.object).toBe("chat.completion")
            expect(json.model).toBe("gpt-test")
            const seen = mocks[up].received.at(-1)!
            expect(seen.httpVersion).toBe(UPSTREAMS[up].mockVersion)
            expect(seen.bodyBytes).toBe(Buffer.byteLength(body))
          }
        } finally {
          c.close()
        }
      })
    }
  }
})
