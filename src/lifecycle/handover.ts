// Listening-socket handover for the SIGUSR2 zero-downtime upgrade (SPEC §7). The running process spawns
// `process.execPath` with its own argv (the code now on disk) and an IPC channel, and sends every listening
// server over it (`child.send(msg, server)`); the new process listens on the received handles instead of binding,
// reports ready, and only then does the old process stop accepting and drain. The kernel queue of each
// listening socket is shared by both processes meanwhile, so no connection attempt is refused.

import { type ChildProcess, spawn } from "node:child_process"
import type * as net from "node:net"
import { proxyExecArgv } from "../v8flags.js"
import { type InheritedServer, inherit } from "./Inherited.js"

/** Set in the environment of the process started by an upgrade. */
export const UPGRADE_ENV = "OPENPROXY_UPGRADE"

type Message =
  | { readonly type: "openproxy:hello" }
  | { readonly type: "openproxy:handle"; readonly key: string }
  | { readonly type: "openproxy:handles-done" }
  | { readonly type: "openproxy:ready"; readonly pid: number }
  | { readonly type: "openproxy:failed"; readonly reason: string }

const isMessage = (m: unknown): m is Message =>
  typeof m === "object" && m !== null && typeof (m as { type?: unknown }).type === "string"

/** True in a process started by an upgrade (it has an IPC channel to the old process). */
export const isUpgradeChild = (): boolean => process.env[UPGRADE_ENV] === "1" && typeof process.send === "function"

/**
 * In the new process: asks for the listening handles and waits for them (bounded); resolves with them by listener
 * key, for the `Inherited` layer.
 */
export const receiveHandles = (timeoutMs = 10_000): Promise<ReadonlyMap<string, InheritedServer>> =>
  new Promise((resolve, reject) => {
    const inherited = new Map<string, InheritedServer>()
    const timer = setTimeout(() => {
      process.removeListener("message", onMessage)
      reject(new Error("no listening handles from the previous process"))
    }, timeoutMs)
    const onMessage = (m: unknown, handle: unknown) => {
      if (!isMessage(m)) return
      if (m.type === "openproxy:handle" && handle !== undefined) inherited.set(m.key, inherit(handle as net.Server))
      if (m.type === "openproxy:handles-done") {
        clearTimeout(timer)
        process.removeListener("message", onMessage)
        resolve(inherited)
      }
    }
    process.on("message", onMessage)
    process.send!({ type: "openproxy:hello" } satisfies Message)
  })

/** In the new process: tells the old one it serves now (or could not start), then drops the channel. */
export const reportToParent = (result: { readonly ok: true } | { readonly ok: false; readonly reason: string }) => {
  if (!isUpgradeChild()) return
  const msg: Message = result.ok
    ? { type: "openproxy:ready", pid: process.pid }
    : { type: "openproxy:failed", reason: result.reason }
  process.send!(msg, undefined, {}, () => {
    if (process.connected) process.disconnect()
  })
}

/**
 * In the old process: starts the new one on the same listening sockets and resolves with its pid once it is
 * ready. Rejects (and kills the new process) when it exits, fails or is not ready within `timeoutMs`.
 */
export const spawnUpgrade = (
  servers: ReadonlyArray<{ readonly key: string; readonly server: net.Server }>,
  timeoutMs: number
): Promise<number> =>
  new Promise((resolve, reject) => {
    let child: ChildProcess
    try {
      child = spawn(process.execPath, [...proxyExecArgv(), ...process.argv.slice(1)], {
        env: { ...process.env, [UPGRADE_ENV]: "1" },
        stdio: ["ignore", "inherit", "inherit", "ipc"]
      })
    } catch (e) {
      reject(e as Error)
      return
    }
    let settled = false
    const settle = (err: Error | undefined, pid?: number) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      child.removeListener("exit", onExit)
      child.removeListener("message", onMessage)
      if (err !== undefined) {
        if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
        reject(err)
        return
      }
      // The new process lives on its own from here: nothing of ours keeps it, nor it us.
      if (child.connected) child.disconnect()
      child.unref()
      resolve(pid!)
    }
    const onExit = (code: number | null, signal: NodeJS.Signals | null) =>
      settle(new Error(`new process exited before it was ready (${signal ?? code})`))
    const onMessage = (m: unknown) => {
      if (!isMessage(m)) return
      if (m.type === "openproxy:hello") {
        for (const { key, server } of servers) child.send({ type: "openproxy:handle", key } satisfies Message, server)
        child.send({ type: "openproxy:handles-done" } satisfies Message)
      } else if (m.type === "openproxy:ready") settle(undefined, m.pid)
      else if (m.type === "openproxy:failed") settle(new Error(`new process failed: ${m.reason}`))
    }
    const timer = setTimeout(() => settle(new Error("new process not ready in time")), timeoutMs)
    child.on("exit", onExit)
    child.on("message", onMessage)
    child.on("error", (e) => settle(e))
  })
