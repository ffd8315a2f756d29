// Scenario 6, streaming capacity: N concurrent SSE streams of small OpenAI chunks (20 events/s each by default)
// through each target, level by level. Per target and level: streams established, events received vs sent, the
// delay each event picks up (p50/p99/max over the steady window), the proxy's CPU (share of one core, its process
// and its children, from /proc/PID/stat over the steady window) and CPU per event, its peak RSS, and the CPU of the
// source and the client (flagged above 70 %: then they, not the proxy, may be the bottleneck).
// Runs standalone or from bench/run.mjs (`--only s6`):
//   node bench/s6.mjs [--quick] [--targets direct,openproxy,...] [--levels 500,1000] [--rate 20] [--steady 15]
//                     [--warm 2] [--node PATH] [--no-build] [--no-setup] [--keep-tmp] [--rounds R]
//                     [--builds "NAME=DIR;..."] [--conf-variants "NAME=YAML;..."]
// --rounds R: every level R times, the target order rotated each time (same-run before/after comparisons on a
// noisy machine); the tables show the round with the median CPU/event and list every round's CPU/event.
// --builds: extra targets build:NAME = DIR/dist/main.js (another checkout's build, DIR built) with openproxy's
// config. --conf-variants: extra targets conf:NAME = this build with YAML appended to openproxy's config (`\n` for
// a line break); pinned to core 0, or cores 0-1 when the YAML sets `workers:`.
// --node: the Node binary openproxy runs on (put first on its PATH, so the bin's `#!/usr/bin/env -S node ...` shebang
// and its cluster workers use it); the other processes use `node` on PATH.
import { execSync } from "node:child_process"
import fs from "node:fs"
import os from "node:os"
import path from "node:path"
import { fileURLToPath } from "node:url"
import {
  freePort,
  killAllSync,
  namedList,
  request,
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
import { writeProxyConf } from "./nginx.mjs"

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
const levels = opt("levels", quick ? "500,1000" : "500,1000,1500")
  .split(",")
  .map(Number)
const rate = Number(opt("rate", 20)) // events per second per stream
const interval = Math.round(1000 / rate)
const steadyMs = Number(opt("steady", quick ? 5 : 15)) * 1000
const warmMs = Number(opt("warm", quick ? 1 : 2)) * 1000
const ALL_TARGETS = ["direct", "openproxy", "openproxy-w2", "nginx", "http-proxy"]
// Only when named in --targets: issue 17's observability A/B (the same build without access log, admin listener
// and usage taps, and with all of them; `openproxy` itself runs the shipped defaults: access log on, no admin).
const EXTRA_TARGETS = ["openproxy-obs-off", "openproxy-obs-on"]
const buildVariants = namedList(opt("builds", "")).map((b) => ({ name: `build:${b.name}`, dir: path.resolve(b.value) }))
const confVariants = namedList(opt("conf-variants", "")).map((c) => ({
  name: `conf:${c.name}`,
  yaml: c.value.replaceAll("\\n", "\n")
}))
const rounds = Math.max(1, Number(opt("rounds", 1)) | 0)
const names = [
  ...opt("targets", ALL_TARGETS.join(","))
    .split(",")
    .filter((t) => ALL_TARGETS.includes(t) || EXTRA_TARGETS.includes(t)),
  ...buildVariants.map((v) => v.name),
  ...confVariants.map((v) => v.name)
]
const NODE = opt("node", null)
// openproxy starts as it ships (`./dist/main.js`, its shebang); --node only changes which `node` that finds.
const OPENPROXY_ENV = NODE ? { PATH: `${path.dirname(path.resolve(NODE))}:${process.env.PATH}` } : undefined
const LOAD_CPU = "1"
const PROXY_CPU = "0"
const MOCK_HOST = "mock.bench"
const UPSTREAM_KEY = "sk-upstream"
const P99_LIMIT_US = 100_000
const BUSY_FLAG = 0.7
const SHARED_FLAG = 0.9

const log = (...a) => console.log(`[s6 ${new Date().toISOString().slice(11, 19)}]`, ...a)

let tmp = null
const cleanupSync = () => {
  killAllSync()
  if (tmp && !flag("keep-tmp")) fs.rmSync(tmp, { recursive: true, force: true })
}
process.on("exit", cleanupSync)
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(sig, () => {
    cleanupSync()
    process.exit(130)
  })
}

