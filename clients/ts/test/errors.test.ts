// The status of each error code is the one of docs/protocol.md's table of errors, as Go's
// internal/protocol TestStatusIsTheDocsTable holds Go's table to it.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

import { statusOf } from "../src/index.js";

const protocolDoc = join(dirname(fileURLToPath(import.meta.url)), "../../../../docs/protocol.md");

test("statusOf gives every documented code its documented status", () => {
  const rows = [...readFileSync(protocolDoc, "utf8").matchAll(/^\| (\d{3}) \| `([a-z_]+)` \|/gm)];
  assert.ok(rows.length >= 20, "the errors table was found");
  for (const [, status, code] of rows) assert.equal(statusOf(code!), Number(status), `code ${code}`);
});
