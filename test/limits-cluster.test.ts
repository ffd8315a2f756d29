// The limits store shared by `workers: N` (src/limits/cluster.ts) in a real node:cluster program: the engine in the
// primary, two worker processes calling it over the IPC channel. The program (test/support/limits-cluster-child.ts)
// is bundled with esbuild and run with node as a child process.
import { execFile } from "node:child_process"
import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { build } from "esbuild"
import { afterAll, beforeAll, describe, expect, it } from "vitest"

let dir: string
let program: string

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "openproxy-limits-cluster-"))
  program = path.join(dir, "child.mjs")
  await build({
    entryPoints: [path.join(__dirname, "support", "limits-cluster-child.ts")],
    bundle: true,
    platform: "node",
    format: "esm",
    outfile: program,
    logLevel: "warning"
  })
})

afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

const run = (scenario: string): Promise<Record<string, unknown>> =>
  new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [program],
      { env: { ...process.env, LIMITS_SCENARIO: scenario }, timeout: 30_000, killSignal: "SIGKILL" },
      (error, stdout, stderr) => {
        if (error) return reject(new Error(`${error.message}\n${stderr}`))
        try {
          resolve(JSON.parse(stdout.trim().split("\n").pop() ?? ""))
        } catch {
          reject(new Error(`no result from the cluster program: ${stdout}\n${stderr}`))
        }
      }
    )
  })

describe("limits shared by the workers of one host (node:cluster)", () => {
  it("300 admissions from two workers against 100/min: exactly 100, settlements counted", async () => {
    const out = await run("requests")
    const admitted = out.admitted as Array<number>
    expect(admitted[0] + admitted[1]).toBe(100)
    expect(String(out.tags)).not.toContain("StoreError")
    expect(out.exitCodes).toEqual([0, 0])
    // Settlements went through the channel: 100 requests settled to 7 tokens each.
    expect(out.window).toMatchObject({ requests: 100, tokens: 700 })
  })

  it("a crashed worker's concurrency slots are freed; 100 aborts leak no slot", async () => {
    const out = await run("concurrency")
    expect(out).toMatchObject({
      fourth: "Refused",
      openBeforeCrash: 3,
      holderExit: 1,
      openAfterCrash: 0,
      concurrentAfterCrash: 0,
      refusedFourth: 100,
      concurrentSeenByWorker: 0,
      otherExit: 0,
      openAtEnd: 0
    })
  })
})
