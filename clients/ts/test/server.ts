// The real eventstreamd for the tests: built from this repository with
// `go build`, started on a free loopback port, stopped by the test; and
// collect, which runs a client against it.

import assert from "node:assert/strict";
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import type { EventStreamClient, Update } from "../src/index.js";

/** The repository's root: build/test/ is three levels below clients/ts. */
export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), "../../../..");

let built: string | null = null;

/** buildGo builds a Go package of the repository (once per test file) and returns the binary's path. */
export function buildGo(pkg: string, name: string): string {
  const out = join(mkdtempSync(join(tmpdir(), "esd-ts-")), name);
  execFileSync("go", ["build", "-o", out, pkg], { cwd: repoRoot, stdio: ["ignore", "inherit", "inherit"] });
  return out;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const addr = s.address();
      s.close(() => resolve(typeof addr === "object" && addr ? addr.port : 0));
    });
  });
}

export interface Server {
  url: string;
  stop(): Promise<void>;
}

/** startServer starts eventstreamd with the flags given and waits until it answers. */
export async function startServer(...flags: string[]): Promise<Server> {
  built ??= buildGo("./cmd/eventstreamd", "eventstreamd");
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const proc: ChildProcess = spawn(built, ["-addr", `127.0.0.1:${port}`, "-log-level", "warn", "-drain-delay", "0", ...flags], {
    stdio: ["ignore", "inherit", "inherit"],
  });
  const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
  for (let i = 0; ; i++) {
    try {
      const r = await fetch(url + "/healthz");
      if (r.ok) break;
    } catch {
      // not yet
    }
    if (i > 200 || proc.exitCode !== null) {
      proc.kill();
      throw new Error("eventstreamd did not start");
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  return {
    url,
    async stop() {
      if (proc.exitCode === null) proc.kill("SIGTERM");
      await exited;
    },
  };
}

/** collect runs c until pred holds for the updates so far, or 10 s pass. */
export async function collect(c: EventStreamClient, pred: (us: Update[]) => boolean): Promise<Update[]> {
  const us: Update[] = [];
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), 10_000);
  await c.run((u) => {
    us.push(u);
    if (pred(us)) ctl.abort();
  }, ctl.signal);
  clearTimeout(timer);
  assert.ok(pred(us), "the updates never satisfied the test");
  return us;
}
