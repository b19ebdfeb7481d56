// The desync rules of docs/gamesim-spec.md ("Desyncs"), as Go's
// pkg/gamesim/desync_test.go states them: one divergence is told once, to
// the drivers that were there; a client named at several checkpoints it
// played before it could reload reloads once; its dump is the state whose
// hash it reported, and a failed upload is retried.

import assert from "node:assert/strict";
import { test } from "node:test";

import { ByteReader, ByteWriter, EventStreamClient, EventStreamError, LocalCode, SimDriver, hashOf, type Checkpoint, type Desync, type Entity, type Event, type FetchLike, type Sim } from "../src/index.js";

const epoch = "0f4c2b8e-1d3a-4e5b-9c6d-7e8f9a0b1c2d";
const ev = (t: number, type: string, origin: string, body = ""): Event => ({ t, type, origin, body });
const connect = (t: number, id: string): Event => ev(t, "_c", "_", id);
const desync = (at: number, checkpoint: number, ...ids: string[]): Event => ev(at, "_x", "_", JSON.stringify({ t: checkpoint, ids }));

/** Scripted serves one stream, "s", as a test writes it: checkpoints every 20 ticks, no snapshot, a dump asked once in the next reply. Private id "pN" has public id "N". */
class Scripted {
  events: Event[] = [ev(0, "_a", "_", epoch)];
  t = 0;
  dump: number | null = null;
  failPuts = 0;
  reports = new Map<string, string>(); // "id/tick" -> the first hash reported
  dumps = new Map<string, Uint8Array>();
  puts = 0;

  constructor(...events: Event[]) {
    this.events.push(...events);
  }

  readonly fetch: FetchLike = async (url, init) => {
    const parts = new URL(url).pathname.split("/").filter(Boolean);
    const json = (status: number, v: unknown): Response => new Response(JSON.stringify(v), { status, headers: { "Content-Type": "application/json" } });
    if (parts.length === 2 && parts[1] === "snapshot") return json(404, { error: { code: "not_found", message: "no snapshot" } });
    if (parts.length === 4 && parts[2] === "dump" && init.method === "PUT") {
      this.puts++;
      if (this.failPuts > 0) {
        this.failPuts--;
        return json(503, { error: { code: "store_unavailable", message: "down" } });
      }
      this.dumps.set(`${parts[1]!.slice(1)}/${parts[3]}`, new Uint8Array(init.body as Uint8Array));
      return new Response(null, { status: 204 });
    }
    const from = Number(parts[2]);
    const id = parts[1]!.slice(1);
    if (typeof init.body === "string") {
      for (const h of (JSON.parse(init.body) as { hashes?: { t: number; h: string }[] }).hashes ?? []) {
        const k = `${id}/${h.t}`;
        if (!this.reports.has(k)) this.reports.set(k, h.h);
      }
    }
    const t = Math.max(this.t, 1);
    const reply: Record<string, unknown> = { id, epoch, tps: 20, ckpt: 20, t, events: this.events.filter((e) => e.t >= from && e.t < t) };
    if (this.dump !== null) reply.dump = this.dump;
    this.dump = null;
    return json(200, reply);
  };

  driver(id: string, sim: Sim): SimDriver {
    const c = new EventStreamClient({ baseUrl: "http://scripted.invalid", stream: "s", privateId: "p" + id, WebSocket: null, fetch: this.fetch, syncIntervalMs: 5 });
    return new SimDriver(c, sim, { recordHashes: 1024 });
  }
}

/** Counters is Go's counters: an entity per client, counting. */
class Counter implements Entity {
  constructor(
    readonly id: string,
    public n: bigint,
  ) {}
  simTick(d: SimDriver): void {
    this.n += d.rand().int64N(3n);
  }
}

