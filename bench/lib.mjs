// Shared helpers for the benchmark harness: ports, process groups, waiting, running tools and parsing their output.
import { spawn } from "node:child_process"
import fs from "node:fs"
import http from "node:http"
import net from "node:net"
import path from "node:path"

const live = new Set()

// Raise the open-file limit as far as allowed (containers often cap the hard limit below 65536).
const ULIMIT = 'ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true'

/** Quote one argument for `bash -c`. */
export const sh = (arg) => "'" + String(arg).replace(/'/g, "'\\''") + "'"

/** "NAME=VALUE;NAME2=VALUE2" → [{name, value}] (a value may hold `=`): the --builds / --conf-variants lists. */
export const namedList = (raw) =>
  (raw || "")
    .split(";")
    .filter((v) => v.includes("="))
    .map((v) => ({ name: v.slice(0, v.indexOf("=")).trim(), value: v.slice(v.indexOf("=") + 1) }))

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** A free TCP port on 127.0.0.1 (the kernel's choice, released at once). */
export const freePort = () =>
  new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.unref()
    srv.on("error", reject)
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address()
      srv.close(() => resolve(port))
    })
  })

/**
 * Starts a long-running process in its own process group, pinned with taskset and with a raised fd limit.
 * The command is exec'd so the returned pid is the program itself (useful for /proc/PID/status).
 */
export const startProc = (name, argv, { cpu, logDir, env, cwd } = {}) => {
  const pin = cpu === undefined ? "" : `taskset -c ${cpu} `
  const script = `${ULIMIT}; exec ${pin}${argv.map(sh).join(" ")}`
  const log = logDir ? path.join(logDir, `${name}.log`) : "/dev/null"
  const fd = fs.openSync(log, "a")
  const child = spawn("bash", ["-c", script], {
    detached: true,
    stdio: ["ignore", fd, fd],
    env: { ...process.env, ...env },
    cwd
  })
  fs.closeSync(fd)
  const proc = { name, pid: child.pid, child, log, exited: false, code: null }
  child.on("exit", (code, signal) => {
    proc.exited = true
    proc.code = code ?? signal
    live.delete(proc)
  })
  live.add(proc)
  return proc
}

const groupAlive = (pid) => {
  try {
    process.kill(-pid, 0)
    return true
  } catch {
    return false
  }
}

/** Stops a process group: SIGTERM, then SIGKILL after graceMs. */
export const stopProc = async (proc, graceMs = 3000) => {
  if (!proc) return
  try {
    process.kill(-proc.pid, "SIGTERM")
  } catch {}
  const deadline = Date.now() + graceMs
  while (Date.now() < deadline && groupAlive(proc.pid)) await sleep(50)
  if (groupAlive(proc.pid)) {
    try {
      process.kill(-proc.pid, "SIGKILL")
    } catch {}
    const hard = Date.now() + 2000
    while (Date.now() < hard && groupAlive(proc.pid)) await sleep(50)
  }
  live.delete(proc)
}

/** Kills every process group still running (synchronous: usable from exit handlers). */
export const killAllSync = () => {
  for (const proc of live) {
    try {
      process.kill(-proc.pid, "SIGKILL")
    } catch {}
  }
  live.clear()
}

export const stopAll = async () => {
  await Promise.all([...live].map((p) => stopProc(p, 1500)))
}

/** Last lines of a process's log, for error messages. */
export const tailLog = (proc, lines = 8) => {
  try {
    return fs.readFileSync(proc.log, "utf8").trim().split("\n").slice(-lines).join("\n")
  } catch {
    return ""
  }
}

/** One HTTP request; resolves with { status, body } or rejects. */
export const request = (opts, body) =>
  new Promise((resolve, reject) => {
    const req = http.request({ agent: false, timeout: 2000, ...opts }, (res) => {
      const chunks = []
      res.on("data", (c) => chunks.push(c))
      res.on("end", () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }))
      res.on("error", reject)
    })
    req.on("timeout", () => req.destroy(new Error("timeout")))
    req.on("error", reject)
    req.end(body)
  })

/**
 * Polls until `check()` resolves truthy, the process exits or the time runs out.
 * Returns { ok, reason }.
 */
export const waitUntil = async (check, { proc, timeoutMs = 15000 } = {}) => {
  const deadline = Date.now() + timeoutMs
  let last = "timed out"
  while (Date.now() < deadline) {
    if (proc?.exited) return { ok: false, reason: `exited (${proc.code}): ${tailLog(proc, 4)}` }
    try {
      const r = await check()
      if (r === true) return { ok: true }
      last = typeof r === "string" ? r : "not ready"
    } catch (e) {
      last = e.code ?? e.message
    }
    await sleep(100)
  }
  return { ok: false, reason: last }
}

/**
 * Runs a command to completion in its own process group, bounded in time.
 * Resolves { code, stdout, stderr, timedOut }.
 */
