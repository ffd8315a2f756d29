// How bench/run.mjs runs scenario 6: bench/s6.mjs as a child process (it has its own source, targets and report),
// its output shown as it comes, bounded in time and stopped with the harness.
import { sleep, startPiped, stopProc } from "./lib.mjs"

/**
 * Runs `node bench/s6.mjs` with the harness's options; resolves the path of its results JSON, or null.
 * `targets` is passed on as is (s6.mjs ignores the targets it does not have).
 */
export const runS6 = async ({ quick, targets, levels, node, keepTmp, log }) => {
  const args = ["--no-build", "--no-setup"]
  if (quick) args.push("--quick")
  if (targets) args.push("--targets", targets)
  if (levels) args.push("--levels", levels)
  if (node) args.push("--node", node)
  if (keepTmp) args.push("--keep-tmp")
  log(`S6: streaming capacity (node bench/s6.mjs ${args.join(" ")})`)
  const proc = startPiped("s6", ["node", "bench/s6.mjs", ...args])
  const deadline = Date.now() + 45 * 60 * 1000
  let shown = 0
  const show = () => {
    process.stdout.write(proc.out.slice(shown))
    shown = proc.out.length
  }
  while (!proc.exited && Date.now() < deadline) {
    await sleep(500)
    show()
  }
  if (!proc.exited) log("S6: time limit reached, stopping it")
  await stopProc(proc)
  show()
  if (proc.code !== 0) log(`S6 failed (${proc.code}): ${proc.err.trim().split("\n").slice(-3).join(" | ")}`)
  return proc.out.match(/^S6RESULT (.+)$/m)?.[1] ?? null
}
