// The TypeScript copy of Gem Rush's simulation against the Go reference:
// the recorded stream of examples/web/sim/testdata/vectors.json, replayed
// by clients/ts's SimDriver, must give the Go hash after every tick and
// the Go snapshot bytes. (go test ./examples/web/sim checks the Go side
// against the same file.)
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { SimDriver, hashOf, sha256, toHex, type Event } from "../../../clients/ts/src/index.js";
import { World, isqrt, parseInput, formatInput, validName } from "../src/sim.js";

interface Vectors {
  events: Event[];
  until: number;
  hashes: string[];
  snapshots: { t: number; hash: string; data: string }[];
}

const vectors = JSON.parse(readFileSync(new URL("../sim/testdata/vectors.json", import.meta.url) /* from build/, where this test runs bundled */, "utf8")) as Vectors;

/** Hashed hashes its snapshot after every tick, as the Go test's observed does. */
class Hashed extends World {
  stateHash(d: SimDriver): bigint {
    const sum = sha256(d.snapshot());
    let h = 0n;
    for (let i = 0; i < 8; i++) h = (h << 8n) | BigInt(sum[i]!);
    return h;
  }
}

test("every tick's hash is Go's", () => {
  const d = SimDriver.replay(new Hashed(), vectors.events, vectors.until, { recordHashes: vectors.until });
  const got = d.hashes();
  assert.equal(got.length, vectors.hashes.length);
  for (const [k, h] of got.entries()) {
    assert.equal(h.tick, k);
    assert.equal(h.hash.toString(16).padStart(16, "0"), vectors.hashes[k], `the first tick whose state differs from Go's: ${k}`);
  }
});

test("the snapshots are Go's bytes, and a replay from one reaches the same end", () => {
  const end = SimDriver.replay(new World(), vectors.events, vectors.until).snapshot();
  for (const s of vectors.snapshots) {
    const head = vectors.events.filter((e) => e.t <= s.t);
    const d = SimDriver.replay(new World(), head, s.t + 1);
    const data = d.snapshot();
    assert.equal(Buffer.from(data).toString("base64"), s.data, `snapshot of tick ${s.t}`);
    assert.equal(hashOf(data), s.hash);
    const go = new Uint8Array(Buffer.from(s.data, "base64"));
    const rest = vectors.events.filter((e) => e.t > s.t);
    const from = SimDriver.replayFrom(new World(), go, rest, vectors.until);
    assert.equal(toHex(from.snapshot()), toHex(end), `replayed from Go's snapshot of tick ${s.t}`);
  }
});

test("inputs, names and the integer square root", () => {
  for (let n = 0; n < 100_000; n++) {
    const r = isqrt(n);
    assert.ok(r * r <= n && (r + 1) * (r + 1) > n, `isqrt(${n}) = ${r}`);
  }
  for (let i = 0; i < 16; i++) assert.equal(parseInput(formatInput(i)), i);
  for (const bad of ["", "g", "F", "10", "é"]) assert.equal(parseInput(bad), undefined, bad);
  assert.ok(validName("gobot"));
  for (const bad of ["", "bobé", "a name too long", "tab\there"]) assert.equal(validName(bad), false, bad);
});
