// Signals that arrive before the proxy is ready (SPEC §7). Node applies a signal's default action (terminate)
// for as long as no JavaScript listens to it, and the proxy's own handlers are installed only once its services
// are up (the reloader, the upgrade handler, the cluster primary), 0.2-1 s after exec. `guardSignals`, run by
// the executable before the CLI bundle is even parsed (src/bin.ts), installs a fallback listener per signal
// that remembers a signal nobody else took; `replayPendingSignals`, run once the proxy serves, applies what was
// remembered (one of each, in a fixed order). SIGHUP and SIGUSR2 stay guarded for good, so one received while
// draining is ignored, not fatal; SIGTERM/SIGINT only until the runtime's own handlers are in place
// (`releaseTerminationGuard`), so that a second SIGTERM during a drain still stops the process at once.

const KEPT: ReadonlyArray<NodeJS.Signals> = ["SIGHUP", "SIGUSR2"]
const TERMINATION: ReadonlyArray<NodeJS.Signals> = ["SIGTERM", "SIGINT"]
const STATE = Symbol.for("openproxy.signals")

// The executable and the CLI are two bundles, each with its own copy of this module: they share one state.
const shared = globalThis as { [STATE]?: { pending: Set<NodeJS.Signals>; fallbacks: Map<NodeJS.Signals, () => void> } }
shared[STATE] ??= { pending: new Set(), fallbacks: new Map() }
const { pending, fallbacks } = shared[STATE]

/** Installs the fallback listeners (once; a library embedding openproxy never calls it). */
export const guardSignals = (): void => {
  if (fallbacks.size > 0) return
  for (const signal of [...KEPT, ...TERMINATION]) {
    // Only this listener: nobody takes the signal yet, so remember it. Otherwise the real handler has it.
    const fallback = () => {
      if (process.listenerCount(signal) === 1) pending.add(signal)
    }
    fallbacks.set(signal, fallback)
    process.on(signal, fallback)
  }
}

/**
 * Hands SIGTERM/SIGINT over to the runtime's handlers (installed just before): a termination signal received
 * during module loading is delivered to them now.
 */
export const releaseTerminationGuard = (): void => {
  for (const signal of TERMINATION) {
    const fallback = fallbacks.get(signal)
    if (fallback === undefined) continue
    process.removeListener(signal, fallback)
    fallbacks.delete(signal)
    if (pending.delete(signal)) process.emit(signal, signal)
  }
}

/** The signals received before the proxy was ready, cleared: the caller applies them. */
export const takePendingSignals = (): ReadonlyArray<NodeJS.Signals> => {
  const out = KEPT.filter((s) => pending.has(s))
  for (const s of out) pending.delete(s)
  return out
}

/** Applies the signals received before the proxy was ready to the handlers installed since. */
export const replayPendingSignals = (onReplay?: (signal: NodeJS.Signals) => void): void => {
  for (const signal of takePendingSignals()) {
    onReplay?.(signal)
    process.emit(signal, signal)
  }
}
