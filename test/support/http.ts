// Small HTTP clients for tests: node:http (HTTP/1.1, any Host header, raw header pairs) and node:http2.
import * as http from "node:http"
import type * as http2 from "node:http2"

export interface Reply {
  readonly status: number
  readonly headers: http.IncomingHttpHeaders
  readonly body: Buffer
  readonly text: string
}

export interface RequestOptions {
  readonly host?: string
  readonly path?: string
  readonly method?: string
  /** Name/value pairs, sent as given (duplicates and letter case kept). */
  readonly headers?: ReadonlyArray<readonly [string, string]>
  readonly body?: string | Buffer
  readonly agent?: http.Agent | false
}

/** One HTTP/1.1 request to 127.0.0.1:port with an arbitrary Host header. */
export const h1 = (port: number, o: RequestOptions = {}): Promise<Reply> =>
  new Promise((resolve, reject) => {
    const headers: Array<string> = ["Host", o.host ?? "localhost"]
    for (const [k, v] of o.headers ?? []) headers.push(k, v)
    const req = http.request({
      host: "127.0.0.1",
      port,
      method: o.method ?? "GET",
      path: o.path ?? "/",
      headers,
      agent: o.agent ?? false,
      setHost: false
    })
    req.on("response", (res) => {
      const chunks: Array<Buffer> = []
      res.on("data", (c: Buffer) => chunks.push(c))
      res.on("end", () => {
        const body = Buffer.concat(chunks)
        resolve({ status: res.statusCode!, headers: res.headers, body, text: body.toString() })
      })
      res.on("error", reject)
    })
    req.on("error", reject)
    req.end(o.body)
  })

/** One HTTP/2 request over an existing session. */
export const h2req = (
  session: http2.ClientHttp2Session,
  o: { authority?: string; path?: string; method?: string; headers?: Record<string, string>; body?: string | Buffer }
): Promise<Reply & { trailers: http2.IncomingHttpHeaders }> =>
  new Promise((resolve, reject) => {
    const stream = session.request({
      ":method": o.method ?? "GET",
      ":path": o.path ?? "/",
      ...(o.authority ? { ":authority": o.authority } : {}),
      ...o.headers
    })
    let status = 0
    let headers: http.IncomingHttpHeaders = {}
    let trailers: http2.IncomingHttpHeaders = {}
    const chunks: Array<Buffer> = []
    stream.on("response", (h) => {
      status = Number(h[":status"])
      headers = h as http.IncomingHttpHeaders
    })
    stream.on("trailers", (t) => (trailers = t))
    stream.on("data", (c: Buffer) => chunks.push(c))
    stream.on("end", () => {
      const body = Buffer.concat(chunks)
      resolve({ status, headers, body, text: body.toString(), trailers })
    })
    stream.on("error", reject)
    stream.end(o.body)
  })
