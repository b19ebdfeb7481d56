// The vectors Go's gamesim generated (pkg/gamesim/testdata/vectors, made by
// pkg/gamesim/vectors_test.go): this package must compute the same.

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

import { ByteReader, ByteWriter, EventStreamClient, Rand, SimDriver, fromHex, hashOf, parseSnapshot, seedOf, type Checkpoint, type Event, type FetchLike } from "../src/index.js";
import { RefSim } from "./refsim.js";

// build/test/ → the repository's pkg/gamesim/testdata/vectors
const vectorsDir = join(dirname(fileURLToPath(import.meta.url)), "../../../../pkg/gamesim/testdata/vectors");

function load<T>(name: string): T {
  return JSON.parse(readFileSync(join(vectorsDir, name), "utf8")) as T;
}

interface NCase {
  n: string;
  want: string[];
}
interface PermCase {
  n: number;
  want: number[];
}
interface RandCase {
  epoch: string;
  tick: number;
  pcg: [string, string];
  uint64: string[];
  int64: string[];
  uint32: number[];
  int32: number[];
  int: string[];
  uint: string[];
  float64: number[];
  float32: number[];
  intN: NCase[];
  int64N: NCase[];
  int32N: NCase[];
  uint32N: NCase[];
  uint64N: NCase[];
  uintN: NCase[];
  perm: PermCase[];
  shuffle: PermCase[];
  mixed: { call: string; want: unknown }[];
}

function randAt(c: RandCase): Rand {
  const r = new Rand();
  r.reseed(seedOf(c.epoch), c.tick);
  return r;
}

function draws<T>(c: RandCase, f: (r: Rand) => T, n: number): T[] {
  const r = randAt(c);
  return Array.from({ length: n }, () => f(r));
}

const str = (v: bigint | number): string => v.toString();

// Each mixed call, as Go's name for it.
const calls: Record<string, (r: Rand) => unknown> = {
  "Uint64()": (r) => str(r.uint64()),
  "IntN(6)": (r) => str(r.intN(6)),
  "Float64()": (r) => r.float64(),
  "Perm(3)": (r) => r.perm(3),
  "Int64N(1000000000000)": (r) => str(r.int64N(1000000000000n)),
  "Uint32()": (r) => str(r.uint32()),
  "Uint64N(9223372036854775809)": (r) => str(r.uint64N(9223372036854775809n)),
  "Float32()": (r) => r.float32(),
  "Int32N(7)": (r) => str(r.int32N(7)),
  "Int64()": (r) => str(r.int64()),
  "Uint32N(4294967295)": (r) => str(r.uint32N(4294967295)),
  "IntN(8)": (r) => str(r.intN(8)),
};

test("Rand draws what Go's gamesim draws", () => {
  const { cases } = load<{ cases: RandCase[] }>("rand.json");
  assert.ok(cases.length >= 20);
  for (const c of cases) {
    const at = `epoch ${JSON.stringify(c.epoch)} tick ${c.tick}`;
    const [hi, lo] = randAt(c).state();
    assert.deepEqual([hi.toString(16).padStart(16, "0"), lo.toString(16).padStart(16, "0")], c.pcg, `seed, ${at}`);
    const n = c.uint64.length;
    assert.deepEqual(draws(c, (r) => str(r.uint64()), n), c.uint64, `uint64, ${at}`);
    assert.deepEqual(draws(c, (r) => str(r.int64()), n), c.int64, `int64, ${at}`);
    assert.deepEqual(draws(c, (r) => r.uint32(), n), c.uint32, `uint32, ${at}`);
    assert.deepEqual(draws(c, (r) => r.int32(), n), c.int32, `int32, ${at}`);
    assert.deepEqual(draws(c, (r) => str(r.int()), n), c.int, `int, ${at}`);
    assert.deepEqual(draws(c, (r) => str(r.uint()), n), c.uint, `uint, ${at}`);
    assert.deepEqual(draws(c, (r) => r.float64(), n), c.float64, `float64, ${at}`);
    assert.deepEqual(draws(c, (r) => r.float32(), n), c.float32, `float32, ${at}`);
    const bounded: [NCase[], (r: Rand, n: string) => string][] = [
      [c.intN, (r, n) => str(r.intN(Number(n)))],
      [c.int64N, (r, n) => str(r.int64N(BigInt(n)))],
      [c.int32N, (r, n) => str(r.int32N(Number(n)))],
      [c.uint32N, (r, n) => str(r.uint32N(Number(n)))],
      [c.uint64N, (r, n) => str(r.uint64N(BigInt(n)))],
      [c.uintN, (r, n) => str(r.uintN(BigInt(n)))],
    ];
    for (const [list, f] of bounded) {
      assert.ok(list.length > 0);
      for (const nc of list) assert.deepEqual(draws(c, (r) => f(r, nc.n), nc.want.length), nc.want, `n ${nc.n}, ${at}`);
    }
    for (const pc of c.perm) assert.deepEqual(randAt(c).perm(pc.n), pc.want, `perm(${pc.n}), ${at}`);
    for (const sc of c.shuffle) {
      const js: number[] = [];
      randAt(c).shuffle(sc.n, (_i, j) => js.push(j));
      assert.deepEqual(js, sc.want, `shuffle(${sc.n}), ${at}`);
    }
    const r = randAt(c);
    for (const m of c.mixed) {
      const f = calls[m.call];
      assert.ok(f, `no such call ${m.call}`);
      assert.deepEqual(f(r), m.want, `${m.call} in the mixed sequence, ${at}`);
    }
  }
});