const sys = (cmd) => {
  try {
    return execSync(cmd, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).trim()
  } catch {
    return null
  }
}
const CLK_TCK = Number(sys("getconf CLK_TCK")) || 100

// ---------------------------------------------------------------- /proc figures
/** The process and its direct children (nginx's worker, cluster workers). */
const tree = (pid) => [pid, ...(sys(`pgrep -P ${pid}`) ?? "").split("\n").filter(Boolean).map(Number)]

/** utime + stime of one process in seconds (null when gone). */
const cpuSecs = (pid) => {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8")
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    return (Number(f[11]) + Number(f[12])) / CLK_TCK
  } catch {
    return null
  }
}
const snapshot = (pids) => ({ at: process.hrtime.bigint(), cpu: new Map(pids.map((p) => [p, cpuSecs(p)])) })
/** Share of one core used by `pids` between two snapshots (pids present in both). */
const cpuShare = (a, b) => {
  let s = 0
  for (const [pid, v] of a.cpu) {
    const w = b.cpu.get(pid)
    if (v !== null && w !== null && w !== undefined) s += w - v
  }
  return s / (Number(b.at - a.at) / 1e9)
}
const rssSumKiB = (pids) => {
  let s = 0
  for (const pid of pids) {
    try {
      const m = fs.readFileSync(`/proc/${pid}/status`, "utf8").match(/VmRSS:\s+(\d+) kB/)
      if (m) s += Number(m[1])
    } catch {}
  }
  return s
}

// ---------------------------------------------------------------- set-up
const probeStream = (port, host, key) => async () => {
  const r = await request({
    host: "127.0.0.1",
    port,
    method: "POST",
    path: "/v1/chat/completions?events=2&interval_ms=5",
    headers: { host, authorization: `Bearer ${key}`, "content-type": "application/json" }
  })
  const events = r.body.toString().split('"id":"s6-').length - 1
  return r.status === 200 && events === 2 ? true : `status ${r.status}, ${events} events`
}

const openproxyConfig = (dir, name, port, sourcePort, workers, extra = []) => {
  const lines = ["# Generated by bench/s6.mjs", `http_port: ${port}`, "http_bind_address: 127.0.0.1", ...extra]
  if (workers) lines.push(`workers: ${workers}`)
  lines.push(
    'auth_keys: ["sk-bench"]',
    "providers:",
    "  - type: openai",
    `    host: "${MOCK_HOST}"`,
    `    endpoint: "127.0.0.1:${sourcePort}"`,
    "    tls: false",
    `    api_key: "${UPSTREAM_KEY}"`,
    ""
  )
  const file = path.join(dir, `${name}.yml`)
  fs.writeFileSync(file, lines.join("\n"))
  return file
}

/** The source's count of events written so far. */
const sourceSent = async (port) => {
  try {
    return JSON.parse((await request({ host: "127.0.0.1", port, path: "/__s6stats" })).body).sent
  } catch {
    return null
  }
}

