// e2e client legs: a `fetch` for each way a client reaches the proxy (plain HTTP/1.1, HTTPS HTTP/1.1,
// HTTPS HTTP/2, h2c), all resolving the `*.test` provider names to 127.0.0.1 so the URL's host becomes
// `Host`/`:authority` (and the TLS server name). Each leg records the protocol of every connection it
// opens, which is how the tests prove which protocol carried their requests.
import { lookup as dnsLookup } from "node:dns"
import http2 from "node:http2"
import type { LookupFunction } from "node:net"
import { Readable } from "node:stream"
import { TLSSocket } from "node:tls"
import { Agent, buildConnector, fetch as undiciFetch } from "undici"

export type LegName = "http1" | "https1" | "https2" | "h2c"
export const LEGS: LegName[] = ["http1", "https1", "https2", "h2c"]

/** The protocol a leg's connections must have negotiated ("plain" = no TLS, HTTP/1.1). */
export const EXPECTED_CONNECTION: Record<LegName, string> = {
  http1: "plain",
  https1: "http/1.1",
  https2: "h2",
  h2c: "h2c"
}

export type Fetch = (input: string | URL | Request, init?: RequestInit) => Promise<Response>

export interface Leg {
  readonly name: LegName
  /** `http://openai.test:PORT` or `https://...` */
  readonly origin: (host: string) => string
  readonly fetch: Fetch
  /** one entry per connection this leg opened: "plain", "http/1.1", "h2" (ALPN) or "h2c" */
  readonly connections: string[]
  readonly close: () => Promise<void>
}

/** Resolves `*.test` and localhost to 127.0.0.1; nothing else (the suite never leaves the machine). */
export const testLookup: LookupFunction = (hostname, options, callback) => {
  if (hostname === "localhost" || hostname.endsWith(".test")) {
    if (options.all) callback(null, [{ address: "127.0.0.1", family: 4 }])
    else callback(null, "127.0.0.1", 4)
    return
  }
  dnsLookup(hostname, options, callback)
}

export const inputUrl = (input: string | URL | Request): string => {
  if (typeof input === "string") return input
  if (input instanceof URL) return input.href
  return input.url
}

/** A fetch over an undici Agent whose connector resolves test names, trusts the test CA and records ALPN. */
const undiciLeg = (name: LegName, port: number, ca: string | undefined, allowH2: boolean): Leg => {
  const connections: string[] = []
  const base = buildConnector({ lookup: testLookup, ...(ca === undefined ? {} : { ca }), allowH2 })
  const dispatcher = new Agent({
    allowH2,
    connect: (options, callback) =>
      base(options, (...args) => {
        const [err, socket] = args
        if (err === null) connections.push(socket instanceof TLSSocket ? socket.alpnProtocol || "none" : "plain")
        callback(...args)
      })
  })
  const scheme = ca === undefined ? "http" : "https"
  const fetch: Fetch = (input, init) => {
    // undici's own fetch (Node 20's global fetch bundles an older undici that cannot take this Agent).
    const p = undiciFetch(inputUrl(input), { ...(init as object), dispatcher })
    return p as unknown as Promise<Response>
  }
  return {
    name,
    origin: (host) => `${scheme}://${host}:${port}`,
    fetch,
    connections,
    close: () => dispatcher.close()
  }
}

