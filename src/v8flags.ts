// V8 tuning for proxy processes, per Node version (the lists are src/v8flags.json; figures in BENCHMARKS.md
// "V8 flags per Node version"). A flag the running Node does not know is never passed: Node refuses to start on an
// unknown command-line flag (`node: bad option`), and `v8.setFlagsFromString` prints an error for one.
//
// Two kinds, because V8 reads some flags only when the isolate is created:
// - `start` flags must be on the command line. `--single-threaded-gc` set at run time is ignored on Node 24 (the
//   GC helper threads keep working) and aborts Node 20 at the next full GC (checked), so it goes in the bin's
//   shebang, and cluster workers and upgraded processes are started with it. `--v8-pool-size` is a Node option
//   (the platform's threads exist before any JavaScript runs). A shebang cannot branch by version, so these are
//   only flags that every supported Node (20.18+, 22, 24) knows; the bin test starts the bin on each of them.
// - `runtime` flags are read by V8 whenever it uses them, so each proxy process sets them itself at start-up
//   (`applyRuntimeV8Flags`), picking the list for the running Node major: the memory reducer's flag was renamed
//   (`--memory-reducer-single-gc` on Node 20, `--memory-reducer-gc-count=N` on 22 and 24). A major without a
//   list gets none (an untested Node may not know the flag).
// What each flag does and why:
// - `--single-threaded-gc`: garbage collection on the main thread only. A proxy process has (or should have) one
//   core to itself; V8's GC helper threads would only preempt its event loop.
// - `--v8-pool-size=1`: one V8 helper thread instead of four; with four, some starts left ~10 MiB resident in a
//   helper thread's malloc arena.
// - `--max-semi-space-size=16` (MiB): the young generation stops growing at 2 × 16 MiB, Node 20's and 22's default.
//   Node 24's V8 lets it grow to 2 × 64 MiB, and with many connections open it does: at 10,000 idle keep-alive
//   connections that was ~63 MiB more resident, for no measured gain in scavenges or GC time per request
//   (BENCHMARKS.md "S5 on Node 24"). A start flag: V8 sizes the heap when it creates the isolate (set at run
//   time it is ignored, checked on 24).
// - memory reducer, one GC: when traffic calms down, V8's memory reducer shrinks the heap with up to 3 (Node 20)
//   or 2 (22, 24) full collections in a row; the later ones cost pauses that held back SSE events, for little
//   memory.
// A flag given on the command line (or in NODE_OPTIONS) wins: the same flag, its `--no-` form or another value
// is never overridden, so an operator can turn any of these off (`node --no-single-threaded-gc dist/main.js`).
import v8 from "node:v8"
import flags from "./v8flags.json" with { type: "json" }

/** Flags a proxy process must be started with (the shebang's; known to every supported Node). */
export const START_V8_FLAGS: ReadonlyArray<string> = flags.start

const RUNTIME: Readonly<Record<string, ReadonlyArray<string>>> = flags.runtime

/** The runtime flags for a Node version (`process.versions.node`); none for a major without a list. */
export const runtimeV8Flags = (nodeVersion: string = process.versions.node): ReadonlyArray<string> =>
  RUNTIME[nodeVersion.split(".")[0] ?? ""] ?? []

/** `--no-foo_bar=1` → `foo-bar`: how V8 and Node match a flag, whatever its form. */
const flagName = (arg: string): string => arg.replace(/^--?/, "").split("=")[0]!.replace(/_/g, "-").replace(/^no-/, "")

const given = (args: ReadonlyArray<string>, flag: string): boolean => {
  const name = flagName(flag)
  return args.some((a) => a.startsWith("-") && flagName(a) === name)
}

/** What the operator gave: the command line's flags and NODE_OPTIONS. */
const operatorArgs = (execArgv: ReadonlyArray<string>, nodeOptions: string | undefined): Array<string> => [
  ...execArgv,
  ...(nodeOptions ?? "").split(/\s+/).filter((a) => a !== "")
]

/**
 * Sets the running Node's runtime flags that the operator did not give; returns the ones set. Called first
 * thing by every proxy process (the bin, cluster workers, upgraded processes); not by the library entry, whose
 * host process owns its V8 settings.
 */
export const applyRuntimeV8Flags = (
  nodeVersion: string = process.versions.node,
  execArgv: ReadonlyArray<string> = process.execArgv,
  nodeOptions: string | undefined = process.env.NODE_OPTIONS
): ReadonlyArray<string> => {
  const args = operatorArgs(execArgv, nodeOptions)
  const todo = runtimeV8Flags(nodeVersion).filter((f) => !given(args, f))
  for (const f of todo) v8.setFlagsFromString(f)
  return todo
}

/**
 * `execArgv` for a new proxy process (cluster worker, upgrade): the current one plus whatever start flags it
 * lacks (a process started as `node dist/main.js` has none). Runtime flags are not passed: the new process sets
 * its own.
 */
export const proxyExecArgv = (execArgv: ReadonlyArray<string> = process.execArgv): Array<string> => [
  ...execArgv,
  ...START_V8_FLAGS.filter((f) => !given(execArgv, f))
]