// ---------------------------------------------------------------- one level against one target
const runLevel = async (name, t, n, sourcePort) => {
  const rampMs = Math.max(500, n) // 1,000 new streams a second
  // Every stream outlives the steady window, with room for establishing taking twice the ramp.
  const events = Math.ceil((rampMs + warmMs + steadyMs + 2000 + rampMs) / interval)
  let proc = null
  if (t.argv) {
    proc = startProc(`${name}-${n}`, t.argv, { cpu: t.cpu, logDir: tmp, env: t.env })
    const ready = await waitUntil(probeStream(t.port, t.host, t.key), { proc, timeoutMs: 15000 })
    if (!ready.ok) {
      await stopProc(proc)
      return { error: ready.reason }
    }
    await sleep(300)
  }
  const pids = proc ? tree(proc.pid) : []
  const stats0 = JSON.parse((await request({ host: "127.0.0.1", port: sourcePort, path: "/__s6stats" })).body)
  const client = startPiped(
    `s6-client-${name}-${n}`,
    [
      "node",
      "bench/s6-client.mjs",
      ...["--port", String(t.port), "--host", t.host, "--key", t.key, "--n", String(n)],
      ...["--events", String(events), "--interval", String(interval), "--ramp-ms", String(rampMs)],
      ...["--warm-ms", String(warmMs), "--steady-ms", String(steadyMs)]
    ],
    { cpu: LOAD_CPU }
  )
  let peakKiB = 0
  const sampler = setInterval(() => {
    if (pids.length) peakKiB = Math.max(peakKiB, rssSumKiB(pids))
  }, 200)
  const out = { n, events_per_stream: events, interval_ms: interval }
  try {
    const start = await waitLine(client, "STEADY_START", rampMs + warmMs + 30000)
    const a = { proxy: snapshot(pids), source: snapshot([t.sourcePid]), client: snapshot([client.pid]) }
    const sentA = start ? await sourceSent(sourcePort) : null
    if (start) {
      const end = await waitLine(client, "STEADY_END", steadyMs + 10000)
      const b = { proxy: snapshot(pids), source: snapshot([t.sourcePid]), client: snapshot([client.pid]) }
      const sentB = end ? await sourceSent(sourcePort) : null
      if (end) {
        out.proxy_cpu = pids.length ? cpuShare(a.proxy, b.proxy) : null
        // Each process's share (cluster: the primary first, then the workers: how evenly the streams spread).
        if (pids.length > 1)
          out.proxy_cpu_by_process = pids.map((p) =>
            cpuShare({ at: a.proxy.at, cpu: new Map([[p, a.proxy.cpu.get(p)]]) }, b.proxy)
          )
        // Events the source wrote between the two CPU snapshots: each one went through the proxy in that time
        // (give or take the few in flight), whether or not a busy client read it within its window.
        out.proxy_cpu_s = pids.length ? cpuShare(a.proxy, b.proxy) * (Number(b.proxy.at - a.proxy.at) / 1e9) : null
        out.sent_in_window = sentA !== null && sentB !== null ? sentB - sentA : null
        out.source_cpu = cpuShare(a.source, b.source)
        out.client_cpu = cpuShare(a.client, b.client)
      }
    }
    const result = await waitLine(client, "RESULT", events * interval + rampMs + 40000)
    if (!result) throw new Error(`client gave no result: ${client.err.slice(0, 300)}`)
    Object.assign(out, result)
  } catch (e) {
    out.error = e.message
  } finally {
    clearInterval(sampler)
    await stopProc(client, 2000)
    if (proc?.exited) out.error = `${name} exited: ${tailLog(proc, 3)}`
    await stopProc(proc)
  }
  const stats1 = JSON.parse((await request({ host: "127.0.0.1", port: sourcePort, path: "/__s6stats" })).body)
  out.sent = stats1.sent - stats0.sent
  out.lost = out.received === undefined ? null : out.sent - out.received
  out.peak_rss_kib = pids.length ? peakKiB : null
  // CPU per event: the proxy's CPU seconds over the events the source wrote meanwhile (a client that falls
  // behind on a busy machine does not inflate it); the client's own window count as a second figure.
  if (out.proxy_cpu_s != null && out.sent_in_window) out.cpu_per_event_us = (out.proxy_cpu_s / out.sent_in_window) * 1e6
  if (out.proxy_cpu != null && out.window?.events && out.window.ms) {
    const perSec = out.window.events / (out.window.ms / 1000)
    out.cpu_per_event_recv_us = (out.proxy_cpu / perSec) * 1e6
  }
  out.sustained =
    !out.error && out.established === n && out.lost === 0 && out.window?.p99_us != null
      ? out.window.p99_us <= P99_LIMIT_US
      : false
  return out
}