interface SnapshotVector {
  tick: number;
  hex: string;
  hash: string;
}
interface StreamVector {
  until: number;
  events: Event[];
  hashes: string[];
  snapshot: SnapshotVector;
  empty: SnapshotVector;
}

const below = (events: Event[], until: number): Event[] => events.filter((e) => e.t < until);

test("the reference sim has Go's state hash after every tick of the recorded stream", () => {
  const v = load<StreamVector>("stream.json");
  assert.equal(v.hashes.length, v.until);
  // One replay, tick by tick, as a live driver plays it.
  for (let k = 1; k <= v.until; k++) {
    const d = SimDriver.replay(new RefSim(), below(v.events, k), k);
    assert.equal(d.tick, k - 1);
    assert.equal(hashOf(d.snapshot()), v.hashes[k - 1], `the state after tick ${k - 1}`);
  }
});

test("a snapshot has Go's bytes, and playing on from it gives Go's hashes", () => {
  const v = load<StreamVector>("stream.json");
  const s = v.snapshot;
  const d = SimDriver.replay(new RefSim(), below(v.events, s.tick + 1), s.tick + 1);
  const data = d.snapshot();
  assert.equal(Buffer.from(data).toString("hex"), s.hex);
  assert.equal(hashOf(data), s.hash);
  assert.equal(s.hash, v.hashes[s.tick]);

  const h = parseSnapshot(fromHex(s.hex));
  assert.equal(h.epoch, v.events[0]!.body);
  assert.equal(h.tick, s.tick);
  assert.equal(h.entities, d.entities().length);

  const after = v.events.filter((e) => e.t > s.tick);
  for (let until = s.tick + 1; until <= v.until; until += 7) {
    const r = SimDriver.replayFrom(new RefSim(), fromHex(s.hex), below(after, until), until);
    assert.equal(hashOf(r.snapshot()), v.hashes[until - 1], `restored at ${s.tick}, played to ${until}`);
  }
});

test("an empty sim's snapshot is the header alone, byte for byte", () => {
  const v = load<StreamVector>("stream.json");
  const empty = {
    onReset() {},
    onConnect() {},
    onDisconnect() {},
    onClientEvent() {},
    snapshot() {},
    restore() {},
  };
  const d = SimDriver.replay(empty, v.events.slice(0, 1), v.empty.tick + 1);
  const data = d.snapshot();
  assert.equal(Buffer.from(data).toString("hex"), v.empty.hex);
  assert.equal(hashOf(data), v.empty.hash);
});

interface EncodingCase {
  v: string;
  hex: string;
}

