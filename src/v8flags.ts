// V8 tuning for proxy processes (the list is src/v8flags.json, which the build also writes into the bin's shebang).
// `--single-threaded-gc` runs garbage collection on the main thread only: a proxy process has (or should have)
// one core to itself, and V8's helper threads would only preempt its event loop (measured with the proxy pinned to
// one core: p99 at 64 connections 9.4 ms instead of 21 ms, a little more throughput).
// `--memory-reducer-single-gc`: when the allocation rate drops (traffic calms down to a few token streams), V8's
// memory reducer shrinks the heap with full collections; by default it runs up to three in a row, and the later
// ones cost pauses of 7–8 ms that held back SSE events (benchmark scenario 4: batched reads). One collection
// gives most of the shrinking (committed heap 21.8 → 14.8 MB, the next two only → 13.0 MB) with a ~2 ms pause.
// `--v8-pool-size=1`: one V8 helper thread instead of four (with the GC single-threaded, what is left for them is
// background compilation). With four, some starts left ~10 MiB resident in one helper thread's malloc arena
// (2 of 6 starts: idle RSS 88 MiB instead of 71–79; `/proc/PID/smaps`); with one, 0 of 8 starts, and no change
// in throughput or latency in an A/B run.
// The flags must be given at process start: the `openproxy` bin's shebang carries them, and cluster workers and
// upgraded processes are started with them. A larger young generation (`--max-semi-space-size`) was measured
// too: no throughput gained, ~75 MiB more RSS with 10,000 connections, so it is not used.
import flags from "./v8flags.json" with { type: "json" }

/** Flags a proxy process should start with (see above). */
export const PROCESS_V8_FLAGS: ReadonlyArray<string> = flags

/** `execArgv` for a new proxy process: the current one plus whatever of PROCESS_V8_FLAGS it lacks. */
export const proxyExecArgv = (execArgv: ReadonlyArray<string> = process.execArgv): Array<string> => [
  ...execArgv,
  ...PROCESS_V8_FLAGS.filter((f) => !execArgv.some((a) => a.split("=")[0] === f.split("=")[0]))
]
