// Upgrades and tunnels: HTTP/1.1 `Upgrade: websocket`, HTTP/2 extended CONNECT (RFC 8441) and HTTP CONNECT.
// Not built yet (issue 3): until then WebSocket upgrades and CONNECT are refused with 501/405.
import type * as net from "node:net"
import type { ProxyContext } from "./forward.js"
import type { ExtraHandlers } from "./servers.js"

const refuse = (socket: net.Socket, status: number, reason: string): void => {
  socket.end(`HTTP/1.1 ${status} ${reason}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`)
}

export const makeExtraHandlers = (_ctx: ProxyContext): ExtraHandlers => ({
  upgrade: (_req, socket) => refuse(socket, 501, "Not Implemented"),
  connect: (_req, socket) => refuse(socket, 405, "Method Not Allowed")
})
