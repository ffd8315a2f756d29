// Response header rules (SPEC §4) as a pure function: hop-by-hop headers and those the upstream names in
// `Connection` never reach the client, letter case is kept on HTTP/1.1, HTTP/2 gets lower-case names.
import { describe, expect, it } from "vitest"
import { responseHeadersFromRaw } from "../src/proxy/headers.js"

const raw = (pairs: Array<[string, string]>) => pairs.flatMap(([n, v]) => [Buffer.from(n, "latin1"), Buffer.from(v)])

const upstream = raw([
  ["Server", "nginx"],
  ["Content-Type", "application/json"],
  ["Content-Length", "2"],
  ["Connection", "keep-alive, X-Hop, Close"],
  ["X-Hop", "secret"],
  ["Keep-Alive", "timeout=5"],
  ["Transfer-Encoding", "chunked"],
  ["HTTP2-Settings", "AAA"],
  ["Upgrade", "h2c"],
  ["Trailer", "x-t"],
  ["TE", "trailers"],
  ["Proxy-Connection", "keep-alive"],
  ["X-Kept", "yes"],
  ["Set-Cookie", "a=1"],
  ["Set-Cookie", "b=2"]
])

describe("responseHeadersFromRaw", () => {
  it("HTTP/1.1: drops hop-by-hop and Connection-named headers, keeps the rest in order and letter case", () => {
    const out = responseHeadersFromRaw(upstream, "http/1.1", false) as Array<string>
    expect(out).toEqual([
      "Server",
      "nginx",
      "Content-Type",
      "application/json",
      "Content-Length",
      "2",
      "X-Kept",
      "yes",
      "Set-Cookie",
      "a=1",
      "Set-Cookie",
      "b=2",
      "x-upstream-protocol",
      "http/1.1"
    ])
  })

  it("HTTP/2: the same headers as an object with lower-case names, repeated ones as arrays", () => {
    const out = responseHeadersFromRaw(upstream, "h2", true)
    expect(out).toEqual({
      server: "nginx",
      "content-type": "application/json",
      "content-length": "2",
      "x-kept": "yes",
      "set-cookie": ["a=1", "b=2"],
      "x-upstream-protocol": "h2"
    })
  })

  it("a plain `Connection: keep-alive` drops nothing else; pseudo-headers never pass", () => {
    const out = responseHeadersFromRaw(
      raw([
        [":status", "200"],
        ["Connection", "keep-alive"],
        ["Date", "x"],
        ["ETag", "1"]
      ]),
      "http/1.1",
      false
    )
    expect(out).toEqual(["Date", "x", "ETag", "1", "x-upstream-protocol", "http/1.1"])
  })
})
