// e2e: per-file setup. `useStack()` starts one stack (mock processes + proxy process) and the four client
// legs for the calling test file, stops them all in afterAll (also after failures), and prints the tail
// of the proxy's log when a test of the file failed.
import { afterAll, afterEach, beforeAll } from "vitest"
import { LEGS, type Leg, type LegName, makeLeg } from "./clients.js"
import { type Stack, startStack } from "./stack.js"

export interface UseStack {
  readonly stack: () => Stack
  readonly leg: (name: LegName) => Leg
}

export const useStack = (): UseStack => {
  let stack: Stack | undefined
  let failed = false
  const legs = new Map<LegName, Leg>()

  beforeAll(async () => {
    stack = await startStack()
    for (const name of LEGS) {
      legs.set(name, makeLeg(name, { http: stack.proxy.httpPort, https: stack.proxy.httpsPort }, stack.certs.caCert))
    }
  })

  afterEach((ctx) => {
    if (ctx.task.result?.state === "fail") failed = true
  })

  afterAll(async () => {
    await Promise.allSettled([...legs.values()].map((l) => l.close()))
    if (failed && stack !== undefined) {
      const tail = stack.proxyOutput().trimEnd().split("\n").slice(-40).join("\n")
      console.error(`--- last lines of the proxy's log (${stack.dir}) ---\n${tail}`)
    }
    await stack?.stop()
  })

  return {
    stack: () => {
      if (stack === undefined) throw new Error("the e2e stack did not start")
      return stack
    },
    leg: (name) => {
      const l = legs.get(name)
      if (l === undefined) throw new Error(`no ${name} leg: the e2e stack did not start`)
      return l
    }
  }
}
