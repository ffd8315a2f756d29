// Issue 14's side path without sockets: what the admin listener + access log + usage taps add to one S1 request
// (the injection pre-check, the JSON usage tap over the 1 KiB answer, the request model, the usage read, the
// metrics record and the access line into the batch buffer, written to /dev/null), in a loop, measured in process
// CPU time per request. Deterministic enough to compare checkouts on a busy machine, where S1's on/off figures are
// noise: `node bench/obs-path.mjs [--roots DIR1,DIR2] [--parts all,usage,metrics,access] [--runs 2]`
// (default: this checkout; each root's src/ is bundled with esbuild, so a root needs its node_modules).
// It is the side path only: the bench's on/off difference also holds GC, the batch's write system call and cache
// effects of the real process.
import { execFileSync } from "node:child_process"
import fs from "node:fs"
import os from "node:os"
import path from "node:path"
import { fileURLToPath } from "node:url"
import { build } from "esbuild"

const here = path.dirname(fileURLToPath(import.meta.url))
const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`)
  return i < 0 ? dflt : process.argv[i + 1]
}
const roots = arg("roots", path.resolve(here, ".."))
  .split(",")
  .map((r) => path.resolve(r))
const parts = arg("parts", "all,usage,metrics,access").split(",")
const runs = Number(arg("runs", "2"))
const flags = JSON.parse(fs.readFileSync(path.join(here, "../src/v8flags.json"), "utf8")).start
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "obs-path-"))

/** The loop for one root and part, as TypeScript importing that root's sources (old or new API, as it has). */
const entry = (root, part) => {
  const src = (f) => fs.readFileSync(path.join(root, "src", f), "utf8")
  const newAccess = src("observability/accessLog.ts").includes("writeExchange")
  const newMetrics = src("services/Metrics.ts").includes("recordEnd")
  const imp = (f) => JSON.stringify(path.join(root, "src", f))
  return `
import fs from "node:fs"
import { makeAccessLog } from ${imp("observability/accessLog.js")}
import { makeMetrics } from ${imp("services/Metrics.js")}
import { createUsageTap, requestModel, usageSource } from ${imp("domain/usage/index.js")}
import { mayStream } from ${imp("domain/usage/inject.js")}
${newAccess ? "" : `import { accessEntry } from ${imp("proxy/phases/log.js")}`}
${newMetrics ? "" : `import { requestEnd } from ${imp("services/RequestPath.js")}`}
import { replyJson } from ${JSON.stringify(path.join(here, "nginx.mjs"))}
const part: string = ${JSON.stringify(part)}
const req = fs.readFileSync(${JSON.stringify(path.join(here, "request.json"))})
const reply = Buffer.from(replyJson(1024))
const provider = { type: "openai", hostRaw: "127.0.0.1", index: 0 } as any
const fd = fs.openSync("/dev/null", "w")
const access = makeAccessLog("text", () => {}, 50, (b: Uint8Array) => { fs.writeSync(fd, b) })
const metrics = makeMetrics()
let id = 0
const one = () => {
  const ex: any = {
    requestId: "AbCdEfGhIjKl-" + (id++).toString(36), client: "127.0.0.1", listener: "http", protocol: "http/1.1",
    method: "POST", hostName: "127.0.0.1", url: "/v1/chat/completions", identity: { provider },
    path: "/v1/chat/completions", upstreamProtocol: "http/1.1", keyName: "key-1a2b3c4d", status: 200, bytesIn: 1024,
    bytesOut: 1024, ttfbMs: 0.3 + (id % 100) / 97, ttftMs: -1, attempts: 1, model: undefined, responseModel: undefined,
    usage: undefined, outcome: "ok", startedAt: 0
  }
  if (part === "all" || part === "usage") {
    if (mayStream(req)) throw new Error("a streamed request?")
    const tap = createUsageTap(usageSource("openai", "/v1/chat/completions", "application/json"), undefined)!
    tap.push(Buffer.from(reply.buffer, reply.byteOffset, reply.length))
    ex.model = requestModel("openai", "/v1/chat/completions", req)
    const r = tap.finish() as any
    ex.usage = r.usage
    ex.responseModel = r.responseModel
  } else {
    ex.model = "gpt-4o-mini"
    ex.responseModel = "gpt-4o-mini-2024-07-18"
    ex.usage = { input: 256, output: 180, cacheRead: 0, cacheWrite: 0, reasoning: 0 }
  }
  const d = 0.5 + (id % 1000) / 997
  if (part === "all" || part === "metrics") ${newMetrics ? "metrics.recordEnd(ex, d)" : "metrics.record(requestEnd(ex, d))"}
  if (part === "all" || part === "access") ${newAccess ? "access.writeExchange(ex, d)" : "access.write(accessEntry(ex, d))"}
}
const N = 300_000
let best = Infinity
for (let round = 0; round < 5; round++) {
  const c = process.cpuUsage()
  for (let i = 0; i < N; i++) one()
  const cpu = process.cpuUsage(c)
  if (round >= 2) best = Math.min(best, ((cpu.user + cpu.system) * 1000) / N)
}
access.flush()
console.log(best.toFixed(0))
`
}

const bundles = new Map()
for (const root of roots) {
  for (const part of parts) {
    const name = `${roots.indexOf(root)}-${part}`
    const file = path.join(tmp, `${name}.ts`)
    fs.writeFileSync(file, entry(root, part))
    const out = path.join(tmp, `${name}.mjs`)
    await build({
      entryPoints: [file],
      outfile: out,
      bundle: true,
      platform: "node",
      format: "esm",
      logLevel: "error",
      nodePaths: [path.join(root, "node_modules")],
      banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" }
    })
    bundles.set(`${root}\t${part}`, out)
  }
}
const results = new Map()
for (let r = 0; r < runs; r++) {
  // interleaved: each part of each root once per run
  for (const part of parts) {
    for (const root of roots) {
      const ns = Number(
        execFileSync(process.execPath, [...flags, bundles.get(`${root}\t${part}`)], { encoding: "utf8" })
      )
      const k = `${root}\t${part}`
      results.set(k, [...(results.get(k) ?? []), ns])
    }
  }
}
console.log(`side path CPU per request (ns; best of rounds 3-5 of 300k, ${runs} run(s) each, interleaved)`)
for (const part of parts) {
  for (const root of roots) console.log(`${part.padEnd(8)} ${root}: ${results.get(`${root}\t${part}`).join(" / ")}`)
}
fs.rmSync(tmp, { recursive: true, force: true })