// ---------------------------------------------------------------- main
const main = async () => {
  const started = Date.now()
  if (!flag("no-setup") && names.includes("nginx")) {
    const r = await run(["bash", "bench/setup.sh"], { timeoutMs: 300000 })
    if (r.code !== 0) throw new Error(`bench/setup.sh failed:\n${r.stderr}${r.stdout}`)
  }
  if (!flag("no-build") && names.some((t) => t.startsWith("openproxy"))) {
    log("building (npm run build)")
    const r = await run(["npm", "run", "build", "--silent"], { timeoutMs: 180000 })
    if (r.code !== 0) log(`build failed: ${(r.stderr + r.stdout).trim().split("\n")[0]}`)
  }
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "openproxy-s6-"))
  const ports = {}
  for (const k of ["source", "op", "op2", "ngx", "hp"]) ports[k] = await freePort()

  const source = startProc("s6-source", ["node", "bench/s6-source.mjs", "--port", String(ports.source)], {
    cpu: LOAD_CPU,
    logDir: tmp
  })
  const srcReady = await waitUntil(probeStream(ports.source, MOCK_HOST, UPSTREAM_KEY), { proc: source })
  if (!srcReady.ok) throw new Error(`s6 source did not start: ${srcReady.reason}`)

  const common = { host: MOCK_HOST, key: "sk-bench", sourcePid: source.pid }
  const opConf = openproxyConfig(tmp, "s6-openproxy", ports.op, ports.source)
  const op2Conf = openproxyConfig(tmp, "s6-openproxy-w2", ports.op2, ports.source, 2)
  const obsPorts = { off: await freePort(), on: await freePort(), admin: await freePort() }
  const obsOffConf = openproxyConfig(tmp, "s6-openproxy-obs-off", obsPorts.off, ports.source, 0, ["access_log: false"])
  const obsOnConf = openproxyConfig(tmp, "s6-openproxy-obs-on", obsPorts.on, ports.source, 0, [
    "access_log: true",
    `admin: {port: ${obsPorts.admin}, bind_address: 127.0.0.1}`
  ])
  const ngxConf = writeProxyConf({
    dir: tmp,
    port: ports.ngx,
    upstreamPort: ports.source,
    buffering: false,
    name: "s6-nginx"
  })
  const targets = {
    direct: { ...common, port: ports.source, key: UPSTREAM_KEY },
    openproxy: {
      ...common,
      port: ports.op,
      argv: ["./dist/main.js", "start", "-c", opConf],
      cpu: PROXY_CPU,
      env: OPENPROXY_ENV
    },
    "openproxy-obs-off": {
      ...common,
      port: obsPorts.off,
      argv: ["./dist/main.js", "start", "-c", obsOffConf],
      cpu: PROXY_CPU,
      env: OPENPROXY_ENV
    },
    "openproxy-obs-on": {
      ...common,
      port: obsPorts.on,
      argv: ["./dist/main.js", "start", "-c", obsOnConf],
      cpu: PROXY_CPU,
      env: OPENPROXY_ENV
    },
    "openproxy-w2": {
      ...common,
      port: ports.op2,
      argv: ["./dist/main.js", "start", "-c", op2Conf],
      cpu: "0,1",
      env: OPENPROXY_ENV
    },
    nginx: {
      ...common,
      port: ports.ngx,
      argv: ["nginx", "-c", ngxConf, "-p", tmp, "-e", path.join(tmp, "s6-nginx.err")],
      cpu: PROXY_CPU
    },
    // 0: no socket limit in the agent (its default of 256 would queue every stream past the 256th)
    "http-proxy": {
      ...common,
      port: ports.hp,
      argv: ["node", "bench/proxies/http-proxy.mjs", String(ports.hp), String(ports.source), "0"],
      cpu: PROXY_CPU
    }
  }
  for (const b of buildVariants) {
    const port = await freePort()
    const conf = openproxyConfig(tmp, `s6-${b.name.replace(":", "-")}`, port, ports.source)
    targets[b.name] = {
      ...common,
      port,
      argv: [path.join(b.dir, "dist/main.js"), "start", "-c", conf],
      cpu: PROXY_CPU,
      env: OPENPROXY_ENV
    }
    LABEL[b.name] = `openproxy build ${b.name.slice(6)} (${b.dir})`
  }
  for (const c of confVariants) {
    const port = await freePort()
    const conf = openproxyConfig(tmp, `s6-${c.name.replace(":", "-")}`, port, ports.source, 0, c.yaml.split("\n"))
    targets[c.name] = {
      ...common,
      port,
      argv: ["./dist/main.js", "start", "-c", conf],
      cpu: /^\s*workers:/m.test(c.yaml) ? "0,1" : PROXY_CPU,
      env: OPENPROXY_ENV
    }
    LABEL[c.name] = `openproxy + ${c.yaml.replaceAll("\n", "; ")}`
  }

  const results = {
    date: new Date().toISOString(),
    node: process.version,
    openproxy_node: sys(`${NODE ?? "node"} --version`),
    load_at_start: os.loadavg(),
    options: {
      quick,
      levels,
      rate,
      interval_ms: interval,
      steady_ms: steadyMs,
      warm_ms: warmMs,
      targets: names,
      rounds
    },
    levels: {}
  }
  for (const [li, n] of levels.entries()) {
    results.levels[n] = {}
    const all = {}
    for (let round = 0; round < rounds; round++) {
      // Rotate the order per level and round so no target always runs first.
      const order = names.map((_, i) => names[(i + li + round) % names.length])
      for (const name of order) {
        const r = await runLevel(name, targets[name], n, ports.source)
        all[name] = [...(all[name] ?? []), r]
        log(`N=${n}${rounds > 1 ? ` round ${round + 1}` : ""} ${name}: ${summary(r)}`)
      }
    }
    for (const name of names) {
      const rs = all[name]
      // The round with the median CPU/event stands for the target (rounds without a figure sort last).
      const sorted = [...rs].sort((a, b) => (a.cpu_per_event_us ?? Infinity) - (b.cpu_per_event_us ?? Infinity))
      results.levels[n][name] = { ...sorted[Math.floor((sorted.length - 1) / 2)] }
      if (rounds > 1) results.levels[n][name].rounds = rs.map((r) => r.cpu_per_event_us ?? null)
    }
  }
  await stopProc(source)
  results.load_at_end = os.loadavg()
  results.elapsed_s = Math.round((Date.now() - started) / 1000)
  report(results)
}

