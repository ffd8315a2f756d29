// The benchmark harness (`npm run bench`): builds openproxy, starts an nginx upstream and a streaming upstream,
// and drives the same load at the upstream directly, openproxy, nginx, http-proxy and @fastify/http-proxy,
// interleaved over rounds. Prints medians, ratios and the issue-6 targets; writes raw results to bench/results/.
// Flags: --quick (1 round, 3 s / 2 s runs), --rounds N, --s1 SECONDS, --s2 SECONDS, --only s1,s2,s3,s4,s5,s6,
//        --s6-levels 500,1000,1500 (S6 runs last: bench/s6.mjs, with --quick, --targets, --node passed on)
//        --targets direct,openproxy,...  --s5-target NAME  --no-build  --keep-tmp
//        (extra target, only with --targets: openproxy-noflags = `node dist/main.js` without the shebang's V8 flags;
//        openproxy-limit-mem / openproxy-limit-redis = openproxy with the bench key limited (SPEC §12: requests,
//        tokens and concurrency, limits never reached) on the memory store / a local redis-server)
//        --node PATH (the Node binary for openproxy, the lean floor and node:http alone; default: `node` on PATH)
//        --obs (issue 14's cost: the targets become direct, openproxy-obs-off and openproxy-obs-on, the same build
//        without and with the admin listener + access log (to the process's log file) + usage taps; the report
//        adds per-round on/off ratios of S1 req/s and CPU and the S2 p50 difference, from the same rounds)
//        --v8-variants "NAME=FLAGS;NAME2=FLAGS2" (extra targets v8:NAME = `NODE FLAGS dist/main.js start`, for V8-flag
//        A/B runs; FLAGS are space-separated, may be empty)  --s4-targets openproxy,v8:NAME,...
//        --builds "NAME=DIR;..." (extra targets build:NAME = DIR/dist/main.js, another checkout's build, for
//        before/after runs in one interleaved run; DIR must be built; build:NAME:obs-on, that build with the admin
//        listener + access log + usage, is selected with --targets)
//        --obs-off-builds NAME,... (those builds get openproxy-obs-off's config: `access_log: false`)
//        --conf-variants "NAME=YAML;..." (extra targets conf:NAME = this build with YAML appended to its config,
//        `\n` for a line break: e.g. "obs-off=access_log: false")
import { execSync } from "node:child_process"
import fs from "node:fs"
import os from "node:os"
import path from "node:path"
import { fileURLToPath } from "node:url"
import {
  cpuBusy,
  freePort,
  killAllSync,
  median,
  namedList,
  parseH2load,
  parseWrk,
  percentile,
  request,
  rssKiB,
  run,
  sleep,
  startPiped,
  startProc,
  stopAll,
  stopProc,
  table,
  tailLog,
  waitLine,
  waitUntil
} from "./lib.mjs"
import { writeProxyConf, writeUpstreamConf } from "./nginx.mjs"
import { runS6 } from "./s6-hook.mjs"

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")
process.chdir(root)

// ---------------------------------------------------------------- options
const argv = process.argv.slice(2)
const flag = (name) => argv.includes(`--${name}`)
const opt = (name, dflt) => {
  const i = argv.indexOf(`--${name}`)
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1] : dflt
}
const quick = flag("quick")
const rounds = Number(opt("rounds", quick ? 1 : 3))
const s1Secs = Number(opt("s1", quick ? 3 : 10))
const s2Secs = Number(opt("s2", quick ? 2 : 5))
const warmSecs = quick ? 1 : 2
const only = new Set(opt("only", "s1,s2,s3,s4,s5,s6").split(","))
const h2Requests = quick ? 20000 : 100000
const sseStreams = quick ? 5 : 20
const idleConns = 10000
const wsConns = 1000

const ALL_TARGETS = [
  "direct",
  "openproxy",
  "openproxy-w2",
  "lean-floor",
  "node-http",
  "nginx",
  "http-proxy",
  "fastify-proxy"
]
// Run only when named in --targets.
const EXTRA_TARGETS = [
  "openproxy-noflags",
  "openproxy-limit-mem",
  "openproxy-limit-redis",
  "openproxy-obs-off",
  "openproxy-obs-on"
]
// --obs: issue 14's A/B (observability off vs on, one build), interleaved over the rounds with the direct path.
const OBS_TARGETS = ["direct", "openproxy-obs-off", "openproxy-obs-on"]
// V8-flag A/B variants: each is openproxy started as `NODE FLAGS dist/main.js`, so every variant (the shipped
// flags included) launches the same way and only the flags differ.
const v8Variants = (opt("v8-variants", "") || "")
  .split(";")
  .filter((v) => v.includes("="))
  .map((v) => {
    const [name, flags] = [v.slice(0, v.indexOf("=")), v.slice(v.indexOf("=") + 1)]
    return { name: `v8:${name.trim()}`, flags: flags.split(" ").filter((f) => f !== "") }
  })
const buildVariants = namedList(opt("builds", "")).map((b) => ({ name: `build:${b.name}`, dir: path.resolve(b.value) }))
// builds (by NAME) that get the openproxy-obs-off config (`access_log: false`), for before/after runs of builds
// that know the option: `--obs-off-builds base`
const obsOffBuilds = new Set(
  opt("obs-off-builds", "")
    .split(",")
    .filter((s) => s !== "")
)
const confVariants = namedList(opt("conf-variants", "")).map((c) => ({
  name: `conf:${c.name}`,
  yaml: c.value.replaceAll("\\n", "\n")
}))
const wanted = new Set([
  ...opt("targets", (flag("obs") ? OBS_TARGETS : ALL_TARGETS).join(",")).split(","),
  ...v8Variants.map((v) => v.name),
  ...buildVariants.map((v) => v.name),
  ...confVariants.map((v) => v.name)
])
const NODE = opt("node", "node")
// The V8 flags openproxy runs with on that Node (src/v8flags.json: the shebang's start flags and the runtime flags
// the process sets for its major); the lean floor and node:http alone get the same ones on their command line.
const V8FLAGS = JSON.parse(fs.readFileSync(new URL("../src/v8flags.json", import.meta.url), "utf8"))
const nodeMajor = execSync(`${NODE} -p process.versions.node`, { encoding: "utf8" }).trim().split(".")[0] ?? ""
const OPENPROXY_V8_FLAGS = [...V8FLAGS.start, ...(V8FLAGS.runtime[nodeMajor] ?? [])]
const s4Targets = opt("s4-targets", "openproxy").split(",")
// "Best Node proxy" as issue 6 defines it. The lean floor and node:http alone are references, not competitors.
const NODE_PROXIES = ["http-proxy", "fastify-proxy"]
const LOAD_CPU = "1"
const PROXY_CPU = "0"
const UPSTREAM_KEY = "sk-upstream"
const MOCK_HOST = "mock.bench"

