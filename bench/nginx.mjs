// Writes the nginx configurations the benchmark uses: the fixed-reply upstream and the reverse proxy under test.
import fs from "node:fs"
import path from "node:path"

/** A chat-completion reply of exactly `size` bytes (no quotes, backslashes or `$`, so nginx can `return` it). */
export const replyJson = (size = 1024) => {
  const reply = {
    id: "chatcmpl-bench0000000000000000000000",
    object: "chat.completion",
    created: 1700000000,
    model: "gpt-4o-mini-2024-07-18",
    choices: [
      {
        index: 0,
        message: { role: "assistant", content: "" },
        logprobs: null,
        finish_reason: "stop"
      }
    ],
    usage: { prompt_tokens: 256, completion_tokens: 180, total_tokens: 436 },
    system_fingerprint: "fp_bench"
  }
  const base = JSON.stringify(reply).length
  reply.choices[0].message.content = "lorem ipsum ".repeat(100).slice(0, size - base)
  const text = JSON.stringify(reply)
  if (text.length !== size) throw new Error(`reply is ${text.length} bytes, wanted ${size}`)
  return text
}

const common = (dir, name) => `
worker_processes 1;
daemon off;
pid ${path.join(dir, name + ".pid")};
error_log ${path.join(dir, name + ".error.log")} warn;
worker_rlimit_nofile 16384;
events { worker_connections 16000; multi_accept on; }
`

const temps = (dir, name) => `
  client_body_temp_path ${path.join(dir, name + "-body")};
  proxy_temp_path ${path.join(dir, name + "-proxy")};
  fastcgi_temp_path ${path.join(dir, name + "-fastcgi")};
  uwsgi_temp_path ${path.join(dir, name + "-uwsgi")};
  scgi_temp_path ${path.join(dir, name + "-scgi")};
  access_log off;
  keepalive_timeout 300s;
  keepalive_requests 100000000;
`

/** A server block's listeners: the plain port and the TLS + HTTP/2 port with the run's certificate. */
const listenTlsAndPlain = ({ port, tlsPort, cert, key }) => `    listen 127.0.0.1:${port} backlog=4096;
    listen 127.0.0.1:${tlsPort} ssl http2 backlog=4096;
    ssl_certificate ${cert};
    ssl_certificate_key ${key};`

/** The upstream: answers every request with the fixed 1 KiB JSON (plain port and TLS h2 port). */
export const writeUpstreamConf = ({ dir, port, tlsPort, cert, key }) => {
  const body = replyJson(1024)
  const conf = `${common(dir, "upstream")}
http {
${temps(dir, "upstream")}
  client_body_buffer_size 128k;
  client_max_body_size 10m;
  server {
${listenTlsAndPlain({ port, tlsPort, cert, key })}
    location / {
      default_type application/json;
      return 200 '${body}';
    }
  }
}
`
  const file = path.join(dir, "upstream.conf")
  fs.writeFileSync(file, conf)
  return file
}

/**
 * nginx as the reverse proxy under test: upstream keep-alive, Authorization rewrite, 1 worker. Without `tlsPort`
 * only the plain listener; `buffering: false` adds `proxy_buffering off` (streaming, scenario 6).
 */
export const writeProxyConf = ({
  dir,
  port,
  tlsPort,
  upstreamPort,
  cert,
  key,
  buffering = true,
  name = "nginx-proxy"
}) => {
  const conf = `${common(dir, name)}
http {
${temps(dir, name)}
  client_body_buffer_size 128k;
  client_max_body_size 10m;
  upstream up {
    server 127.0.0.1:${upstreamPort};
    keepalive 64;
    keepalive_requests 100000000;
    keepalive_timeout 300s;
  }
  server {
${tlsPort ? listenTlsAndPlain({ port, tlsPort, cert, key }) : `    listen 127.0.0.1:${port} backlog=4096;`}
    location / {
      proxy_pass http://up;${buffering ? "" : "\n      proxy_buffering off;"}
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Authorization "Bearer sk-upstream";
    }
  }
}
`
  const file = path.join(dir, `${name}.conf`)
  fs.writeFileSync(file, conf)
  return file
}
