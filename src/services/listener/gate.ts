// `max_connections` (SPEC §8): the count of client connections open in this process, and the refusal of new ones
// over it.
import type * as net from "node:net"
import type { Logger } from "../../log.js"

/**
 * Client connections open in this process, across every listener (kept, added and retired). Over the limit a new
 * connection is closed at once, before any TLS handshake; refusals are logged as one line per 5 s with their
 * count, so a flood does not flood the log.
 */
export class ConnectionGate {
  open = 0
  private refused = 0
  private flush: NodeJS.Timeout | undefined
  constructor(
    public max: number,
    private readonly log: Logger
  ) {}

  /** Counts a new raw connection in, or closes it when the process is full. */
  readonly admit = (socket: net.Socket): boolean => {
    if (this.open >= this.max) {
      socket.destroy()
      this.refused++
      if (this.flush === undefined) {
        this.report()
        this.flush = setTimeout(() => {
          this.flush = undefined
          if (this.refused > 0) this.report()
        }, 5_000).unref()
      }
      return false
    }
    this.open++
    socket.once("close", this.onClose)
    return true
  }

  private readonly onClose = (): void => {
    this.open--
  }

  private report(): void {
    this.log.log("warn", "connections refused: max_connections reached", { max: this.max, refused: this.refused })
    this.refused = 0
  }

  dispose(): void {
    clearTimeout(this.flush)
  }
}
