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

/** An answer read to its end or to its cut: `complete` is false when the response was aborted midway. */
export interface Answer {
  readonly status: number
  readonly headers: http.IncomingHttpHeaders
  readonly text: string
  readonly complete: boolean
}

export interface PostOptions {
  readonly host: string
  readonly body: string | Buffer
  /** default `/v1/chat/completions` */
  readonly path?: string
  /** Beside Host, Content-Type (JSON) and Content-Length. */
  readonly headers?: Readonly<Record<string, string>>
  /** Send the body chunked (no Content-Length). */
  readonly chunked?: boolean
  /** default: a new connection */
  readonly agent?: http.Agent
}

const postRequest = (port: number, o: PostOptions): http.ClientRequest => {
  const headers: Record<string, string | number> = { host: o.host, "content-type": "application/json", ...o.headers }
  if (o.chunked) headers["transfer-encoding"] = "chunked"
  else headers["content-length"] = Buffer.byteLength(o.body)
  return http.request({
    host: "127.0.0.1",
    port,
    method: "POST",
    path: o.path ?? "/v1/chat/completions",
    headers,
    agent: o.agent ?? false
  })
}

/** A JSON POST over HTTP/1.1; resolves when the response closes, whether it ended or was cut. */
export const post = (port: number, o: PostOptions): Promise<Answer> =>
  new Promise((resolve, reject) => {
    const req = postRequest(port, o)
    req.on("response", (res) => {
      const chunks: Array<Buffer> = []
      res.on("data", (c: Buffer) => chunks.push(c))
      res.on("error", () => undefined)
      res.on("close", () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          text: Buffer.concat(chunks).toString(),
          complete: res.complete
        })
      )
    })
    req.on("error", reject)
    req.end(o.body)
  })

/** Sends a JSON POST and destroys it after `ms` (a client leaving); resolves then, or when it was answered first. */
export const postAndLeave = (port: number, ms: number, o: PostOptions): Promise<void> =>
  new Promise((resolve) => {
    const req = postRequest(port, o)
    req.on("error", () => resolve())
    req.on("response", (res) => {
      res.resume()
      res.on("close", () => resolve())
    })
    req.end(o.body)
    setTimeout(() => {
      req.destroy()
      resolve()
    }, ms)
  })
