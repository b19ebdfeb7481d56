// Builds the page into dist/: the bundle of src/main.ts (with clients/ts
// compiled in from its sources) and the static files. `make demo` and the
// tests run it; nothing is fetched at run time.
import { build } from "esbuild";
import { cpSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, "dist");
mkdirSync(dist, { recursive: true });
cpSync(join(here, "static"), dist, { recursive: true });
await build({
  entryPoints: [join(here, "src/main.ts")],
  bundle: true,
  format: "esm",
  target: "es2022",
  sourcemap: true,
  outfile: join(dist, "game.js"),
  logLevel: "warning",
});
console.log(`built ${dist}`);
