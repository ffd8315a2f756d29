// Bundles the executable (dist/main.js, which guards signals and loads the CLI, dist/cli.js), the package entry
// (dist/index.js) and the mock provider (dist/mock.js).
// Bundling keeps start-up fast: importing whole Effect package indexes unbundled costs seconds.
import { execFileSync } from "node:child_process"
import { chmodSync, readFileSync } from "node:fs"
import { build } from "esbuild"

// The V8 flags a proxy process must start with (src/v8flags.ts explains each): the bin's shebang carries them.
// Only the `start` list, which every supported Node knows; the per-version `runtime` flags are set by the process.
const v8flags = JSON.parse(readFileSync("src/v8flags.json", "utf8")).start

const common = {
  bundle: true,
  platform: "node",
  target: "node20",
  format: "esm",
  sourcemap: true,
  logLevel: "warning",
  // Packages that may be loaded lazily by dependencies but are never used by openproxy.
  external: ["@effect/cluster", "@effect/rpc", "@effect/sql", "@effect/workflow"],
  banner: {
    js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);"
  }
}

await Promise.all([
  // The executable: a few lines that must run before the CLI bundle is parsed (src/bin.ts says why).
  build({
    ...common,
    entryPoints: ["src/bin.ts"],
    outfile: "dist/main.js",
    external: ["./cli.js"],
    banner: { js: `#!/usr/bin/env -S node ${v8flags.join(" ")}` }
  }),
  build({
    ...common,
    entryPoints: ["src/main.ts"],
    outfile: "dist/cli.js",
    // Whitespace and syntax only (names are kept, so stack traces still read): a third less source text for V8
    // to keep and compile, ~3 MiB less heap at start-up (measured with the idle RSS of scenario 5).
    minifyWhitespace: true,
    minifySyntax: true
  }),
  build({ ...common, entryPoints: ["src/index.ts"], outfile: "dist/index.js", packages: "external", banner: {} }),
  build({ ...common, entryPoints: ["src/mock/main.ts"], outfile: "dist/mock.js" })
])

// The bin runs through its shebang (which carries the start flags of src/v8flags.json).
chmodSync("dist/main.js", 0o755)

// Type declarations for the package entry (the service layers are reusable from other Effect apps).
// Type errors are reported by `npm run typecheck` (run by CI); here they only cost the declarations.
try {
  execFileSync(process.execPath, ["node_modules/typescript/bin/tsc", "-p", "tsconfig.build.json"], { stdio: "pipe" })
} catch {
  process.stderr.write("build: type declarations incomplete (type errors: run npm run typecheck)\n")
}