const log = (...a) => console.log(`[bench ${new Date().toISOString().slice(11, 19)}]`, ...a)

// ---------------------------------------------------------------- clean-up on every exit path
let tmp = null
const cleanupSync = () => {
  killAllSync()
  if (tmp && !flag("keep-tmp")) fs.rmSync(tmp, { recursive: true, force: true })
}
process.on("exit", cleanupSync)
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(sig, () => {
    console.error(`\n[bench] ${sig}: stopping everything`)
    cleanupSync()
    process.exit(130)
  })
}
process.on("uncaughtException", (e) => {
  console.error("[bench] error:", e)
  cleanupSync()
  process.exit(1)
})

// ---------------------------------------------------------------- machine facts
const sys = (cmd) => {
  try {
    return execSync(cmd, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).trim()
  } catch {
    return null
  }
}
const machine = () => ({
  nproc: Number(sys("nproc")),
  cpu: (sys("lscpu | grep 'Model name'") ?? "").replace(/^Model name:\s*/, ""),
  kernel: sys("uname -r"),
  node: sys(`${NODE} --version`) ?? process.version,
  nginx: (sys("nginx -v 2>&1") ?? "").replace("nginx version: ", ""),
  wrk: (sys("wrk -v 2>&1 | head -1") ?? "").split(" ").slice(0, 2).join(" "),
  h2load: sys("h2load --version"),
  date: new Date().toISOString()
})

// ---------------------------------------------------------------- set-up steps
const setupTools = async () => {
  const r = await run(["bash", "bench/setup.sh"], { timeoutMs: 300000 })
  if (r.code !== 0) throw new Error(`bench/setup.sh failed:\n${r.stderr}${r.stdout}`)
  for (const bin of ["wrk", "h2load", "nginx", "openssl", "taskset"]) {
    if (!sys(`command -v ${bin} || ls /usr/sbin/${bin} 2>/dev/null`)) throw new Error(`${bin} not found after setup`)
  }
}

const buildProxy = async () => {
  if (flag("no-build")) return { ok: fs.existsSync("dist/main.js"), note: "--no-build" }
  log("building (npm run build)")
  const t0 = Date.now()
  const r = await run(["npm", "run", "build", "--silent"], { timeoutMs: 180000 })
  const fresh = fs.existsSync("dist/main.js") && fs.statSync("dist/main.js").mtimeMs >= t0 - 1000
  if (r.code !== 0) {
    const why = (r.stderr + r.stdout).trim().split("\n").slice(0, 6).join("\n")
    // The build bundles several entry points in parallel: dist/main.js may be fresh even if another one failed.
    return { ok: fresh, note: `build failed${fresh ? " (dist/main.js was rebuilt)" : ""}:\n${why}` }
  }
  return { ok: fresh, note: fresh ? "built" : "build did not write dist/main.js" }
}

const makeCert = async (dir) => {
  const cert = path.join(dir, "cert.pem")
  const key = path.join(dir, "key.pem")
  const r = await run(
    [
      "openssl",
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-keyout",
      key,
      "-out",
      cert,
      "-days",
      "2",
      "-subj",
      "/CN=127.0.0.1",
      "-addext",
      `subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:${MOCK_HOST}`
    ],
    { timeoutMs: 20000 }
  )
  if (r.code !== 0) throw new Error(`openssl failed: ${r.stderr}`)
  return { cert, key }
}

/** A POST like wrk's; true when the reply is a 200 with the 1 KiB body. */
const body = fs.readFileSync("bench/request.json")
const probePost =
  (port, key = "sk-bench") =>
  async () => {
    const r = await request(
      {
        host: "127.0.0.1",
        port,
        method: "POST",
        path: "/v1/chat/completions",
        headers: { authorization: `Bearer ${key}`, "content-type": "application/json" }
      },
      body
    )
    if (r.status === 200 && r.body.length === 1024) return true
    return `status ${r.status}, ${r.body.length} bytes: ${r.body.toString().slice(0, 80)}`
  }

/** The bench key with limits it never reaches (every one checked per request), for the limits rows. */
const LIMITED_KEY =
  "  - {name: bench, key: sk-bench, limits: {requests_per_minute: 1000000000, tokens_per_minute: 1000000000000, " +
  "concurrent_requests: 100000}}"

const openproxyConfig = ({
  dir,
  name,
  port,
  tlsPort,
  upstreamPort,
  streamPort,
  workers,
  tls,
  limits,
  redisPort,
  extraYaml,
  obs,
  adminPort
}) => {
  const lines = ["# Generated by bench/run.mjs", `http_port: ${port}`, "http_bind_address: 127.0.0.1"]
  // obs "off": no admin listener, no access log (so no usage taps); "on": both (the access log goes to the
  // process's stdout, which startProc sends to its log file, as a service manager would to a file or journal)
  if (obs === "off") lines.push("access_log: false")
  if (obs === "on") lines.push("access_log: true", `admin: {port: ${adminPort}, bind_address: 127.0.0.1}`)
  if (tlsPort) {
    lines.push(`https_port: ${tlsPort}`, "https_bind_address: 127.0.0.1")
    lines.push(`cert_file: ${JSON.stringify(tls.cert)}`, `private_key_file: ${JSON.stringify(tls.key)}`)
  }
  if (workers) lines.push(`workers: ${workers}`)
  if (limits) {
    lines.push("auth_keys:", LIMITED_KEY, "limits:", `  store: ${limits}`)
    if (limits === "redis") lines.push(`  redis_url: "redis://127.0.0.1:${redisPort}/0"`)
  } else lines.push('auth_keys: ["sk-bench"]')
  lines.push(
    "providers:",
    "  - type: openai",
    '    host: "127.0.0.1"',
    `    endpoint: "127.0.0.1:${upstreamPort}"`,
    "    tls: false",
    `    api_key: "${UPSTREAM_KEY}"`,
    "  - type: openai",
    `    host: "${MOCK_HOST}"`,
    `    endpoint: "127.0.0.1:${streamPort}"`,
    "    tls: false",
    `    api_key: "${UPSTREAM_KEY}"`,
    ""
  )
  if (extraYaml) lines.push(extraYaml, "")
  const file = path.join(dir, `${name}.yml`)
  fs.writeFileSync(file, lines.join("\n"))
  return file
}