export const run = (argv, { cpu, timeoutMs = 60000, cwd, env, input } = {}) =>
  new Promise((resolve) => {
    const pin = cpu === undefined ? "" : `taskset -c ${cpu} `
    const script = `${ULIMIT}; exec ${pin}${argv.map(sh).join(" ")}`
    const child = spawn("bash", ["-c", script], {
      detached: true,
      stdio: [input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
      cwd,
      env: { ...process.env, ...env }
    })
    const proc = { name: argv[0], pid: child.pid, child, log: "/dev/null" }
    live.add(proc)
    let stdout = ""
    let stderr = ""
    let timedOut = false
    child.stdout.on("data", (d) => {
      stdout += d
    })
    child.stderr.on("data", (d) => {
      stderr += d
    })
    if (input !== undefined) child.stdin.end(input)
    const timer = setTimeout(() => {
      timedOut = true
      try {
        process.kill(-child.pid, "SIGKILL")
      } catch {}
    }, timeoutMs)
    child.on("close", (code) => {
      clearTimeout(timer)
      live.delete(proc)
      resolve({ code, stdout, stderr, timedOut })
    })
  })

/** Parses the `BENCH {...}` line that bench/post.lua prints in done(). */
export const parseWrk = (stdout) => {
  const line = stdout.split("\n").find((l) => l.startsWith("BENCH "))
  if (!line) return null
  return JSON.parse(line.slice(6))
}

/** Parses h2load's summary: req/s, success counts, mean time for request. */
export const parseH2load = (stdout) => {
  const num = (re) => {
    const m = stdout.match(re)
    return m ? Number(m[1]) : null
  }
  const unit = (v, u) => (v === null ? null : u === "us" ? v : u === "ms" ? v * 1000 : v * 1e6)
  const reqTime = stdout.match(/time for request:\s+([\d.]+)(us|ms|s)\s+([\d.]+)(us|ms|s)\s+([\d.]+)(us|ms|s)/)
  return {
    rps: num(/finished in [\d.]+\w+, ([\d.]+) req\/s/),
    total: num(/requests: (\d+) total/),
    succeeded: num(/(\d+) succeeded/),
    failed: num(/(\d+) failed/),
    errored: num(/(\d+) errored/),
    status2xx: num(/status codes: (\d+) 2xx/),
    protocol: (stdout.match(/Application protocol: (\S+)/) ?? [])[1] ?? null,
    req_min_us: reqTime ? unit(Number(reqTime[1]), reqTime[2]) : null,
    req_max_us: reqTime ? unit(Number(reqTime[3]), reqTime[4]) : null,
    req_mean_us: reqTime ? unit(Number(reqTime[5]), reqTime[6]) : null
  }
}

export const median = (xs) => {
  const v = xs.filter((x) => typeof x === "number" && Number.isFinite(x)).sort((a, b) => a - b)
  if (v.length === 0) return null
  const m = Math.floor(v.length / 2)
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2
}

/** Nearest-rank percentile. */
export const percentile = (xs, p) => {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b)
  if (v.length === 0) return null
  return v[Math.min(v.length - 1, Math.max(0, Math.ceil((p / 100) * v.length) - 1))]
}

/** VmRSS of a process in KiB (null when it is gone). */
export const rssKiB = (pid) => {
  try {
    const m = fs.readFileSync(`/proc/${pid}/status`, "utf8").match(/VmRSS:\s+(\d+) kB/)
    return m ? Number(m[1]) : null
  } catch {
    return null
  }
}

/** Pads a cell for the plain-text tables. */
export const table = (header, rows) => {
  const all = [header, ...rows].map((r) => r.map((c) => (c === null || c === undefined ? "-" : String(c))))
  const widths = header.map((_, i) => Math.max(...all.map((r) => r[i].length)))
  const fmt = (r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  ")
  return [fmt(all[0]), widths.map((w) => "-".repeat(w)).join("  "), ...all.slice(1).map(fmt)].join("\n")
}

/** Starts a helper with piped stdin/stdout (same pinning and fd limit as startProc); tracked for clean-up. */
export const startPiped = (name, argv, { cpu, env, cwd } = {}) => {
  const pin = cpu === undefined ? "" : `taskset -c ${cpu} `
  const script = `${ULIMIT}; exec ${pin}${argv.map(sh).join(" ")}`
  const child = spawn("bash", ["-c", script], {
    detached: true,
    stdio: ["pipe", "pipe", "pipe"],
    env: { ...process.env, ...env },
    cwd
  })
  const proc = { name, pid: child.pid, child, log: "/dev/null", exited: false, out: "", err: "" }
  child.stdout.setEncoding("utf8")
  child.stdout.on("data", (d) => {
    proc.out += d
  })
  child.stderr.on("data", (d) => {
    proc.err += d
  })
  child.on("exit", (code) => {
    proc.exited = true
    proc.code = code
    live.delete(proc)
  })
  live.add(proc)
  return proc
}

/** Waits for a stdout line starting with `prefix` (after `from` chars); resolves its JSON payload or null. */
export const waitLine = async (proc, prefix, timeoutMs, from = 0) => {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    const line = proc.out
      .slice(from)
      .split("\n")
      .find((l) => l.startsWith(prefix + " "))
    if (line) return JSON.parse(line.slice(prefix.length + 1))
    if (proc.exited) return null
    await sleep(50)
  }
  return null
}

const cpuTimes = () => {
  const f = fs.readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).slice(1).map(Number)
  const idle = f[3] + (f[4] ?? 0)
  return { idle, total: f.reduce((a, b) => a + b, 0) }
}

/** Share of all CPUs busy over `ms` (0..1): other work on the machine makes the figures noisy. */
export const cpuBusy = async (ms = 1000) => {
  const a = cpuTimes()
  await sleep(ms)
  const b = cpuTimes()
  const total = b.total - a.total
  return total > 0 ? 1 - (b.idle - a.idle) / total : 0
}
