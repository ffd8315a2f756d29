// Host parsing (SPEC §3.1) through the request path's one-entry memo (HostMemo, one per context): the same value
// asked again (the usual case), another value, another listener's default port, and an invalid value in between
// all answer as a fresh parse would, and a refused value leaves the target untouched.
import { describe, expect, it } from "vitest"
import { HostMemo, type HostTarget, parseHostInto } from "../src/proxy/host.js"

const memo = new HostMemo()

/** Through the memo, checked against a fresh parse of the same value. */
const parse = (value: string, defaultPort: number): HostTarget | undefined => {
  const into: HostTarget = { hostName: "untouched", port: -2 }
  const fresh: HostTarget = { hostName: "untouched", port: -2 }
  const ok = memo.parseInto(into, value, defaultPort)
  expect(parseHostInto(fresh, value, defaultPort)).toBe(ok)
  expect(into).toEqual(fresh)
  return ok ? into : undefined
}

describe("parseHostInto", () => {
  it("parses names, ports, IPv6 literals and trailing dots", () => {
    expect(parse("API.Example.com.", 80)).toEqual({ hostName: "api.example.com", port: 80 })
    expect(parse("api.example.com:8443", 80)).toEqual({ hostName: "api.example.com", port: 8443 })
    expect(parse("[::1]:9000", 443)).toEqual({ hostName: "[::1]", port: 9000 })
    expect(parse("[::1]", 443)).toEqual({ hostName: "[::1]", port: 443 })
  })

  it("answers a repeated value like a fresh parse, into each target", () => {
    for (let i = 0; i < 3; i++) expect(parse("Example.com:8080", 80)).toEqual({ hostName: "example.com", port: 8080 })
    expect(parse("example.com", 80)).toEqual({ hostName: "example.com", port: 80 })
    // the same value on a listener with another default port
    expect(parse("example.com", 443)).toEqual({ hostName: "example.com", port: 443 })
    expect(parse("example.com", 443)).toEqual({ hostName: "example.com", port: 443 })
  })

  it("refuses invalid values every time, without touching the target, and recovers after them", () => {
    for (const bad of ["example.com:99999", "example.com:8x", "[::1", "[::1]x", ".", ":80"]) {
      expect(parse(bad, 80)).toBeUndefined()
      expect(parse(bad, 80)).toBeUndefined()
      const into: HostTarget = { hostName: "untouched", port: -2 }
      expect(memo.parseInto(into, bad, 80)).toBe(false)
      expect(into).toEqual({ hostName: "untouched", port: -2 })
    }
    expect(parse("a.example:1", 80)).toEqual({ hostName: "a.example", port: 1 })
    expect(parse("example.com:99999", 80)).toBeUndefined()
    expect(parse("a.example:1", 80)).toEqual({ hostName: "a.example", port: 1 })
  })
})
