// V8 tuning applied as the CLI's first import, before the proxy allocates anything. A larger young generation
// means fewer scavenges under load: per-request garbage is short-lived, so it dies young instead of being
// promoted (measured: ~5-10 % more requests per second and lower p99 on the 1 KiB POST benchmark).
import { setFlagsFromString } from "node:v8"

setFlagsFromString("--max-semi-space-size=64")