// ---------------------------------------------------------------- reporting
const ms = (us) => (us == null ? "-" : us >= 10000 ? `${(us / 1000).toFixed(0)} ms` : `${(us / 1000).toFixed(1)} ms`)
const pctCell = (x, flagBusy) =>
  x == null ? "-" : `${Math.round(x * 100)} %${flagBusy && x > BUSY_FLAG ? " (!)" : ""}`
const mib = (kib) => (kib == null ? "-" : `${(kib / 1024).toFixed(0)} MiB`)
const summary = (r) =>
  r.error && r.received === undefined
    ? `error: ${r.error.split("\n")[0]}`
    : `${r.established}/${r.n} streams, ${r.received}/${r.sent} events, p50 ${ms(r.window?.p50_us)} p99 ${ms(r.window?.p99_us)} max ${ms(r.window?.max_us)}, proxy ${pctCell(r.proxy_cpu)}, ${r.cpu_per_event_us == null ? "-" : `${r.cpu_per_event_us.toFixed(1)} µs/event`}${r.cpu_per_event_recv_us == null ? "" : ` (by received: ${r.cpu_per_event_recv_us.toFixed(1)})`}${r.proxy_cpu_by_process ? ` [by process: ${r.proxy_cpu_by_process.map((x) => pctCell(x)).join(", ")}]` : ""}, source ${pctCell(r.source_cpu)}, client ${pctCell(r.client_cpu)}${r.error ? `; ${r.error}` : ""}`

const LABEL = {
  direct: "direct (s6 source)",
  openproxy: "openproxy (1 process)",
  "openproxy-obs-off": "openproxy, no access log/admin/usage",
  "openproxy-obs-on": "openproxy, access log + admin + usage",
  "openproxy-w2": "openproxy (workers: 2)",
  nginx: "nginx (1 worker, proxy_buffering off)",
  "http-proxy": "http-proxy"
}

