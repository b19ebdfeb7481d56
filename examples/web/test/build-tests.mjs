// Bundles the TypeScript tests for Node's test runner (Node 20 runs no
// TypeScript itself) into build/.
import { build } from "esbuild";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
await build({
  entryPoints: [join(here, "sim.test.ts")],
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  outdir: join(here, "..", "build"),
  outExtension: { ".js": ".mjs" },
  external: ["node:*"],
  logLevel: "warning",
});
