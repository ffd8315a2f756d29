// The access log's default sink: direct synchronous writes when stdout is a regular file, the fallback otherwise.
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import { isRegularFile, makeStdoutSink } from "../src/observability/stdoutSink.js"

describe("stdout sink", () => {
  const fds: Array<number> = []
  let dir: string | undefined
  afterEach(() => {
    for (const fd of fds.splice(0)) closeSync(fd)
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true })
    dir = undefined
  })

  it("writes every byte straight to a regular file, in order, without the fallback", () => {
    dir = mkdtempSync(join(tmpdir(), "openproxy-sink-"))
    const file = join(dir, "access.log")
    const fd = openSync(file, "a")
    fds.push(fd)
    const fallback: Array<string> = []
    const sink = makeStdoutSink(fd, (c) => fallback.push(typeof c === "string" ? c : Buffer.from(c).toString()))
    const batch = `${'a line with é and 🙂 model="x"\n'.repeat(3000)}`
    sink(batch)
    sink("second\n")
    sink(Buffer.from("bytes ü\nignored").subarray(0, 9))
    expect(isRegularFile(fd)).toBe(true)
    expect(fallback).toEqual([])
    expect(readFileSync(file, "utf8")).toBe(`${batch}second\nbytes ü\n`)
  })

  it("hands anything but a regular file (here /dev/null, a character device) to the fallback", () => {
    const fd = openSync("/dev/null", "w")
    fds.push(fd)
    const fallback: Array<string> = []
    const sink = makeStdoutSink(fd, (c) => fallback.push(typeof c === "string" ? c : Buffer.from(c).toString()))
    sink("one\n")
    sink("two\n")
    expect(isRegularFile(fd)).toBe(false)
    expect(fallback).toEqual(["one\n", "two\n"])
  })

  it("hands a chunk to the fallback when the direct write fails", () => {
    dir = mkdtempSync(join(tmpdir(), "openproxy-sink-"))
    const fd = openSync(join(dir, "ro.log"), "w")
    const fallback: Array<string> = []
    const sink = makeStdoutSink(fd, (c) => fallback.push(typeof c === "string" ? c : Buffer.from(c).toString()))
    sink("first\n")
    closeSync(fd) // the fd is no longer writable: EBADF on the next write
    sink("lost?\n")
    expect(fallback).toEqual(["lost?\n"])
    expect(readFileSync(join(dir, "ro.log"), "utf8")).toBe("first\n")
  })
})
