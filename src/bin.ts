// The `openproxy` executable. Compiling the CLI bundle (dist/cli.js, over 1 MB) takes 0.1-0.6 s before any of
// it runs, and until a JavaScript listener exists a SIGHUP or SIGUSR2 kills the process: so this small file
// guards the signals first (src/lifecycle/signals.ts), then loads the CLI.
import { guardSignals } from "./lifecycle/signals.js"

guardSignals()
// @ts-expect-error: the CLI bundle, built next to this file (scripts/build.mjs)
await import("./cli.js")