class Counters implements Sim {
  byId = new Map<string, Counter>();
  seen: Desync[] = [];
  broken = false;
  constructor(readonly breakAt = 0) {}
  onReset(): void {
    this.byId = new Map();
  }
  onConnect(d: SimDriver, id: string): void {
    const c = new Counter(id, 0n);
    this.byId.set(id, c);
    d.spawn(c);
  }
  onDisconnect(): void {}
  onClientEvent(d: SimDriver, e: Event): void {
    const c = this.byId.get(e.origin);
    if (c) c.n += 10n;
    if (this.breakAt > 0 && !this.broken && d.tick >= this.breakAt && !d.replaying) {
      this.broken = true;
      for (const c of this.byId.values()) c.n += 1000n;
    }
  }
  onDesync(_d: SimDriver, x: Desync): void {
    this.seen.push(x);
  }
  stateHash(d: SimDriver): bigint {
    const w = new ByteWriter();
    this.snapshot(d, w);
    return BigInt("0x" + hashOf(w.finish()).slice(0, 16));
  }
  snapshot(d: SimDriver, w: ByteWriter): void {
    for (const e of d.entities()) w.string((e as Counter).id).varint((e as Counter).n);
  }
  restore(d: SimDriver, data: Uint8Array): void {
    this.byId = new Map();
    const r = new ByteReader(data);
    while (r.remaining > 0) {
      const c = new Counter(r.string(), r.varintBig());
      this.byId.set(c.id, c);
      d.spawn(c);
    }
  }
}

/** eventually calls f until it holds, or fails after 10 s. */
async function eventually(what: string, f: () => boolean): Promise<void> {
  for (const start = Date.now(); !f(); ) {
    assert.ok(Date.now() - start < 10_000, what);
    await new Promise((r) => setTimeout(r, 1));
  }
}

/** ToldCheckpoints is Counters that keeps what onCheckpoint was told (gamesim's CheckpointHandler). */
class ToldCheckpoints extends Counters {
  told: Checkpoint[] = [];
  inTick = false; // told while a tick was processed
  onCheckpoint(d: SimDriver, c: Checkpoint): void {
    this.told.push(c);
    try {
      d.spawn(new Counter("probe", 0n));
      this.inTick = true;
    } catch (e) {
      this.inTick ||= !(e instanceof EventStreamError && e.code === LocalCode.NotProcessing);
    }
  }
}

/** playTo updates d, a second of game time each, until it played tick last. */
async function playTo(d: SimDriver, last: number): Promise<void> {
  let now = 0;
  await eventually(`tick ${last}`, () => {
    now += 1000;
    d.update(now);
    return d.tick >= last;
  });
  assert.equal(d.err, null);
}

const strip = (xs: Desync[]): Desync[] => xs.map((x) => ({ checkpoint: x.checkpoint, ids: x.ids, self: x.self }));

test("a desync is told once, to the drivers that were there", async () => {
  const s = new Scripted(connect(1, "1"), connect(2, "2"));
  s.t = 10;
  const a = new Counters();
  const da = s.driver("2", a);
  await playTo(da, 9);

  s.events.push(desync(41, 20, "1"), desync(61, 40, "1")); // 40: the same divergence
  s.t = 70;
  await playTo(da, 69);

  const b = new Counters();
  const db = s.driver("3", b); // joins at 70
  await playTo(db, 69);
  s.events.push(desync(75, 60, "4"), desync(121, 100, "1")); // 60: before b joined; 100: a new one
  s.t = 130;
  await playTo(da, 129);
  await playTo(db, 129);
  await da.close();
  await db.close();

  assert.deepEqual(strip(a.seen), [
    { checkpoint: 20, ids: ["1"], self: false },
    { checkpoint: 60, ids: ["4"], self: false },
    { checkpoint: 100, ids: ["1"], self: false },
  ]);
  assert.deepEqual(strip(b.seen), [{ checkpoint: 100, ids: ["1"], self: false }]);
});

test("a client named at checkpoints it played before it could reload reloads once, and is told once", async () => {
  const s = new Scripted(connect(1, "1"), connect(2, "2"));
  s.t = 10;
  const p = new Counters();
  const d = s.driver("1", p);
  await playTo(d, 9);
  s.t = 70;
  await playTo(d, 69);

  s.events.push(desync(71, 20, "1"), desync(81, 40, "1"));
  s.t = 100;
  await eventually("a resync", () => {
    d.update(performance.now());
    return d.resyncs === 1;
  });
  await playTo(d, 99);
  s.events.push(desync(101, 60, "1")); // comes after the reload
  s.t = 110;
  await playTo(d, 109);
  await d.close();

  assert.equal(d.resyncs, 1);
  assert.deepEqual(strip(p.seen), [{ checkpoint: 20, ids: ["1"], self: true }]);
});

