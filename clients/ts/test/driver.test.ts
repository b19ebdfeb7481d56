// SimDriver's contract (docs/gamesim-spec.md, "Processing a tick"; Go's
// twins: pkg/gamesim's replay_test.go, pacing_test.go, replaying_test.go),
// without a server: replays, and a client fed by a scripted fetch.

import assert from "node:assert/strict";
import { test } from "node:test";

import { EventStreamClient, EventStreamError, SimDriver, type Entity, type Event, type FetchLike, type Sim } from "../src/index.js";

const epoch = "6db8b8f2-16c9-427d-9fc9-de43870ed0db";
const ev = (t: number, type: string, origin: string, body = ""): Event => ({ t, type, origin, body });

/** Recorder writes down every call, and spawns or destroys what events say. */
class Recorder implements Sim {
  log: string[] = [];
  named = new Map<string, Probe>();
  logf(d: SimDriver, s: string): void {
    this.log.push(`${d.tick} ${s}`);
  }
  onReset(d: SimDriver): void {
    this.logf(d, `reset entities=${d.entities().length}`);
    this.named.clear();
  }
  onConnect(d: SimDriver, id: string): void {
    this.logf(d, `connect ${id}`);
  }
  onDisconnect(d: SimDriver, id: string): void {
    this.logf(d, `disconnect ${id}`);
  }
  onClientEvent(d: SimDriver, e: Event): void {
    this.logf(d, `${e.type} ${e.body} from ${e.origin}`);
    const attempt = (f: () => void): void => {
      try {
        f();
      } catch (err) {
        this.logf(d, `error ${(err as EventStreamError).code}`);
      }
    };
    if (e.type === "spawn") {
      const p = new Probe(e.body, this);
      this.named.set(e.body, p);
      attempt(() => d.spawn(p));
    }
    if (e.type === "destroy") attempt(() => d.destroy(this.named.get(e.body)!));
    if (e.type === "respawn") attempt(() => d.spawn(this.named.get(e.body)!));
  }
}

class Probe implements Entity {
  constructor(
    readonly name: string,
    readonly rec: Recorder,
    public child = "",
  ) {}
  simTick(d: SimDriver): void {
    this.rec.logf(d, `tick ${this.name}`);
    if (this.child) {
      const c = new Probe(this.child, this.rec);
      this.child = "";
      this.rec.named.set(c.name, c);
      d.spawn(c);
    }
  }
}

test("a tick: events in order, then SimTick in spawn order, then spawns and destroys", () => {
  const rec = new Recorder();
  const events = [
    ev(0, "_a", "_", epoch),
    ev(1, "_c", "_", "1"),
    ev(1, "spawn", "1", "a"),
    ev(1, "spawn", "1", "b"),
    ev(2, "_z", "_", "a server event of a later protocol"),
    ev(2, "_x", "_", '{"t":0,"ids":["9"]}'),
    ev(2, "destroy", "1", "a"),
    ev(2, "destroy", "1", "a"),
    ev(2, "respawn", "1", "b"),
    ev(3, "spawn", "1", "c"),
    ev(3, "_d", "_", "1"),
  ];
  const d = SimDriver.replay(rec, events, 5);
  assert.deepEqual(rec.log, [
    "0 reset entities=0",
    "1 connect 1",
    "1 spawn a from 1",
    "1 spawn b from 1",
    "2 destroy a from 1",
    "2 destroy a from 1",
    "2 error unknown_entity", // already being destroyed
    "2 respawn b from 1",
    "2 error spawned",
    "2 tick a", // destroyed at the end of the tick: it still ticks
    "2 tick b",
    "3 spawn c from 1",
    "3 disconnect 1",
    "3 tick b",
    "4 tick b", // c spawned at 3 first ticks at 4
    "4 tick c",
  ]);
  assert.equal(d.tick, 4);
  assert.equal(d.epoch, epoch);
  assert.deepEqual(d.entities().map((e) => (e as Probe).name), ["b", "c"]);
  assert.ok(d.replaying, "every tick of a replay is replayed");
  assert.throws(() => d.spawn(new Probe("late", rec)), (e: unknown) => e instanceof EventStreamError && e.code === "not_processing");
  d.sendEvent("move", "x"); // a replay sends nothing
});

