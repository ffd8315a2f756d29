// Test certificates: a throw-away CA and a server certificate it signs (EC P-256, made with the
// openssl CLI) with SANs for localhost, 127.0.0.1, ::1 and the *.test provider names. Cached per process.
import { execFile } from "node:child_process"
import { createHash, randomBytes } from "node:crypto"
import { mkdir, readFile, writeFile } from "node:fs/promises"
import { isIP } from "node:net"
import { join } from "node:path"
import { promisify } from "node:util"

const run = promisify(execFile)

export interface TestCerts {
  caCert: string
  caFile: string
  cert: string
  certFile: string
  key: string
  keyFile: string
}

export const DEFAULT_CERT_NAMES = ["openai.test", "anthropic.test", "gemini.test", "proxy.test", "*.test"]

const cache = new Map<string, Promise<TestCerts>>()

const openssl = (args: string[]): Promise<unknown> => run("openssl", args)

const make = async (dir: string, names: string[]): Promise<TestCerts> => {
  await mkdir(dir, { recursive: true })
  const f = (name: string): string => join(dir, name)
  const ec = ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"]
  await Promise.all([
    openssl(["genpkey", ...ec, "-out", f("ca.key")]),
    openssl(["genpkey", ...ec, "-out", f("server.key")])
  ])
  const sans = [...new Set(["localhost", "127.0.0.1", "::1", ...names])]
    .map((n) => (isIP(n) ? `IP:${n}` : `DNS:${n}`))
    .join(",")
  await writeFile(
    f("server.ext"),
    [
      "basicConstraints=critical,CA:FALSE",
      "keyUsage=critical,digitalSignature",
      "extendedKeyUsage=serverAuth",
      `subjectAltName=${sans}`,
      ""
    ].join("\n")
  )
  await Promise.all([
    openssl([
      "req",
      "-x509",
      "-new",
      "-key",
      f("ca.key"),
      "-sha256",
      "-days",
      "3650",
      "-subj",
      "/CN=openproxy test CA",
      "-addext",
      "basicConstraints=critical,CA:TRUE",
      "-addext",
      "keyUsage=critical,keyCertSign,cRLSign",
      "-out",
      f("ca.crt")
    ]),
    openssl(["req", "-new", "-key", f("server.key"), "-subj", "/CN=localhost", "-out", f("server.csr")])
  ])
  await openssl([
    "x509",
    "-req",
    "-in",
    f("server.csr"),
    "-CA",
    f("ca.crt"),
    "-CAkey",
    f("ca.key"),
    "-set_serial",
    "0x" + randomBytes(8).toString("hex"),
    "-days",
    "825",
    "-sha256",
    "-extfile",
    f("server.ext"),
    "-out",
    f("server.crt")
  ])
  const [caCert, cert, key] = await Promise.all([
    readFile(f("ca.crt"), "utf8"),
    readFile(f("server.crt"), "utf8"),
    readFile(f("server.key"), "utf8")
  ])
  return { caCert, caFile: f("ca.crt"), cert, certFile: f("server.crt"), key, keyFile: f("server.key") }
}

/**
 * Makes (once per process and directory) a CA and a server certificate signed by it in `dir`
 * (in a sub-directory of `dir` named after the names when they are not the default ones).
 */
export const makeTestCerts = (dir: string, names: string[] = DEFAULT_CERT_NAMES): Promise<TestCerts> => {
  const custom = names.join(",") !== DEFAULT_CERT_NAMES.join(",")
  const target = custom ? join(dir, createHash("sha256").update(names.join(",")).digest("hex").slice(0, 12)) : dir
  let p = cache.get(target)
  if (p === undefined) {
    p = make(target, names)
    cache.set(target, p)
    p.catch(() => cache.delete(target))
  }
  return p
}