const s6Tables = (res) => {
  const head = [
    `S6: SSE ${res.options.rate}/s per stream`,
    "N",
    "streams",
    "events recv/sent",
    "lost",
    "delay p50",
    "p99",
    "max",
    "proxy CPU",
    "CPU/event",
    "peak RSS",
    "source CPU",
    "client CPU"
  ]
  const rows = []
  for (const name of res.options.targets) {
    for (const n of res.options.levels) {
      const r = res.levels[n]?.[name]
      if (!r) continue
      if (r.error && r.received === undefined) {
        rows.push([LABEL[name], n, "n/a", r.error.split("\n")[0].slice(0, 60), "", "", "", "", "", "", "", "", ""])
        continue
      }
      rows.push([
        LABEL[name],
        n,
        `${r.established}/${r.n}`,
        `${r.received}/${r.sent}`,
        r.lost,
        ms(r.window?.p50_us),
        ms(r.window?.p99_us),
        ms(r.window?.max_us),
        pctCell(r.proxy_cpu),
        r.cpu_per_event_us == null ? "-" : `${r.cpu_per_event_us.toFixed(1)} µs`,
        mib(r.peak_rss_kib),
        pctCell(r.source_cpu, true),
        pctCell(r.client_cpu, true)
      ])
    }
  }
  const top = Math.max(...res.options.levels)
  const sHead = ["S6: highest level sustained (all streams, no loss, p99 ≤ 100 ms)", "N", `CPU/event at N=${top}`]
  const sRows = res.options.targets.map((name) => {
    const ok = res.options.levels.filter((n) => res.levels[n]?.[name]?.sustained)
    const perEvent = res.levels[top]?.[name]?.cpu_per_event_us
    return [LABEL[name], ok.length ? Math.max(...ok) : "none", perEvent == null ? "-" : `${perEvent.toFixed(1)} µs`]
  })
  const out = [
    [head, rows],
    [sHead, sRows]
  ]
  if (res.options.rounds > 1) {
    const rHead = ["S6: CPU/event per round (same-run comparison)", "N", "rounds", "median"]
    const rRows = []
    for (const name of res.options.targets)
      for (const n of res.options.levels) {
        const r = res.levels[n]?.[name]
        if (!r?.rounds) continue
        const f = (x) => (x == null ? "-" : x.toFixed(1))
        rRows.push([LABEL[name], n, r.rounds.map(f).join(" / "), f(r.cpu_per_event_us)])
      }
    out.push([rHead, rRows])
  }
  return out
}

const report = (res) => {
  const tables = s6Tables(res)
  const lines = [
    "",
    `S6 streaming capacity — ${res.date} — openproxy on node ${res.openproxy_node}; ${res.options.steady_ms / 1000} s steady per level; load ${res.load_at_start.map((x) => x.toFixed(1)).join(" ")} at start`,
    ""
  ]
  const md = [lines[1], ""]
  for (const [head, rows] of tables) {
    lines.push(table(head, rows), "")
    md.push(`| ${head.join(" | ")} |`, `|${head.map((_, i) => (i === 0 ? "---" : "---:")).join("|")}|`)
    for (const r of rows) md.push(`| ${r.map((c) => (c == null ? "-" : String(c))).join(" | ")} |`)
    md.push("")
  }
  // The source and the client share the load core: together near a full core, they queue events themselves.
  const shared = []
  const busy = []
  for (const n of res.options.levels)
    for (const [name, r] of Object.entries(res.levels[n] ?? {})) {
      if (r.source_cpu != null && r.client_cpu != null && r.source_cpu + r.client_cpu > SHARED_FLAG)
        shared.push(`${name} N=${n} (${Math.round((r.source_cpu + r.client_cpu) * 100)} %)`)
      if (r.source_cpu > BUSY_FLAG || r.client_cpu > BUSY_FLAG) busy.push(`${name} N=${n}`)
    }
  lines.push(
    busy.length
      ? `(!) source or client above ${BUSY_FLAG * 100} % of a core (that level may measure them, not the proxy): ${busy.join(", ")}`
      : `source and client each stayed under ${BUSY_FLAG * 100} % of a core.`,
    shared.length
      ? `source + client above ${SHARED_FLAG * 100} % of their shared core: ${shared.join(", ")}`
      : `source + client stayed under ${SHARED_FLAG * 100} % of their shared core.`,
    `Elapsed ${res.elapsed_s} s.`
  )
  md.push(...lines.slice(-3))
  console.log(lines.join("\n"))
  fs.mkdirSync("bench/results", { recursive: true })
  const file = path.join("bench/results", `${res.date.replace(/[:.]/g, "-")}-s6${quick ? "-quick" : ""}`)
  fs.writeFileSync(`${file}.json`, JSON.stringify(res, null, 2))
  fs.writeFileSync(`${file}.md`, md.join("\n"))
  console.log(`raw results: ${file}.json (markdown: ${file}.md)`)
  console.log(`S6RESULT ${file}.json`)
}

try {
  await main()
} catch (e) {
  console.error("[s6] failed:", e.message)
  process.exitCode = 1
} finally {
  await stopAll()
  cleanupSync()
}