test("an entity spawned from SimTick first ticks the next tick; _a clears entities and pending spawns", () => {
  const rec = new Recorder();
  class Spawner implements Sim {
    onReset(d: SimDriver): void {
      rec.logf(d, `reset entities=${d.entities().length}`);
      d.spawn(new Probe("root", rec, "kid"));
    }
    onConnect(): void {}
    onDisconnect(): void {}
    onClientEvent(): void {}
  }
  SimDriver.replay(new Spawner(), [ev(0, "_a", "_", epoch)], 3);
  assert.deepEqual(rec.log, ["0 reset entities=0", "1 tick root", "2 tick root", "2 tick kid"]);

  rec.log = [];
  const d = SimDriver.replay(new Spawner(), [ev(0, "_a", "_", epoch), ev(2, "_a", "_", "other")], 3);
  // kid, spawned by root's SimTick at 1, was pending when _a came: dropped.
  assert.deepEqual(rec.log, ["0 reset entities=0", "1 tick root", "2 reset entities=0"]);
  assert.deepEqual(d.entities().map((e) => (e as Probe).name), ["root"]);
});

test("a replay refuses a stream that does not start with _a at 0, or goes past until", () => {
  const sim = new Recorder();
  assert.throws(() => SimDriver.replay(sim, [], 3), RangeError);
  assert.throws(() => SimDriver.replay(sim, [ev(1, "_a", "_", epoch)], 3), RangeError);
  assert.throws(() => SimDriver.replay(sim, [ev(0, "_a", "_", epoch), ev(3, "m", "1")], 3), RangeError);
  assert.throws(() => SimDriver.replay(sim, [ev(0, "_a", "_", epoch), ev(2, "m", "1"), ev(1, "m", "1")], 3), RangeError);
  assert.deepEqual(sim.log, []);
});

test("Rand is re-derived every tick: a tick draws the same whatever earlier ticks drew", () => {
  const draws = (extra: number): bigint[] => {
    const out: bigint[] = [];
    class Drawer implements Sim, Entity {
      onReset(d: SimDriver): void {
        d.spawn(this);
      }
      onConnect(): void {}
      onDisconnect(): void {}
      onClientEvent(): void {}
      simTick(d: SimDriver): void {
        if (d.tick === 1) for (let i = 0; i < extra; i++) d.rand().uint64();
        if (d.tick === 2) out.push(d.rand().uint64(), d.rand().uint64());
      }
    }
    SimDriver.replay(new Drawer(), [ev(0, "_a", "_", epoch)], 3);
    return out;
  };
  assert.deepEqual(draws(0), draws(7));
});

/** Scripted answers the client's requests with replies the test gives. */
class Scripted {
  #waiting: ((body: string) => void)[] = [];
  readonly fetch: FetchLike = (_url, init) =>
    new Promise((resolve, reject) => {
      this.#waiting.push((body) => resolve(new Response(body, { status: 200, headers: { "Content-Type": "application/json" } })));
      init.signal?.addEventListener("abort", () => reject(new DOMException("aborted", "AbortError")));
    });

  /** reply answers the next request with r, and lets the client and driver take it in. */
  async reply(r: object): Promise<void> {
    for (let i = 0; this.#waiting.length === 0; i++) {
      assert.ok(i < 1000, "the client sent no request");
      await new Promise((res) => setTimeout(res, 2));
    }
    this.#waiting.shift()!(JSON.stringify({ id: "1", epoch: "e", tps: 20, ckpt: 0, ...r }));
    for (let i = 0; i < 20; i++) await new Promise((res) => setImmediate(res));
  }
}

const nop: Sim = { onReset() {}, onConnect() {}, onDisconnect() {}, onClientEvent() {} };
const reset = ev(0, "_a", "_", "e");

