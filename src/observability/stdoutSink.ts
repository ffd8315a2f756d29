// Where the access log's batches go by default: stdout. When stdout is a regular file (a service manager's log
// file, `>> access.log`), Node's process.stdout is a SyncWriteStream whose every write copies the string into a
// new Buffer (flattening the batch's rope once more) and then writes it synchronously. `fs.writeSync(fd, string)`
// makes the same synchronous write, encoding once, without the copy or the stream's machinery: measured ~300 ns
// less per access line with 64 KiB batches (bench notes: /work/wt/notes/p14.md). Pipes, TTYs and sockets keep
// process.stdout.write: those may be asynchronous, and a direct write could block or fail with EAGAIN.
import { fstatSync, writeSync } from "node:fs"

/** Whether `fd` is a regular file (false when it cannot be asked). */
export const isRegularFile = (fd: number): boolean => {
  try {
    return fstatSync(fd).isFile()
  } catch {
    return false
  }
}

/**
 * A writer of strings to `fd`: direct synchronous writes when it is a regular file (checked on the first write),
 * else `fallback`. A failed direct write (ENOSPC, EIO) goes through `fallback`, which reports it as before.
 */
export const makeStdoutSink = (
  fd = 1,
  fallback: (chunk: string) => void = (chunk) => {
    process.stdout.write(chunk)
  }
): ((chunk: string) => void) => {
  let direct: boolean | undefined
  return (chunk) => {
    if (direct === undefined) direct = isRegularFile(fd)
    if (!direct) return fallback(chunk)
    let written: number
    try {
      written = writeSync(fd, chunk)
    } catch {
      return fallback(chunk)
    }
    // A short write (rare on a file): the rest as bytes, the way the stream would have written them.
    if (written < Buffer.byteLength(chunk)) writeRest(fd, Buffer.from(chunk).subarray(written), fallback)
  }
}

const writeRest = (fd: number, rest: Buffer, fallback: (chunk: string) => void): void => {
  let off = 0
  try {
    while (off < rest.length) off += writeSync(fd, rest, off)
  } catch {
    fallback(rest.subarray(off).toString())
  }
}