const HOP_BY_HOP = new Set(["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "host"])

const bodyBytes = async (body: RequestInit["body"]): Promise<Buffer | undefined> => {
  if (body === undefined || body === null) return undefined
  if (typeof body === "string") return Buffer.from(body)
  if (body instanceof Uint8Array) return Buffer.from(body)
  if (body instanceof ArrayBuffer) return Buffer.from(body)
  if (body instanceof URLSearchParams) return Buffer.from(body.toString())
  // Blob, FormData, ReadableStream: let a Request read it.
  return Buffer.from(
    await new Request("http://body.invalid/", { method: "POST", body, duplex: "half" } as RequestInit).arrayBuffer()
  )
}

/**
 * A fetch over one `node:http2` session: with prior knowledge (h2c) to the proxy's plain port, or over TLS
 * (`ca` given; ALPN h2) to its TLS port. The official SDKs run over it unchanged. `:authority` is the
 * URL's host, so routing works as for any HTTP/2 client; every stream shares the session (multiplexing).
 */
export const nodeHttp2Leg = (name: LegName, port: number, ca?: string, servername = "openai.test"): Leg => {
  const connections: string[] = []
  const scheme = ca === undefined ? "http" : "https"
  let session: http2.ClientHttp2Session | undefined
  const getSession = (): http2.ClientHttp2Session => {
    if (session === undefined || session.closed || session.destroyed) {
      const s =
        ca === undefined
          ? http2.connect(`http://127.0.0.1:${port}`)
          : http2.connect(`https://127.0.0.1:${port}`, { ca, servername })
      s.on("error", () => {})
      if (ca === undefined) connections.push("h2c")
      else s.once("connect", () => connections.push(s.alpnProtocol ?? "none"))
      session = s
    }
    return session
  }
  const fetch: Fetch = async (input, init) => {
    const url = new URL(inputUrl(input))
    const signal = init?.signal ?? undefined
    signal?.throwIfAborted()
    const headers: http2.OutgoingHttpHeaders = {
      ":method": init?.method ?? "GET",
      ":scheme": scheme,
      ":authority": url.host,
      ":path": url.pathname + url.search
    }
    new Headers(init?.headers).forEach((value, key) => {
      if (!HOP_BY_HOP.has(key)) headers[key] = value
    })
    const body = await bodyBytes(init?.body)
    const s = getSession()
    const stream = s.request(headers, { endStream: body === undefined })
    const onAbort = (): void => {
      stream.destroy(signal?.reason instanceof Error ? signal.reason : new Error("aborted"))
    }
    signal?.addEventListener("abort", onAbort, { once: true })
    stream.once("close", () => {
      signal?.removeEventListener("abort", onAbort)
    })
    if (body !== undefined) stream.end(body)
    const head = await new Promise<http2.IncomingHttpHeaders>((resolve, reject) => {
      stream.once("response", resolve)
      stream.once("error", reject)
      stream.once("close", () => reject(new Error(`h2c stream closed before a response (code ${stream.rstCode})`)))
    })
    const status = Number(head[":status"])
    const out = new Headers()
    for (const [k, v] of Object.entries(head)) {
      if (k.startsWith(":") || v === undefined) continue
      for (const one of Array.isArray(v) ? v : [String(v)]) out.append(k, one)
    }
    const noBody = status === 204 || status === 304 || headers[":method"] === "HEAD"
    if (noBody) stream.resume()
    const webBody = noBody ? null : (Readable.toWeb(stream) as unknown as ReadableStream<Uint8Array>)
    return new Response(webBody, { status, headers: out })
  }
  return {
    name,
    origin: (host) => `${scheme}://${host}:${port}`,
    fetch,
    connections,
    close: async () => {
      const s = session
      if (s === undefined || s.destroyed) return
      await new Promise<void>((r) => s.close(() => r()))
    }
  }
}

export const makeLeg = (name: LegName, ports: { http: number; https: number }, ca: string): Leg => {
  switch (name) {
    case "http1":
      return undiciLeg(name, ports.http, undefined, false)
    case "https1":
      return undiciLeg(name, ports.https, ca, false)
    case "https2":
      return undiciLeg(name, ports.https, ca, true)
    case "h2c":
      return nodeHttp2Leg(name, ports.http)
  }
}

/** Collects an async iterable. */
export const collect = async <T>(it: AsyncIterable<T>): Promise<T[]> => {
  const out: T[] = []
  for await (const x of it) out.push(x)
  return out
}