function fed(cfg: { maxTicksPerUpdate?: number } = {}): { d: SimDriver; s: Scripted; c: EventStreamClient } {
  const s = new Scripted();
  const c = new EventStreamClient({ baseUrl: "http://test.invalid", stream: "s", privateId: "p", WebSocket: null, fetch: s.fetch, syncIntervalMs: 1 });
  return { d: new SimDriver(c, nop, cfg), s, c };
}

const tickMs = 50;

test("pacing follows the tick rate, never reaches the last t, and banks no time while waiting", async () => {
  const { d, s } = fed();
  d.update(0); // starts the network
  await s.reply({ t: 5, events: [reset] });
  assert.equal(d.update(0), 1, "5 available: 1 to come within 4 of t");
  assert.equal(d.update(tickMs / 2), 0);
  assert.equal(d.update(tickMs), 1, "one tick per 50 ms");
  assert.equal(d.update(3 * tickMs), 2);
  assert.equal(d.update(10 * tickMs), 1, "never at or past the last t received");
  assert.equal(d.tick, 4);
  assert.equal(d.update(20 * tickMs), 0);
  await s.reply({ t: 9, events: [] });
  assert.equal(d.update(20 * tickMs + tickMs / 2), 1, "not a burst of 4");
  assert.equal(d.update(21 * tickMs + tickMs / 2), 1);
  await d.close();
});

test("pacing catches up when behind, a bounded number of ticks per update", async () => {
  const { d, s } = fed({ maxTicksPerUpdate: 10 });
  d.update(0);
  await s.reply({ t: 30, events: [reset] });
  assert.equal(d.update(0), 10, "bounded work per call");
  assert.equal(d.update(1), 10);
  assert.equal(d.update(2), 6, "catch up to within 4 ticks of t");
  assert.equal(d.tick, 25);
  assert.equal(d.update(3), 0);
  assert.equal(d.update(tickMs + 3), 1);
  await d.close();
});

test("ticks before the first up-to-date reply are replayed: sendEvent refuses there, and sends after", async () => {
  const seen: [number, boolean, string][] = [];
  class Sender implements Sim, Entity {
    onReset(d: SimDriver): void {
      d.spawn(this);
    }
    onConnect(): void {}
    onDisconnect(): void {}
    onClientEvent(): void {}
    simTick(d: SimDriver): void {
      try {
        d.sendEvent("tick", String(d.tick));
        seen.push([d.tick, d.replaying, "sent"]);
      } catch (e) {
        seen.push([d.tick, d.replaying, (e as EventStreamError).code]);
      }
    }
  }
  const s = new Scripted();
  const c = new EventStreamClient({ baseUrl: "http://test.invalid", stream: "s", privateId: "p", WebSocket: null, fetch: s.fetch, syncIntervalMs: 1 });
  const d = new SimDriver(c, new Sender(), { catchUpThreshold: 1 });
  d.update(0);
  await s.reply({ t: 3, events: [reset], more: true });
  await s.reply({ t: 5, events: [] }); // up to date: ticks from 5 on are new
  await s.reply({ t: 8, events: [] });
  d.update(0); // catches up to within 1 of 8: ticks 0 to 6
  assert.deepEqual(seen, [
    [1, true, "replaying"],
    [2, true, "replaying"],
    [3, true, "replaying"],
    [4, true, "replaying"],
    [5, false, "sent"],
    [6, false, "sent"],
  ]);
  assert.equal(c.pending, 2);
  await d.close();
});

test("run rejects with the server's error when the network stops for good", async () => {
  const refusing: FetchLike = async () =>
    new Response('{"error":{"code":"stream_full","message":"the stream has its maximum of clients"}}', { status: 409, headers: { "Content-Type": "application/json" } });
  const c = new EventStreamClient({ baseUrl: "http://test.invalid", stream: "s", privateId: "p", WebSocket: null, fetch: refusing });
  const d = new SimDriver(c, nop, { frames: (cb) => {
    const h = setTimeout(() => cb(performance.now()), 1);
    return () => clearTimeout(h);
  } });
  await assert.rejects(d.run(), (e: unknown) => e instanceof EventStreamError && e.code === "stream_full" && e.status === 409);
  assert.ok(d.err instanceof EventStreamError);
});
