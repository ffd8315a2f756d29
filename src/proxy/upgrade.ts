// Upgrades and tunnels wired into the protocol servers (src/proxy/servers.ts): HTTP/1.1 `Upgrade: websocket`
// and HTTP/2 extended CONNECT (RFC 8441) in src/proxy/websocket.ts, HTTP CONNECT tunnels in src/proxy/tunnel.ts.
import type { ProxyContext } from "./context.js"
import type { ExtraHandlers } from "./servers.js"
import { handleConnect } from "./tunnel.js"
import { handleH2Connect, handleUpgrade } from "./websocket.js"

export const makeExtraHandlers = (ctx: ProxyContext): ExtraHandlers => ({
  upgrade: (req, socket, head) => handleUpgrade(ctx, req, socket, head),
  connect: (req, socket, head) => handleConnect(ctx, req, socket, head),
  h2Connect: (req, res) => handleH2Connect(ctx, req, res)
})
