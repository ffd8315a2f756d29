// `reuse_port` (an opt-in, like nginx's `listen ... reuseport`): with `workers` > 1, each worker opens its own
// listening socket on the port with SO_REUSEPORT and the kernel spreads new connections over them, instead of
// node:cluster's round-robin, where the primary accepts every connection and passes it to a worker over IPC.
// Node has the option from 22.12 (22.x) and 23.1, and it works on Linux (other platforms refuse the listen);
// anywhere else the workers keep the round-robin hand-off (and the listener logs why).
//
// What it changes (measured, docs/lifecycle.md): no primary hop per new connection (a connection-per-request load
// costs less CPU per request and the primary is no longer a serial step), an even split of a burst of new
// connections (round-robin hands them to whichever worker is free); the same cost per request on kept-alive
// connections. What it costs: a worker that stops listening (drain, SIGUSR2 replacement) closes its own socket,
// and connections the kernel had queued on that socket and not yet accepted are reset (Linux ≥ 5.14 moves them to
// another worker with `sysctl net.ipv4.tcp_migrate_req=1`); with round-robin the primary's socket stays open.
import cluster from "node:cluster"

/** Whether this Node has `reusePort` for `net.Server.listen` (22.12+ on 22.x, 23.1+), on Linux. */
export const reusePortSupported = (
  version: string = process.versions.node,
  platform: NodeJS.Platform = process.platform
): boolean => {
  if (platform !== "linux") return false
  const [major, minor] = version.split(".").map(Number)
  return major > 23 || (major === 23 && minor >= 1) || (major === 22 && minor >= 12)
}

/**
 * How a listener of this process binds: "reuseport" (its own SO_REUSEPORT socket: a cluster worker, `reuse_port`
 * on, a Node that has it), "round-robin" (a cluster worker otherwise), "own" (a single process).
 */
export const bindMode = (reusePort: boolean): "reuseport" | "round-robin" | "own" =>
  !cluster.isWorker ? "own" : reusePort && reusePortSupported() ? "reuseport" : "round-robin"