test("the dump is the state whose hash was reported, and a failed upload is retried", async () => {
  const s = new Scripted(connect(1, "1"), connect(2, "2"), ev(32, "x", "2"));
  s.failPuts = 1;
  s.t = 10;
  const p = new Counters(30);
  const d = s.driver("1", p);
  await playTo(d, 9);
  s.t = 50;
  await playTo(d, 49);
  assert.ok(p.broken);
  const ref = SimDriver.replay(new Counters(), [ev(0, "_a", "_", epoch), connect(1, "1"), connect(2, "2"), ev(32, "x", "2")], 41);
  const good = ref.snapshot();

  s.events.push(desync(51, 40, "1"));
  s.t = 60;
  await eventually("a resync", () => {
    d.update(performance.now());
    return d.resyncs === 1;
  });
  let now = 0;
  await eventually("tick 40 re-simulated", () => {
    now += 1000;
    d.update(now);
    return d.hashes().filter((h) => h.tick === 40).length === 2;
  });
  s.dump = 40; // asked once, after the reload
  await eventually("the dump", () => s.dumps.has("1/40"));
  await d.close();

  assert.equal(hashOf(s.dumps.get("1/40")!), s.reports.get("1/40"), "the state it reported");
  assert.notEqual(hashOf(good), s.reports.get("1/40"), "a broken one");
  assert.equal(s.puts, 2, "refused once, then sent again");
});

test("a driver joins from a snapshot newer than the reply's base, and drops the events it holds from every update", async () => {
  const ep = "4b2a1f7e-9c3d-4e5f-8a6b-7c8d9e0f1a2b";
  const events: Event[] = [ev(0, "_a", "_", ep), connect(1, "1"), connect(2, "2")];
  for (let k = 3; k < 70; k += 3) events.push(ev(k, "x", String(1 + (k % 2))));
  const between = (from: number, to: number): Event[] => events.filter((e) => e.t >= from && e.t < to);
  const ref = SimDriver.replay(new Counters(), events, 70, { recordHashes: 100 });
  const snap = SimDriver.replay(new Counters(), between(0, 61), 61).snapshot();

  const fetch: FetchLike = async (url) => {
    const path = new URL(url).pathname;
    if (path === "/s/snapshot") {
      // stored after the reply that said base 20
      return new Response(snap as unknown as BodyInit, { status: 200, headers: { "Eventstream-Tick": "60", "Eventstream-Hash": hashOf(snap), "Eventstream-Epoch": ep } });
    }
    const from = Number(path.slice(path.lastIndexOf("/") + 1));
    const reply: Record<string, unknown> = { id: "3", epoch: ep, tps: 20, ckpt: 20, t: 70, events: between(Math.max(from, 45), 70) };
    if (from < 45) Object.assign(reply, { t: 45, base: 20, events: between(21, 45) }); // compacted: from the snapshot of tick 20
    return new Response(JSON.stringify(reply), { status: 200, headers: { "Content-Type": "application/json" } });
  };
  const c = new EventStreamClient({ baseUrl: "http://scripted.invalid", stream: "s", privateId: "p", WebSocket: null, fetch, syncIntervalMs: 5 });
  const sim = new ToldCheckpoints();
  const d = new SimDriver(c, sim, { recordHashes: 100 });
  await playTo(d, 69);
  await d.close();

  // The snapshot it joined from is the stream's verified state: the driver says so, and told the sim, between ticks, once.
  const verified: Checkpoint = { t: 60, hash: hashOf(snap), epoch: ep };
  assert.deepEqual(d.lastCheckpoint, verified);
  assert.deepEqual(sim.told, [verified]);
  assert.equal(sim.inTick, false, "told while a tick was processed");
  assert.equal(ref.lastCheckpoint, null, "a replay hears from no server");

  const want = new Map(ref.hashes().map((h) => [h.tick, h.hash]));
  const got = d.hashes();
  assert.ok(got.length > 0);
  assert.equal(got[0]!.tick, 61, "played from the tick after the snapshot");
  for (const h of got) assert.equal(h.hash, want.get(h.tick), `tick ${h.tick}`);
});
