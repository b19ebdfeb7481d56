// Runs the compiled tests with Node's test runner. Node 20 has a WebSocket
// only behind --experimental-websocket (22 has it by default; a later Node
// may drop the flag): the push tests need one, so the flag is passed
// where Node knows it, and without a WebSocket the run fails, not skips.
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";

const flags = process.allowedNodeEnvironmentFlags.has("--experimental-websocket") && typeof WebSocket === "undefined" ? ["--experimental-websocket"] : [];
const probe = spawnSync(process.execPath, [...flags, "-e", "process.exit(typeof WebSocket === 'function' ? 0 : 1)"]);
if (probe.status !== 0) {
  console.error("clients/ts tests: this Node has no WebSocket (Node 20.10 or later is needed)");
  process.exit(1);
}
const files = readdirSync("build/test").filter((f) => f.endsWith(".test.js")).map((f) => `build/test/${f}`);
const r = spawnSync(process.execPath, [...flags, "--test", ...files], { stdio: "inherit" });
process.exit(r.status ?? 1);
