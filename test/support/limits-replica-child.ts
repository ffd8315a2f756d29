// One "replica" for test/limits-redis.test.ts (bundled with esbuild, run with node): opens the Redis store at
// REDIS_URL, waits for the signal on stdin, makes LIMITS_COUNT admissions spread over ~1 s against
// `requests_per_minute: 100`, and prints how many were admitted as one JSON line.
import * as Redacted from "effect/Redacted"
import { openLimiter } from "../../src/limits/open.js"

const main = async () => {
  const limiter = await openLimiter(
    {
      store: "redis",
      redisUrl: Redacted.make(process.env.REDIS_URL ?? ""),
      redisTimeoutMs: 5000,
      onStoreError: "closed"
    },
    { redisReadyMs: 10_000 }
  )
  process.stdout.write("ready\n")
  await new Promise((resolve) => process.stdin.once("data", resolve))
  const count = Number(process.env.LIMITS_COUNT ?? "150")
  const tags: Record<string, number> = {}
  const calls: Array<Promise<void>> = []
  for (let i = 0; i < count; i++) {
    calls.push(
      limiter.admit(process.env.LIMITS_KEY ?? "team", { requestsPerMinute: 100 }, 0).then((a) => {
        tags[a._tag] = (tags[a._tag] ?? 0) + 1
      })
    )
    if (i % 10 === 9) await new Promise((r) => setTimeout(r, 50))
  }
  await Promise.all(calls)
  process.stdout.write(`${JSON.stringify(tags)}\n`)
  await limiter.close()
}

main().catch((e) => {
  process.stderr.write(`${e instanceof Error ? e.stack : e}\n`)
  process.exit(2)
})
