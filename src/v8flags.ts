// V8 tuning for proxy processes. `--single-threaded-gc` runs garbage collection on the main thread only: a
// proxy process has (or should have) one core to itself, and V8's helper threads would only preempt its event
// loop (measured with the proxy pinned to one core: p99 at 64 connections 9.4 ms instead of 21 ms, a little
// more throughput). It must be given at process start: the `openproxy` bin's shebang carries it, and cluster
// workers and upgraded processes are started with it. A larger young generation (`--max-semi-space-size`)
// was measured too: no throughput gained, ~75 MiB more RSS with 10,000 connections, so it is not used.

/** Flags a proxy process should start with (see above). */
export const PROCESS_V8_FLAGS: ReadonlyArray<string> = ["--single-threaded-gc"]

/** `execArgv` for a new proxy process: the current one plus whatever of PROCESS_V8_FLAGS it lacks. */
export const proxyExecArgv = (execArgv: ReadonlyArray<string> = process.execArgv): Array<string> => [
  ...execArgv,
  ...PROCESS_V8_FLAGS.filter((f) => !execArgv.some((a) => a.split("=")[0] === f.split("=")[0]))
]
