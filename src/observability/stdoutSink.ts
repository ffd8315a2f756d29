// Where the access log's batches go by default: stdout. When stdout is a regular file (a service manager's log
// file, `>> access.log`), Node's process.stdout is a SyncWriteStream whose every write copies the string into a
// new Buffer (flattening the batch's rope once more) and then writes it synchronously. `fs.writeSync(fd, …)` makes
// the same synchronous write without the copy or the stream's machinery (measured: ~300 ns less per access line
// with 64 KiB string batches; notes: /work/wt/notes/p14.md). Pipes, TTYs and sockets keep process.stdout.write:
// those may be asynchronous, and a direct write could block or fail with EAGAIN.
import { fstatSync, writeSync } from "node:fs"

/** Whether `fd` is a regular file (false when it cannot be asked). */
export const isRegularFile = (fd: number): boolean => {
  try {
    return fstatSync(fd).isFile()
  } catch {
    return false
  }
}

/** A string or a byte range that the writer is done with once it returns (a batch buffer is reused). */
export type Chunk = string | Uint8Array

const toStdout = (chunk: Chunk): void => {
  // An asynchronous stream keeps what it is given: bytes are copied, since the caller reuses its buffer.
  process.stdout.write(typeof chunk === "string" ? chunk : Buffer.from(chunk))
}

/**
 * A writer to `fd`: direct synchronous writes when it is a regular file (checked on the first write), else
 * `fallback`. A failed direct write (ENOSPC, EIO) hands what is left to `fallback`, which reports it as before.
 */
export const makeStdoutSink = (fd = 1, fallback: (chunk: Chunk) => void = toStdout): ((chunk: Chunk) => void) => {
  let direct: boolean | undefined
  return (chunk) => {
    if (direct === undefined) direct = isRegularFile(fd)
    if (!direct) return fallback(chunk)
    let written: number
    try {
      written = typeof chunk === "string" ? writeSync(fd, chunk) : writeSync(fd, chunk)
    } catch {
      return fallback(chunk)
    }
    // A short write (rare on a file): the rest, as bytes.
    if (typeof chunk !== "string") {
      if (written < chunk.length) writeRest(fd, chunk, written, fallback)
    } else if (written < Buffer.byteLength(chunk)) writeRest(fd, Buffer.from(chunk), written, fallback)
  }
}

const writeRest = (fd: number, all: Uint8Array, off: number, fallback: (chunk: Chunk) => void): void => {
  try {
    while (off < all.length) off += writeSync(fd, all, off)
  } catch {
    fallback(all.subarray(off))
  }
}