/** utime + stime of a process (every thread), in clock ticks; null when it cannot be read. */
const CLK_TCK = Number(sys("getconf CLK_TCK") ?? 100)
const cpuTicks = (pid) => {
  if (!pid) return null
  try {
    const f = fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ")
    return Number(f[11]) + Number(f[12])
  } catch {
    return null
  }
}

// ---------------------------------------------------------------- load generators
const wrk = async (port, { c, secs, cpu = LOAD_CPU }) => {
  const r = await run(
    [
      "wrk",
      "-t1",
      `-c${c}`,
      `-d${secs}s`,
      "--timeout",
      "5s",
      "-s",
      "bench/post.lua",
      `http://127.0.0.1:${port}/v1/chat/completions`
    ],
    { cpu, timeoutMs: (secs + 20) * 1000 }
  )
  const parsed = parseWrk(r.stdout)
  if (!parsed) return { error: `wrk gave no result (code ${r.code}): ${(r.stderr || r.stdout).slice(0, 200)}` }
  const errors =
    parsed.connect_errors + parsed.read_errors + parsed.write_errors + parsed.status_errors + parsed.timeouts
  return { ...parsed, errors }
}

const h2load = async (port, n) =>
  run(
    [
      "h2load",
      "-c10",
      "-m32",
      "-n",
      String(n),
      "-H",
      "authorization: Bearer sk-bench",
      "-H",
      "content-type: application/json",
      "-d",
      "bench/request.json",
      `https://127.0.0.1:${port}/v1/chat/completions`
    ],
    { cpu: LOAD_CPU, timeoutMs: 90000 }
  )