test("ByteWriter and ByteReader encode as Go's encoding/binary", () => {
  const v = load<{ uvarint: EncodingCase[]; varint: EncodingCase[]; float64: EncodingCase[] }>("encodings.json");
  const hex = (f: (w: ByteWriter) => void): string => {
    const w = new ByteWriter();
    f(w);
    return Buffer.from(w.finish()).toString("hex");
  };
  for (const c of v.uvarint) {
    assert.equal(hex((w) => w.uvarint(BigInt(c.v))), c.hex, `uvarint ${c.v}`);
    assert.equal(new ByteReader(fromHex(c.hex)).uvarintBig(), BigInt(c.v));
  }
  for (const c of v.varint) {
    assert.equal(hex((w) => w.varint(BigInt(c.v))), c.hex, `varint ${c.v}`);
    assert.equal(new ByteReader(fromHex(c.hex)).varintBig(), BigInt(c.v));
    if (Number.isSafeInteger(Number(c.v))) assert.equal(hex((w) => w.varint(Number(c.v))), c.hex, `varint ${c.v} as a number`);
  }
  for (const c of v.float64) {
    const x = c.v === "+Inf" ? Infinity : Number(c.v);
    assert.equal(hex((w) => w.float64(x)), c.hex, `float64 ${c.v}`);
    assert.ok(Object.is(new ByteReader(fromHex(c.hex)).float64(), x));
  }
  assert.ok(v.uvarint.length >= 10 && v.varint.length >= 10 && v.float64.length >= 5);
  // What binary.Uvarint refuses: 11 bytes, or a 10th byte above 1.
  assert.throws(() => new ByteReader(fromHex("ffffffffffffffffff02")).uvarintBig(), RangeError);
  assert.throws(() => new ByteReader(fromHex("80")).uvarintBig(), RangeError);
});

test("sha256 is node:crypto's SHA-256", () => {
  for (const n of [0, 1, 3, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 1000, 100_000]) {
    const data = new Uint8Array(n).map((_, i) => (i * 131 + n) & 0xff);
    assert.equal(hashOf(data), createHash("sha256").update(data).digest("hex"), `${n} bytes`);
  }
  assert.equal(hashOf(new TextEncoder().encode("abc")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
});

test("Rand's bounded draws on doubles agree with the bigint reference, rejections included", () => {
  // 2^64 mod n is about n/2 for this n, so about one draw in 4000 is
  // rejected and drawn again: the path the vectors' few draws never take.
  const big = (2n ** 65n) / 4097n;
  const ns = [Number(big), Number(big) + 2, 2 ** 53 - 1, 6, 1000003, 2 ** 31 - 1, 2 ** 32 - 1, 2 ** 32, 2 ** 32 + 1, 2 ** 40, 3 * 2 ** 40];
  let rejected = 0;
  for (const n of ns) {
    const fast = new Rand();
    const ref = new Rand();
    const one = new Rand();
    fast.reseed(seedOf("bounded"), n);
    ref.reseed(seedOf("bounded"), n);
    const draws = n === ns[0] ? 100_000 : 2_000;
    for (let i = 0; i < draws; i++) {
      const [h, l] = ref.state();
      one.seed(h, l);
      one.uint64();
      const want = ref.uint64N(BigInt(n));
      assert.equal(BigInt(fast.intN(n)), want, `intN(${n}), draw ${i}`);
      const [fh, fl] = fast.state();
      const [rh, rl] = ref.state();
      assert.ok(fh === rh && fl === rl, `intN(${n}) took as many steps`);
      const [oh, ol] = one.state();
      if (oh !== rh || ol !== rl) rejected++;
    }
  }
  assert.ok(rejected >= 5, `only ${rejected} rejections: the test does not reach the loop`);
});

interface CheckpointStep {
  do: "sync" | "snapshot" | "put";
  t?: number;
  epoch?: string;
  data?: string;
  stored?: boolean;
  want: Checkpoint | null;
}

test("lastCheckpoint keeps what Go's LastCheckpoint keeps, step by step", async () => {
  const v = load<{ steps: CheckpointStep[] }>("checkpoints.json");
  const utf8 = new TextEncoder();
  let step = v.steps[0]!;
  const fetch: FetchLike = async (url, init) => {
    const s = step;
    if (new URL(url).pathname === "/s/snapshot") {
      return new Response(s.data!, { status: 200, headers: { "Eventstream-Tick": String(s.t), "Eventstream-Hash": hashOf(utf8.encode(s.data!)), "Eventstream-Epoch": s.epoch! } });
    }
    const reply = init.method === "PUT" ? { t: s.t, stored: s.stored === true } : { id: "1", t: 200, epoch: s.epoch, tps: 20, ckpt: 20, events: [] };
    return new Response(JSON.stringify(reply), { status: 200, headers: { "Content-Type": "application/json" } });
  };
  const c = new EventStreamClient({ baseUrl: "http://vectors.invalid", stream: "s", privateId: "p", WebSocket: null, fetch });
  assert.ok(v.steps.length > 10);
  for (const [i, s] of v.steps.entries()) {
    step = s;
    if (s.do === "sync") await c.sync();
    else if (s.do === "snapshot") await c.snapshot();
    else await c.putSnapshot(s.t!, utf8.encode(s.data!));
    assert.deepEqual(c.lastCheckpoint, s.want, `after step ${i}: ${JSON.stringify(s)}`);
  }
});
