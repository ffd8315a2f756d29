// The mock provider's public types: its options, what it records of each request, and its handle.
import type { Counts, FaultRule } from "./faults.js"

export interface MockOptions {
  /** default 0 (ephemeral) */
  port?: number
  /** default "127.0.0.1" */
  host?: string
  /** PEM certificate and key: serve https (or h2 + http/1.1 with `http2`) */
  tls?: { cert: string | Buffer; key: string | Buffer }
  /** with tls: h2 and http/1.1 by ALPN; without: h2c prior knowledge only */
  http2?: boolean
  /** expected provider keys (see DEFAULT_KEYS); a list accepts each of its keys */
  keys?: {
    openai?: string | ReadonlyArray<string>
    anthropic?: string | ReadonlyArray<string>
    gemini?: string | ReadonlyArray<string>
  }
  /** fault rules active from the start (faults.ts) */
  faults?: ReadonlyArray<FaultRule>
  /** record requests in `received` (default true; the CLI turns it off to keep memory flat in benchmarks) */
  record?: boolean
}

export interface RecordedRequest {
  method: string
  /** path with query */
  path: string
  httpVersion: string
  /** as received, name/value pairs (HTTP/2: pseudo-headers included) */
  rawHeaders: string[]
  bodyBytes: number
  /** sha256 (hex) of the body; final once the body has been read */
  bodySha256: string
  time: number
  /** how a provider request authenticated: "authorization", "x-api-key", "x-goog-api-key", "query", "subprotocol" */
  auth?: string
}

export interface MockProvider {
  port: number
  url: string
  /** every request, in arrival order (including WebSocket handshakes) */
  received: RecordedRequest[]
  /** lets a gated /__sse continue (a release with no waiter is kept for the next one) */
  release(gate: string): void
  /** adds fault rules (faults.ts): matching requests fail as the rule says */
  fail(rules: FaultRule | ReadonlyArray<FaultRule>): void
  /** removes every fault rule */
  clearFaults(): void
  /** provider API requests and WebSocket handshakes received, in total and per presented key */
  counts(): Counts
  /** clears `received`, pending releases, fault rules and counts */
  reset(): void
  /** closes the server and every open connection, session and WebSocket */
  close(): Promise<void>
}

export const DEFAULT_KEYS = { openai: "sk-mock-openai", anthropic: "sk-ant-mock", gemini: "gemini-mock-key" }