// ---------------------------------------------------------------- main
const main = async () => {
  const started = Date.now()
  const info = machine()
  log(`machine: ${info.nproc} cpus, ${info.cpu}, node ${info.node}`)
  if (info.nproc < 2) log("warning: fewer than 2 cores; pinning puts proxy and load on the same core")
  await setupTools()
  const build = await buildProxy()
  log(`openproxy: ${build.ok ? "dist/main.js present" : "not runnable"} (${build.note.split("\n")[0]})`)
  if (!build.ok && build.note.includes("\n")) console.log(build.note)

  // Nothing else should run during a benchmark: on a shared 2-core machine a build or test run elsewhere
  // shows up as throughput swings and millisecond p99s. Measure it, warn, and record it with the results.
  const busyAtStart = await cpuBusy(1500)
  if (busyAtStart > 0.15) {
    log(`warning: the machine is ${Math.round(busyAtStart * 100)}% busy before the run; figures will be noisy`)
  }
  info.busy_at_start = Math.round(busyAtStart * 1000) / 10

  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "openproxy-bench-"))
  const tls = await makeCert(tmp)
  const ports = {}
  for (const k of [
    "up",
    "upTls",
    "stream",
    "op",
    "opTls",
    "op2",
    "opNf",
    "lean",
    "nodeHttp",
    "ngx",
    "ngxTls",
    "hp",
    "fp",
    "opLm",
    "opLr",
    "redis"
  ])
    ports[k] = await freePort()

  // Upstreams on the load generator's core.
  const upConf = writeUpstreamConf({ dir: tmp, port: ports.up, tlsPort: ports.upTls, ...tls })
  const upstream = startProc("upstream-nginx", ["nginx", "-c", upConf, "-p", tmp, "-e", path.join(tmp, "up.err")], {
    cpu: LOAD_CPU,
    logDir: tmp
  })
  const upReady = await waitUntil(probePost(ports.up), { proc: upstream })
  if (!upReady.ok) throw new Error(`nginx upstream did not start: ${upReady.reason}`)

  const haveMock = fs.existsSync("dist/mock.js")
  const streamArgv = haveMock
    ? ["node", "dist/mock.js", "--port", String(ports.stream)]
    : ["node", "bench/stream-upstream.mjs", "--port", String(ports.stream)]
  const streamUp = startProc("stream-upstream", streamArgv, { cpu: LOAD_CPU, logDir: tmp })
  const streamReady = await waitUntil(
    async () => {
      const r = await request({ host: "127.0.0.1", port: ports.stream, path: "/__sse?events=1&interval_ms=1" })
      return r.status === 200 ? true : `status ${r.status}`
    },
    { proc: streamUp, timeoutMs: 10000 }
  )
  const streamNote = haveMock ? "dist/mock.js" : "bench/stream-upstream.mjs (dist/mock.js not built)"
  log(`streaming upstream: ${streamNote}: ${streamReady.ok ? "up" : `not ready: ${streamReady.reason}`}`)

  const confFor = (name, extra) =>
    openproxyConfig({ dir: tmp, name, upstreamPort: ports.up, streamPort: ports.stream, tls, ...extra })
  const opConf = confFor("openproxy", { port: ports.op, tlsPort: ports.opTls })
  const op2Conf = confFor("openproxy-w2", { port: ports.op2, workers: 2 })
  const opNfConf = confFor("openproxy-noflags", { port: ports.opNf })
  const opLmConf = confFor("openproxy-limit-mem", { port: ports.opLm, limits: "memory" })
  const opLrConf = confFor("openproxy-limit-redis", { port: ports.opLr, limits: "redis", redisPort: ports.redis })
  if (wanted.has("openproxy-limit-redis")) {
    // The limits store of the Redis row, on the load generator's core like the upstreams.
    const redis = startProc(
      "redis",
      ["redis-server", "--port", String(ports.redis), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
      { cpu: LOAD_CPU, logDir: tmp }
    )
    const up = await waitUntil(async () => (sys(`redis-cli -p ${ports.redis} ping`) === "PONG" ? true : "no PONG"), {
      proc: redis,
      timeoutMs: 10000
    })
    if (!up.ok) throw new Error(`redis-server did not start: ${up.reason}`)
  }
  const obsPorts = { off: await freePort(), on: await freePort(), admin: await freePort() }
  const obsOffConf = confFor("openproxy-obs-off", { port: obsPorts.off, obs: "off" })
  const obsOnConf = confFor("openproxy-obs-on", { port: obsPorts.on, obs: "on", adminPort: obsPorts.admin })
  const variantTargets = {}
  for (const v of v8Variants) {
    const port = await freePort()
    const conf = confFor(v.name.replace(/[^a-z0-9-]/gi, "_"), { port })
    variantTargets[v.name] = {
      port,
      argv: [NODE, ...v.flags, "dist/main.js", "start", "-c", conf],
      cpu: PROXY_CPU,
      needsBuild: true
    }
    LABEL[v.name] = `openproxy ${v.name} (${v.flags.join(" ") || "no flags"})`
  }
  for (const b of buildVariants) {
    const port = await freePort()
    const obs = obsOffBuilds.has(b.name.slice("build:".length)) ? "off" : undefined
    const conf = confFor(b.name.replace(/[^a-z0-9-]/gi, "_"), { port, obs })
    const bin = path.join(b.dir, "dist/main.js")
    // another checkout's bin as installed (its own shebang flags); unavailable when that checkout is not built
    variantTargets[b.name] = fs.existsSync(bin)
      ? { port, argv: [bin, "start", "-c", conf], cpu: PROXY_CPU }
      : { port, missing: `${bin} not built` }
    LABEL[b.name] = `openproxy ${b.name} (${b.dir})`
    // and `build:NAME:obs-on`, that build with the admin listener + access log + usage taps (--targets only): issue
    // 14's cost before/after, e.g. --targets openproxy-obs-on,build:main:obs-on --builds "main=../main"
    const obsName = `${b.name}:obs-on`
    const obsPort = await freePort()
    const obsConf = confFor(obsName.replace(/[^a-z0-9-]/gi, "_"), {
      port: obsPort,
      obs: "on",
      adminPort: await freePort()
    })
    variantTargets[obsName] = fs.existsSync(bin)
      ? { port: obsPort, argv: [bin, "start", "-c", obsConf], cpu: PROXY_CPU }
      : { port: obsPort, missing: `${bin} not built` }
    LABEL[obsName] = `openproxy ${b.name} (${b.dir}), admin + access log + usage`
  }
  for (const c of confVariants) {
    const port = await freePort()
    const conf = confFor(c.name.replace(/[^a-z0-9-]/gi, "_"), { port, extraYaml: c.yaml })
    variantTargets[c.name] = { port, argv: ["./dist/main.js", "start", "-c", conf], cpu: PROXY_CPU, needsBuild: true }
    LABEL[c.name] = `openproxy ${c.name} (+ ${c.yaml.replaceAll("\n", "; ")})`
  }
  const ngxConf = writeProxyConf({ dir: tmp, port: ports.ngx, tlsPort: ports.ngxTls, upstreamPort: ports.up, ...tls })

  const targets = {
    direct: { port: ports.up, tlsPort: ports.upTls },
    openproxy: {
      port: ports.op,
      tlsPort: ports.opTls,
      // the `openproxy` bin as installed: its shebang carries the V8 flags the proxy ships with
      argv: ["./dist/main.js", "start", "-c", opConf],
      cpu: PROXY_CPU,
      needsBuild: true
    },
    "openproxy-w2": {
      port: ports.op2,
      argv: ["./dist/main.js", "start", "-c", op2Conf],
      cpu: "0,1",
      needsBuild: true
    },
    "openproxy-limit-mem": {
      port: ports.opLm,
      argv: ["./dist/main.js", "start", "-c", opLmConf],
      cpu: PROXY_CPU,
      needsBuild: true
    },
    "openproxy-limit-redis": {
      port: ports.opLr,
      argv: ["./dist/main.js", "start", "-c", opLrConf],
      cpu: PROXY_CPU,
      needsBuild: true
    },
    "openproxy-noflags": {
      port: ports.opNf,
      // the same without the shebang's V8 flags (Node's defaults)
      argv: [NODE, "dist/main.js", "start", "-c", opNfConf],
      cpu: PROXY_CPU,
      needsBuild: true
    },
    "openproxy-obs-off": {
      port: obsPorts.off,
      argv: ["./dist/main.js", "start", "-c", obsOffConf],
      cpu: PROXY_CPU,
      needsBuild: true
    },
    "openproxy-obs-on": {
      port: obsPorts.on,
      argv: ["./dist/main.js", "start", "-c", obsOnConf],
      cpu: PROXY_CPU,
      needsBuild: true
    },
    "lean-floor": {
      port: ports.lean,
      argv: [NODE, ...OPENPROXY_V8_FLAGS, "bench/proxies/lean-floor.mjs", String(ports.lean), String(ports.up)],
      cpu: PROXY_CPU
    },
    "node-http": {
      port: ports.nodeHttp,
      argv: [NODE, ...OPENPROXY_V8_FLAGS, "bench/proxies/node-http.mjs", String(ports.nodeHttp)],
      cpu: PROXY_CPU
    },
    nginx: {
      port: ports.ngx,
      tlsPort: ports.ngxTls,
      argv: ["nginx", "-c", ngxConf, "-p", tmp, "-e", path.join(tmp, "ngx.err")],
      cpu: PROXY_CPU
    },
    "http-proxy": {
      port: ports.hp,
      argv: ["node", "bench/proxies/http-proxy.mjs", String(ports.hp), String(ports.up)],
      cpu: PROXY_CPU
    },
    "fastify-proxy": {
      port: ports.fp,
      argv: ["node", "bench/proxies/fastify-proxy.mjs", String(ports.fp), String(ports.up)],
      cpu: PROXY_CPU
    },
    ...variantTargets
  }
  const names = [...ALL_TARGETS, ...EXTRA_TARGETS, ...Object.keys(variantTargets)].filter((t) => wanted.has(t))
  const unavailable = {}
  for (const t of names) if (targets[t].needsBuild && !build.ok) unavailable[t] = "openproxy not built"
  for (const t of names) if (targets[t].missing) unavailable[t] = targets[t].missing

  /** Starts a target and waits until it answers the benchmark's POST; returns { proc } or { error }. */
  const startTarget = async (name) => {
    const t = targets[name]
    if (!t.argv) return { proc: null }
    const proc = startProc(name, t.argv, { cpu: t.cpu, logDir: tmp })
    const ready = await waitUntil(probePost(t.port), { proc, timeoutMs: 15000 })
    if (!ready.ok) {
      await stopProc(proc)
      return { error: ready.reason }
    }
    if (name === "openproxy-w2") {
      // Cluster mode must really fork: a config that is accepted but runs one process is not a cluster row.
      await sleep(500)
      const children = Number(sys(`pgrep -c -P ${proc.pid}`) ?? 0)
      results.clusterWorkers = children
      if (children < 2) log(`warning: openproxy with workers: 2 runs ${children} child process(es)`)
    }
    return { proc }
  }

  const results = {
    machine: info,
    options: { quick, rounds, s1Secs, s2Secs, warmSecs, h2Requests, sseStreams, idleConns, wsConns, only: [...only] },
    build,
    streamUpstream: streamNote,
    unavailable,
    s1: {},
    s2: {},
    s3: {},
    s4: {},
    s5: {}
  }
  for (const t of names) {
    results.s1[t] = []
    results.s2[t] = []
  }
  results.s2["direct-x"] = []

  // ------------------------------------------------ scenarios 1 and 2, interleaved
  if (only.has("s1") || only.has("s2")) {
    for (let r = 0; r < rounds; r++) {
      // Rotate the order each round so no target always runs first or last.
      const order = names.map((_, i) => names[(i + r) % names.length])
      for (const name of order) {
        if (unavailable[name]) continue
        const { proc, error } = await startTarget(name)
        if (error) {
          unavailable[name] = error
          log(`round ${r + 1} ${name}: n/a (${error.split("\n")[0]})`)
          continue
        }
        try {
          await wrk(targets[name].port, { c: 64, secs: warmSecs })
          if (only.has("s1")) {
            const cpu0 = cpuTicks(proc?.pid)
            const s1 = await wrk(targets[name].port, { c: 64, secs: s1Secs })
            // CPU time the proxy process spent per request: unlike req/s it hardly moves when other work shares
            // the machine, so it is what an A/B run on a busy machine can still compare.
            const cpu1 = cpuTicks(proc?.pid)
            if (cpu0 !== null && cpu1 !== null && s1.requests)
              s1.cpu_us_per_req = ((cpu1 - cpu0) * 1e6) / CLK_TCK / s1.requests
            results.s1[name].push(s1)
            log(
              `round ${r + 1} S1 ${name}: ${s1.error ?? `${Math.round(s1.rps)} req/s p50 ${s1.p50_us} µs p99 ${s1.p99_us} µs errors ${s1.errors}${s1.cpu_us_per_req ? ` cpu ${s1.cpu_us_per_req.toFixed(1)} µs/req` : ""}`}`
            )
          }
          if (only.has("s2")) {
            const s2 = await wrk(targets[name].port, { c: 1, secs: s2Secs })
            results.s2[name].push(s2)
            log(
              `round ${r + 1} S2 ${name}: ${s2.error ?? `p50 ${s2.p50_us} µs p99 ${s2.p99_us} µs errors ${s2.errors}`}`
            )
            if (name === "direct") {
              // Reference: the same direct path with wrk on the proxies' core, i.e. the cost of the cross-core
              // hop (and this machine's scheduling noise) that every proxied request pays twice.
              const x = await wrk(targets[name].port, { c: 1, secs: s2Secs, cpu: PROXY_CPU })
              results.s2["direct-x"].push(x)
              log(`round ${r + 1} S2 direct-x: ${x.error ?? `p50 ${x.p50_us} µs p99 ${x.p99_us} µs`}`)
            }
          }
        } finally {
          if (proc?.exited) log(`${name} exited during the run: ${tailLog(proc, 3)}`)
          await stopProc(proc)
        }
      }
    }
  }

  // ------------------------------------------------ scenario 3: HTTP/2 over TLS
  if (only.has("s3")) {
    for (const name of ["direct", "openproxy", "nginx"].filter((t) => names.includes(t))) {
      if (unavailable[name]) {
        results.s3[name] = { error: unavailable[name] }
        continue
      }
      const { proc, error } = await startTarget(name)
      if (error) {
        results.s3[name] = { error }
        continue
      }
      try {
        await h2load(targets[name].tlsPort, Math.min(5000, h2Requests))
        const r = await h2load(targets[name].tlsPort, h2Requests)
        const parsed = parseH2load(r.stdout)
        if (r.timedOut || parsed.rps === null) parsed.error = `h2load: ${(r.stderr || r.stdout).slice(-200)}`
        results.s3[name] = parsed
        log(
          `S3 ${name}: ${parsed.error ?? `${Math.round(parsed.rps)} req/s, ${parsed.succeeded}/${parsed.total} ok, proto ${parsed.protocol}`}`
        )
      } finally {
        await stopProc(proc)
      }
    }
  }

  // ------------------------------------------------ scenario 4: SSE through the proxy vs direct
  if (only.has("s4") && streamReady.ok) {
    const sse = async (port, host, key) => {
      const r = await run(
        [
          "node",
          "bench/sse-client.mjs",
          "--port",
          String(port),
          "--host",
          host,
          "--key",
          key,
          "--n",
          String(sseStreams),
          "--events",
          "200",
          "--interval",
          "5"
        ],
        { cpu: LOAD_CPU, timeoutMs: (sseStreams + 2) * 20000 }
      )
      try {
        return JSON.parse(r.stdout.trim().split("\n").pop())
      } catch {
        return { error: `sse client: ${(r.stderr || r.stdout).slice(0, 200)}` }
      }
    }
    results.s4.direct = await sse(ports.stream, `127.0.0.1:${ports.stream}`, UPSTREAM_KEY)
    for (const name of s4Targets) {
      if (unavailable[name] || !names.includes(name) || !targets[name]?.argv) {
        results.s4[name] = { error: unavailable[name] ?? "not selected" }
        continue
      }
      const { proc, error } = await startTarget(name)
      if (error) results.s4[name] = { error }
      else {
        try {
          results.s4[name] = await sse(targets[name].port, MOCK_HOST, "sk-bench")
        } finally {
          await stopProc(proc)
        }
      }
    }
    for (const [k, v] of Object.entries(results.s4)) {
      log(
        `S4 ${k}: ${v.error ?? `TTFE p50 ${percentile(v.ttfe_us, 50)?.toFixed(0)} µs, total p50 ${percentile(v.total_us, 50)?.toFixed(0)} µs, batched reads ${v.reads_multi}, errors ${v.errors.length}`}`
      )
    }
  }

  // ------------------------------------------------ scenario 5: memory
  const s5Target = opt("s5-target", "openproxy")
  if (!only.has("s5")) results.s5 = { target: s5Target, error: "not run" }
  else if (unavailable[s5Target] || !targets[s5Target]?.argv) {
    results.s5 = { target: s5Target, error: unavailable[s5Target] ?? "no process to measure" }
  } else {
    let { proc, error } = await startTarget(s5Target)
    if (error) results.s5 = { target: s5Target, error }
    else {
      // Each phase gets a fresh process: after 10,000 connections close, the heap keeps its grown size (RSS is
      // not returned), so WebSockets measured in the same process would fit in that room and look free.
      const restart = async () => {
        await stopProc(proc)
        ;({ proc, error } = await startTarget(s5Target))
        if (error) throw new Error(`S5: ${s5Target} did not restart: ${error}`)
        return proc
      }
      try {
        results.s5 = await memory(proc, targets[s5Target].port, restart)
        results.s5.target = s5Target
        log(`S5 ${s5Target}: ${JSON.stringify(results.s5)}`)
      } catch (e) {
        results.s5 = { target: s5Target, error: e.message }
      } finally {
        await stopProc(proc)
      }
    }
  }

  await stopProc(streamUp)
  await stopProc(upstream)
  results.machine.busy_at_end = Math.round((await cpuBusy(1000)) * 1000) / 10
  results.elapsed_s = Math.round((Date.now() - started) / 1000)
  report(results, names)
  // Scenario 6, streaming capacity, has its own source, targets and report (bench/s6.mjs).
  if (only.has("s6")) {
    const node = flag("node") ? NODE : null
    await runS6({
      quick,
      targets: opt("targets", null),
      levels: opt("s6-levels", null),
      node,
      keepTmp: flag("keep-tmp"),
      log
    })
  }
}

