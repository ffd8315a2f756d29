// V8 tuning for proxy processes. A larger young generation means fewer scavenges under load: per-request
// garbage is short-lived, so it dies young instead of being promoted. It can be set at run time, so it is
// applied here, as the CLI's first import. GC on the main thread only (`--single-threaded-gc`) must be given
// at process start: the `openproxy` bin's shebang, cluster workers and upgraded processes get it; it keeps
// V8's helper threads from preempting the event loop of a process that has one core to itself (measured:
// lower p90/p99 and more requests per second with the proxy pinned to one core).
import { setFlagsFromString } from "node:v8"

/** Flags a proxy process should start with (see above). */
export const PROCESS_V8_FLAGS: ReadonlyArray<string> = ["--single-threaded-gc", "--max-semi-space-size=64"]

/** `execArgv` for a new proxy process: the current one plus whatever of PROCESS_V8_FLAGS it lacks. */
export const proxyExecArgv = (execArgv: ReadonlyArray<string> = process.execArgv): Array<string> => [
  ...execArgv,
  ...PROCESS_V8_FLAGS.filter((f) => !execArgv.some((a) => a.split("=")[0] === f.split("=")[0]))
]

setFlagsFromString("--max-semi-space-size=64")
