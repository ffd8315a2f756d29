// CLI for the mock LLM provider (bundled to dist/mock.js): used by the README quick start,
// the e2e suite and benchmarks. Prints one "listening" line, exits cleanly on SIGTERM/SIGINT.
// `--fail '<json>'` (repeatable: a rule or a list, faults.ts) makes requests fail from the start; a key option
// given more than once accepts each of its keys.
import { readFileSync } from "node:fs"
import { parseArgs } from "node:util"
import { type FaultRule, parseFaultRules } from "./faults.js"
import { DEFAULT_KEYS, startMockProvider } from "./server.js"

const USAGE = `Usage: node dist/mock.js [options]

A mock LLM provider (OpenAI, Anthropic and Gemini shapes, SSE, WebSocket) for the quick start, tests and
benchmarks. Prints one "listening" line; SIGTERM or SIGINT stops it.

Options:
  --port N             port to listen on (default 9000; 0 picks a free one)
  --host ADDR          address to listen on (default 127.0.0.1)
  --tls-cert FILE      PEM certificate: serve HTTPS (needs --tls-key)
  --tls-key FILE       PEM private key (needs --tls-cert)
  --http2              with TLS: HTTP/2 and HTTP/1.1 by ALPN; without: h2c (prior knowledge) only
  --openai-key KEY     provider key the mock expects for OpenAI requests (default ${DEFAULT_KEYS.openai});
                       repeat it to accept several keys (likewise the two below)
  --anthropic-key KEY  provider key the mock expects for Anthropic requests (default ${DEFAULT_KEYS.anthropic})
  --gemini-key KEY     provider key the mock expects for Gemini requests (default ${DEFAULT_KEYS.gemini})
  --record             keep every request in memory (off by default, so memory stays flat under load)
  --fail JSON          a fault rule or a list of them, active from the start (repeatable; docs/retries.md),
                       e.g. '{"key":"sk-a","status":429,"retryAfter":2}'; counts at GET /__counts
  -h, --help           print this help and exit
`

const fail = (message: string): never => {
  process.stderr.write(`mock: ${message}\n`)
  process.exit(2)
}

/** Parsed options; a bad command line is one line on stderr and exit 2 (never a stack trace). */
const parse = () => {
  try {
    return parseArgs({
      options: {
        port: { type: "string", default: "9000" },
        host: { type: "string", default: "127.0.0.1" },
        "tls-cert": { type: "string" },
        "tls-key": { type: "string" },
        http2: { type: "boolean", default: false },
        "openai-key": { type: "string", multiple: true },
        "anthropic-key": { type: "string", multiple: true },
        "gemini-key": { type: "string", multiple: true },
        record: { type: "boolean", default: false },
        fail: { type: "string", multiple: true },
        help: { type: "boolean", short: "h", default: false }
      },
      strict: true
    }).values
  } catch (e) {
    // node:util's messages are one line ("Unknown option '--x'..."); the usage says what is accepted.
    return fail(`${e instanceof Error ? e.message.split("\n")[0] : String(e)} (see --help)`)
  }
}
const values = parse()
if (values.help) {
  process.stdout.write(USAGE)
  process.exit(0)
}

const port = Number(values.port)
if (!Number.isInteger(port) || port < 0 || port > 65535) fail(`invalid --port ${values.port}`)
const certFile = values["tls-cert"]
const keyFile = values["tls-key"]
if ((certFile === undefined) !== (keyFile === undefined)) fail("--tls-cert and --tls-key go together")

const keys: { openai?: Array<string>; anthropic?: Array<string>; gemini?: Array<string> } = {}
if (values["openai-key"] !== undefined) keys.openai = values["openai-key"]
if (values["anthropic-key"] !== undefined) keys.anthropic = values["anthropic-key"]
if (values["gemini-key"] !== undefined) keys.gemini = values["gemini-key"]

const faults: Array<FaultRule> = []
for (const text of values.fail ?? []) {
  const rules = parseFaultRules(text)
  if (typeof rules === "string") fail(`--fail: ${rules}`)
  else faults.push(...rules)
}

try {
  const mock = await startMockProvider({
    port,
    host: values.host,
    http2: values.http2,
    keys,
    record: values.record,
    faults,
    tls:
      certFile !== undefined && keyFile !== undefined
        ? { cert: readFileSync(certFile), key: readFileSync(keyFile) }
        : undefined
  })
  process.stdout.write(`mock provider listening on ${mock.url}\n`)
  let stopping = false
  const stop = (): void => {
    if (stopping) return
    stopping = true
    mock.close().then(
      () => process.exit(0),
      () => process.exit(0)
    )
  }
  process.on("SIGTERM", stop)
  process.on("SIGINT", stop)
} catch (err) {
  fail(err instanceof Error ? err.message : String(err))
}