/** Scenario 5: RSS idle, with 10,000 idle keep-alive connections, then (in a fresh process) with 1,000 WebSockets. */
const memory = async (first, port, restart) => {
  const out = {}
  let proc = first
  // A few requests first so the request path's code is loaded, then let it settle.
  const settle = async () => {
    for (let i = 0; i < 100; i++) await probePost(port)().catch(() => {})
    await sleep(1500)
    return rssKiB(proc.pid)
  }
  out.idle_kib = await settle()

  const hold = async (label, extra, n) => {
    const before = rssKiB(proc.pid)
    const client = startPiped(
      `conns-${label}`,
      ["node", "bench/conns.mjs", "--port", String(port), "--n", String(n), ...extra],
      { cpu: LOAD_CPU }
    )
    const ready = await waitLine(client, "READY", 90000)
    await sleep(2000)
    const during = rssKiB(proc.pid)
    const mark = client.out.length
    client.child.stdin.write("count\n")
    const count = await waitLine(client, "COUNT", 5000, mark)
    client.child.stdin.end()
    await stopProc(client, 2000)
    await sleep(1500)
    return {
      before_kib: before,
      during_kib: during,
      delta_kib: before && during ? during - before : null,
      ready: ready ?? { error: client.err.slice(0, 300) || "client gave no result" },
      still_open: count?.open ?? null,
      after_close_kib: rssKiB(proc.pid)
    }
  }
  out.keepalive = await hold("http", ["--mode", "http"], idleConns)
  proc = await restart()
  out.idle_before_ws_kib = await settle()
  out.websocket = await hold(
    "ws",
    ["--mode", "ws", "--host", MOCK_HOST, "--path", opt("ws-path", "/ws"), "--timeout-ms", "15000"],
    wsConns
  )
  return out
}

// ---------------------------------------------------------------- reporting
const fmtUs = (us) =>
  us === null || us === undefined ? "-" : us >= 10000 ? `${(us / 1000).toFixed(1)} ms` : `${Math.round(us)} µs`
const fmtX = (x) => (x === null || x === undefined || !Number.isFinite(x) ? "-" : `${x.toFixed(2)}×`)
const mib = (kib) => (kib === null || kib === undefined ? "-" : `${(kib / 1024).toFixed(1)} MiB`)
const mark = (ok) => (ok === null ? "n/a" : ok ? "PASS" : "MISS")

const LABEL = {
  direct: "direct (nginx upstream)",
  "direct-x": "direct, wrk on core 0",
  openproxy: "openproxy (1 process)",
  "openproxy-w2": "openproxy (workers: 2)",
  "openproxy-noflags": "openproxy, node without V8 flags",
  "openproxy-limit-mem": "openproxy, key limited (memory store)",
  "openproxy-limit-redis": "openproxy, key limited (Redis store)",
  "openproxy-obs-off": "openproxy, no admin/access log/usage",
  "openproxy-obs-on": "openproxy, admin + access log + usage",
  "lean-floor": "lean floor (node:http + undici)",
  "node-http": "node:http alone, no upstream (reference)",
  nginx: "nginx (1 worker)",
  "http-proxy": "http-proxy",
  "fastify-proxy": "@fastify/http-proxy"
}

const S3_LABEL = { direct: "direct (nginx upstream, TLS)" }
const S4_LABEL = { direct: "direct (mock provider)" }

const report = (res, names) => {
  const med = (runs, key) => median(runs.filter((r) => !r.error).map((r) => r[key]))
  const s1 = {}
  const s2 = {}
  for (const t of [...names, "direct-x"]) {
    const runs1 = res.s1[t] ?? []
    const runs2 = res.s2[t] ?? []
    s1[t] = {
      rps: med(runs1, "rps"),
      p50: med(runs1, "p50_us"),
      p99: med(runs1, "p99_us"),
      cpu: med(runs1, "cpu_us_per_req"),
      errors: runs1.reduce((a, r) => a + (r.errors ?? 0), 0),
      runs: runs1.length
    }
    s2[t] = { p50: med(runs2, "p50_us"), p99: med(runs2, "p99_us"), runs: runs2.length }
  }
  const bestNode = Math.max(...NODE_PROXIES.filter((t) => s1[t]?.rps).map((t) => s1[t].rps), 0) || null
  const direct = s1.direct?.rps ?? null
  const na = (t) => (res.unavailable[t] ? "n/a" : "-")
  const lines = []
  const md = []

  const s1Rows = names.map((t) =>
    s1[t].rps === null
      ? [LABEL[t], na(t), "", "", "", "", "", ""]
      : [
          LABEL[t],
          Math.round(s1[t].rps),
          fmtUs(s1[t].p50),
          fmtUs(s1[t].p99),
          fmtX(direct ? s1[t].rps / direct : null),
          fmtX(bestNode ? s1[t].rps / bestNode : null),
          s1[t].cpu === null ? "-" : s1[t].cpu.toFixed(1),
          s1[t].errors
        ]
  )
  const s1Head = [
    "S1: POST 1 KiB, wrk -c64",
    "req/s",
    "p50",
    "p99",
    "vs direct",
    "vs best Node",
    "CPU µs/req",
    "errors"
  ]
  const s2Names = names.includes("direct") ? ["direct", "direct-x", ...names.filter((t) => t !== "direct")] : names
  const s2Rows = s2Names.map((t) => {
    if (s2[t]?.p50 === null || s2[t] === undefined) return [LABEL[t], na(t), "", "", ""]
    const add50 = s2.direct?.p50 !== null && t !== "direct" ? s2[t].p50 - s2.direct.p50 : null
    const add99 = s2.direct?.p99 !== null && t !== "direct" ? s2[t].p99 - s2.direct.p99 : null
    return [
      LABEL[t],
      fmtUs(s2[t].p50),
      fmtUs(s2[t].p99),
      add50 === null ? "-" : `+${fmtUs(add50)}`,
      add99 === null ? "-" : `+${fmtUs(add99)}`
    ]
  })
  const s2Head = ["S2: wrk -c1", "p50", "p99", "added p50", "added p99"]

  const s3Rows = Object.entries(res.s3).map(([t, v]) =>
    v.error
      ? [S3_LABEL[t] ?? LABEL[t], "n/a", "", "", ""]
      : [
          S3_LABEL[t] ?? LABEL[t],
          Math.round(v.rps),
          `${v.succeeded}/${v.total}`,
          fmtUs(v.req_mean_us),
          fmtUs(v.req_max_us)
        ]
  )
  const s3Head = ["S3: h2load -c10 -m32 (TLS, h2)", "req/s", "ok", "mean req", "max req"]

  const s4 = {}
  for (const [t, v] of Object.entries(res.s4)) {
    s4[t] = v.error
      ? { error: v.error }
      : {
          ttfe50: percentile(v.ttfe_us, 50),
          ttfe99: percentile(v.ttfe_us, 99),
          total50: percentile(v.total_us, 50),
          total99: percentile(v.total_us, 99),
          single: v.reads_single,
          multi: v.reads_multi,
          errors: v.errors.length
        }
  }
  const s4Rows = Object.entries(s4).map(([t, v]) =>
    v.error
      ? [S4_LABEL[t] ?? LABEL[t], "n/a", "", "", "", "", ""]
      : [
          S4_LABEL[t] ?? LABEL[t],
          fmtUs(v.ttfe50),
          fmtUs(v.ttfe99),
          fmtUs(v.total50),
          fmtUs(v.total99),
          `${v.single}/${v.multi}`,
          v.errors
        ]
  )
  const s4Head = [
    "S4: SSE 200 events × 5 ms",
    "TTFE p50",
    "TTFE p99",
    "total p50",
    "total p99",
    "reads 1/many",
    "errors"
  ]

  const m = res.s5
  const s5Rows = m.error
    ? [[`${m.target}`, "n/a", "", ""]]
    : [
        ["idle", mib(m.idle_kib), "", ""],
        [
          `${idleConns} keep-alive conns`,
          mib(m.keepalive.during_kib),
          `+${mib(m.keepalive.delta_kib)}`,
          `${m.keepalive.still_open ?? "?"} open, ${m.keepalive.ready?.failed ?? "?"} failed`
        ],
        [
          `${wsConns} WebSockets`,
          mib(m.websocket.during_kib),
          `+${mib(m.websocket.delta_kib)}`,
          `${m.websocket.still_open ?? "?"} open, ${m.websocket.ready?.failed ?? "?"} failed`
        ]
      ]
  const s5Head = [`S5: RSS of ${m.target ?? "openproxy"}`, "RSS", "delta", "connections"]

  // Targets from issue 6.
  const op = s1.openproxy
  const opOk = op && op.rps !== null
  const add = (k, base = "direct") =>
    s2.openproxy && s2.openproxy[k] !== null && s2[base] && s2[base][k] !== null ? s2.openproxy[k] - s2[base][k] : null
  // The issue's figure is against `direct`; the cross-core reference is shown alongside for context.
  const addText = (k) =>
    add(k) === null
      ? "-"
      : `${fmtUs(add(k))}${add(k, "direct-x") === null ? "" : ` (${fmtUs(add(k, "direct-x"))} vs core-0 direct)`}`
  const ttfeAdd =
    s4.openproxy && !s4.openproxy.error && s4.direct && !s4.direct.error ? s4.openproxy.ttfe99 - s4.direct.ttfe99 : null
  // A phase whose connections did not all stay open measured something else: n/a, not PASS/MISS.
  const wsOk = m.websocket ? m.websocket.still_open === wsConns : null
  const kaOk = m.keepalive ? m.keepalive.still_open === idleConns : null
  const targetsRows = [
    [
      "S1 openproxy ≥ 2× best Node proxy req/s",
      opOk && bestNode ? fmtX(op.rps / bestNode) : "-",
      mark(opOk && bestNode ? op.rps >= 2 * bestNode : null)
    ],
    ["S1 openproxy p99 ≤ 10 ms at 64 conns", opOk ? fmtUs(op.p99) : "-", mark(opOk ? op.p99 <= 10000 : null)],
    ["S2 added p50 ≤ 150 µs", addText("p50"), mark(add("p50") === null ? null : add("p50") <= 150)],
    ["S2 added p99 ≤ 500 µs", addText("p99"), mark(add("p99") === null ? null : add("p99") <= 500)],
    [
      "S4 added TTFE p99 ≤ 1 ms",
      ttfeAdd === null ? "-" : fmtUs(ttfeAdd),
      mark(ttfeAdd === null ? null : ttfeAdd <= 1000)
    ],
    [
      "S4 events never batched",
      s4.openproxy && !s4.openproxy.error ? `${s4.openproxy.multi} batched reads` : "-",
      mark(s4.openproxy && !s4.openproxy.error ? s4.openproxy.multi === 0 && s4.openproxy.errors === 0 : null)
    ],
    [
      "S5 idle RSS ≤ 80 MiB",
      m.error || m.target !== "openproxy" ? "-" : mib(m.idle_kib),
      mark(m.error || m.target !== "openproxy" ? null : m.idle_kib <= 80 * 1024)
    ],
    [
      `S5 ${idleConns} idle conns add ≤ 150 MiB`,
      m.error || m.target !== "openproxy"
        ? "-"
        : `+${mib(m.keepalive.delta_kib)}${kaOk ? "" : ` (${m.keepalive.still_open ?? 0}/${idleConns} open)`}`,
      mark(m.error || m.target !== "openproxy" || !kaOk ? null : m.keepalive.delta_kib <= 150 * 1024)
    ],
    [
      `S5 ${wsConns} WebSockets add ≤ 100 MiB`,
      m.error || m.target !== "openproxy"
        ? "-"
        : `+${mib(m.websocket.delta_kib)}${wsOk ? "" : ` (${m.websocket.still_open ?? 0}/${wsConns} open)`}`,
      mark(m.error || m.target !== "openproxy" || !wsOk ? null : m.websocket.delta_kib <= 100 * 1024)
    ]
  ]
  const tHead = ["issue 6 target", "measured", "result"]

  const sections = [
    [s1Head, s1Rows, only.has("s1")],
    [s2Head, s2Rows, only.has("s2")],
    [s3Head, s3Rows, only.has("s3")],
    [s4Head, s4Rows, only.has("s4")],
    [s5Head, s5Rows, only.has("s5")],
    [tHead, targetsRows, true]
  ]
  const info = res.machine
  const header = `openproxy benchmark — ${info.date.slice(0, 10)} — ${info.nproc} cpus, ${info.cpu}, node ${info.node}, ${info.nginx}; ${res.options.rounds} round(s), medians; S1 ${res.options.s1Secs} s, S2 ${res.options.s2Secs} s per run`
  lines.push("", header, "")
  md.push(`${header}`, "")
  for (const [head, rows, on] of sections) {
    if (!on) continue
    lines.push(table(head, rows), "")
    md.push(`| ${head.join(" | ")} |`, `|${head.map((_, i) => (i === 0 ? "---" : "---:")).join("|")}|`)
    for (const r of rows) md.push(`| ${r.map((c) => (c === null || c === undefined ? "-" : String(c))).join(" | ")} |`)
    md.push("")
  }
  const notes = Object.entries(res.unavailable).map(([t, why]) => `n/a ${t}: ${why.split("\n")[0]}`)
  if (res.clusterWorkers !== undefined)
    notes.push(`openproxy (workers: 2) ran ${res.clusterWorkers} worker process(es)`)
  // Reference, not a target: how close openproxy is to the leanest node:http + undici proxy.
  const floor = s1["lean-floor"]
  if (floor?.rps && op?.rps) {
    const d50 =
      s2.openproxy?.p50 != null && s2["lean-floor"]?.p50 != null ? s2.openproxy.p50 - s2["lean-floor"].p50 : null
    const d99 =
      s2.openproxy?.p99 != null && s2["lean-floor"]?.p99 != null ? s2.openproxy.p99 - s2["lean-floor"].p99 : null
    notes.push(
      `openproxy vs the lean floor: S1 ${fmtX(op.rps / floor.rps)} its req/s; S2 p50 ${d50 === null ? "-" : `${d50 >= 0 ? "+" : "-"}${fmtUs(Math.abs(d50))}`}, p99 ${d99 === null ? "-" : `${d99 >= 0 ? "+" : "-"}${fmtUs(Math.abs(d99))}`} over it`
    )
  }
  // Issue 14's cost (--obs): on vs off of the same build, per round (the two ran back to back) and as medians.
  const offRuns = res.s1["openproxy-obs-off"] ?? []
  const onRuns = res.s1["openproxy-obs-on"] ?? []
  if (offRuns.length > 0 && onRuns.length > 0) {
    const per = []
    for (let i = 0; i < Math.min(offRuns.length, onRuns.length); i++) {
      const a = offRuns[i]
      const b = onRuns[i]
      const a2 = res.s2["openproxy-obs-off"]?.[i]
      const b2 = res.s2["openproxy-obs-on"]?.[i]
      per.push({
        ratio: a.rps && b.rps ? b.rps / a.rps : null,
        cpu: a.cpu_us_per_req && b.cpu_us_per_req ? b.cpu_us_per_req - a.cpu_us_per_req : null,
        p50: a2?.p50_us != null && b2?.p50_us != null ? b2.p50_us - a2.p50_us : null
      })
    }
    const sign = (v) => (v === null ? "-" : `${v >= 0 ? "+" : "-"}${Math.abs(v).toFixed(1)}`)
    const rounds = per
      .map((p, i) => `r${i + 1} ${fmtX(p.ratio)} req/s, CPU ${sign(p.cpu)} µs/req, S2 p50 ${sign(p.p50)} µs`)
      .join("; ")
    const medOf = (k) => median(per.map((p) => p[k]).filter((v) => v !== null))
    notes.push(
      `observability on vs off (same build, issue 14 target ≥ 0.95× req/s, ≤ +10 µs added p50): median ${fmtX(medOf("ratio"))} req/s, CPU ${sign(medOf("cpu"))} µs/req, S2 p50 ${sign(medOf("p50"))} µs; ${rounds}`
    )
  }
  if (notes.length) lines.push(...notes, "")
  lines.push(`S4/S5 streaming upstream: ${res.streamUpstream}; elapsed ${res.elapsed_s} s`)
  lines.push(
    `CPU busy with other work: ${info.busy_at_start}% before the run, ${info.busy_at_end ?? "?"}% after it (keep the machine idle)`
  )
  console.log(lines.join("\n"))

  fs.mkdirSync("bench/results", { recursive: true })
  const stamp = info.date.replace(/[:.]/g, "-")
  const file = path.join("bench/results", `${stamp}${quick ? "-quick" : ""}`)
  res.summary = { s1, s2, s4, bestNode }
  fs.writeFileSync(`${file}.json`, JSON.stringify(res, null, 2))
  fs.writeFileSync(`${file}.md`, md.join("\n") + "\n" + notes.map((n) => `- ${n}`).join("\n") + "\n")
  console.log(`raw results: ${file}.json (markdown tables: ${file}.md)`)
}

try {
  await main()
} catch (e) {
  console.error("[bench] failed:", e.message)
  process.exitCode = 1
} finally {
  await stopAll()
  cleanupSync()
}
