// Spectators (docs/protocol.md, "Spectators"; Go's twins:
// pkg/esclient/spectate_test.go, pkg/gamesim/spectate_test.go): a TS
// spectator reads what the players read, by poll and by push, never
// appears in the stream, asks for nothing it may not, and refuses locally
// what it may not do.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { EventStreamClient, EventStreamError, LocalCode, SimDriver, hashOf, type Event, type FetchLike, type Transport, type Update, type WebSocketConstructor, type WebSocketLike } from "../src/index.js";
import { RefSim } from "./refsim.js";
import { collect, startServer, type Server } from "./server.js";

const WS = (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket!;

let srv: Server;
before(async () => {
  srv = await startServer();
});
after(async () => {
  await srv.stop();
});

/** Wire records what a client sent: every HTTP request (method, URL, body) and every push upgrade and message. */
class Wire {
  requests: { method: string; url: string; body: unknown }[] = [];
  upgrades: string[] = [];
  messages: string[] = [];

  readonly fetch: FetchLike = (url, init) => {
    this.requests.push({ method: init.method ?? "GET", url, body: init.body ?? null });
    return fetch(url, init);
  };

  get WebSocket(): WebSocketConstructor {
    const wire = this;
    return class {
      readonly ws: WebSocketLike;
      constructor(url: string) {
        wire.upgrades.push(url);
        this.ws = new WS(url);
      }
      send(data: string): void {
        wire.messages.push(data);
        this.ws.send(data);
      }
      close(code?: number, reason?: string): void {
        this.ws.close(code, reason);
      }
      set onopen(f: WebSocketLike["onopen"]) {
        this.ws.onopen = f;
      }
      set onmessage(f: WebSocketLike["onmessage"]) {
        this.ws.onmessage = f;
      }
      set onclose(f: WebSocketLike["onclose"]) {
        this.ws.onclose = f;
      }
      set onerror(f: WebSocketLike["onerror"]) {
        this.ws.onerror = f;
      }
    } as unknown as WebSocketConstructor;
  }

  /** spectated checks that every request and upgrade asked to spectate, and that nothing was posted, reported or sent. */
  spectated(): void {
    assert.ok(this.requests.length + this.upgrades.length > 0, "the spectator never asked");
    for (const r of this.requests) {
      assert.equal(r.method, "GET", `a spectator's ${r.method}`);
      assert.equal(r.body, null, "a spectator's request with a body");
      assert.equal(new URL(r.url).searchParams.get("spectate"), "1", "a spectator's request that does not ask to spectate");
    }
    for (const u of this.upgrades) assert.equal(new URL(u).searchParams.get("spectate"), "1", "a spectator's upgrade that does not ask to spectate");
    assert.deepEqual(this.messages, [], "a spectator sent push messages");
  }
}

const events = (us: Update[]): Event[] => us.flatMap((u) => u.events);
const below = (es: Event[], t: number): Event[] => es.filter((e) => e.t < t);
const lastT = (us: Update[]): number => us[us.length - 1]!.t;

for (const transport of ["poll", "push"] as Transport[]) {
  test(`a ${transport} spectator waits for the stream, reads what the players read, in order, and never appears in it`, async () => {
    const stream = `watch-${transport}`;
    const wire = new Wire();
    const watcher = new EventStreamClient({ baseUrl: srv.url, stream, spectate: true, transport, fetch: wire.fetch, WebSocket: wire.WebSocket, maxBackoffMs: 200 });
    assert.ok(watcher.spectator);
    assert.match(watcher.privateId, /^[0-9a-f-]{36}$/, "a spectator gets a random private id");
    const rounds = 5;
    const done = (us: Update[]): boolean => events(us).filter((e) => e.type === "m").length === 2 * rounds;
    // The spectator starts first: the stream does not exist yet (not_found), and it waits.
    const watching = collect(watcher, done);
    for (const start = Date.now(); watcher.lastError?.code !== "not_found"; ) {
      assert.ok(Date.now() - start < 10_000, "the spectator was never told that the stream does not exist");
      await new Promise((r) => setTimeout(r, 5));
    }
    const players = ["1", "2"].map((n) => new EventStreamClient({ baseUrl: srv.url, stream, privateId: `player-${n}`, WebSocket: null }));
    const seen: Update[][] = players.map(() => []);
    for (const [i, p] of players.entries()) seen[i]!.push(await p.sync());
    for (let n = 0; n < rounds; n++) {
      await new Promise((r) => setTimeout(r, 150)); // the spectator reads as the game goes
      for (const p of players) p.send("m", `${p.publicId}.${n}`);
      for (const [i, p] of players.entries()) seen[i]!.push(await p.sync());
    }
    for (const [i, p] of players.entries()) seen[i]!.push(...(await collect(p, (us) => done([...seen[i]!, ...us]))));
    const watched = await watching;

    for (const u of watched) assert.equal(u.publicId, "", "a spectator has no public id");
    assert.equal(watcher.publicId, "");
    const mine = events(watched);
    assert.equal(mine[0]?.type, "_a");
    for (const e of mine) {
      assert.ok(["_", "1", "2"].includes(e.origin), `an event of someone else: ${JSON.stringify(e)}`);
      if (e.type === "_c" || e.type === "_d") assert.ok(["1", "2"].includes(e.body), `a spectator appeared: ${JSON.stringify(e)}`);
    }
    for (const us of seen) {
      const t = Math.min(lastT(us), lastT(watched));
      assert.deepEqual(below(mine, t), below(events(us), t), "the spectator read another stream than a player");
    }
    if (transport === "push") assert.ok(watched.length > wire.requests.length, `${watched.length} updates, ${wire.requests.length} polls: none pushed`);
    wire.spectated();
  });
}

test("a spectator refuses locally what it may not do: send, uploads; its hash reports are not sent", async () => {
  const stream = "watch-refuse";
  const player = new EventStreamClient({ baseUrl: srv.url, stream, privateId: "player", WebSocket: null });
  await player.sync();
  const wire = new Wire();
  const watcher = new EventStreamClient({ baseUrl: srv.url, stream, spectate: true, WebSocket: null, fetch: wire.fetch });
  const isSpectator = (e: unknown): boolean => e instanceof EventStreamError && e.status === 0 && e.code === LocalCode.Spectator && !e.retryable;
  assert.throws(() => watcher.send("m", "x"), isSpectator);
  await assert.rejects(watcher.putSnapshot(0, new Uint8Array([1])), isSpectator);
  await assert.rejects(watcher.putDump(0, new Uint8Array([1])), isSpectator);
  const u = await watcher.sync();
  watcher.reportHash(0, "ab");
  await watcher.sync();
  assert.equal(watcher.pending, 0);
  assert.equal(u.publicId, "");
  wire.spectated();
  assert.equal(wire.requests.length, 2, "the refusals sent something");
  // The stream has its one player, nothing else.
  await new Promise((r) => setTimeout(r, 120)); // its _c's tick ends
  const all = await new EventStreamClient({ baseUrl: srv.url, stream, spectate: true, WebSocket: null }).sync();
  assert.deepEqual(all.events.map((e) => e.type), ["_a", "_c"]);
});

test("a spectator answered as a player stops: sync and run reject with not_spectating, by poll and by push", async () => {
  const asPlayer = JSON.stringify({ id: "2", t: 1, epoch: "6db8b8f2-16c9-427d-9fc9-de43870ed0db", tps: 20, ckpt: 20, events: [] });
  const requests: string[] = [];
  const old: FetchLike = async (url) => {
    requests.push(url);
    return new Response(asPlayer, { status: 200, headers: { "Content-Type": "application/json" } });
  };
  const isNotSpectating = (e: unknown): boolean => e instanceof EventStreamError && e.code === LocalCode.NotSpectating && !e.retryable;
  const poller = new EventStreamClient({ baseUrl: "http://old.invalid", stream: "s", spectate: true, WebSocket: null, fetch: old });
  await assert.rejects(poller.sync(), isNotSpectating);
  await assert.rejects(poller.run(() => assert.fail("an update of a server that took a spectator for a player")), isNotSpectating);
  assert.ok(requests.every((u) => new URL(u).searchParams.get("spectate") === "1"));

  // An old server's push connection answers with a public id.
  class OldServerSocket {
    onopen: ((ev: unknown) => void) | null = null;
    onmessage: ((ev: { data: string }) => void) | null = null;
    onclose: ((ev: { code: number }) => void) | null = null;
    onerror: ((ev: unknown) => void) | null = null;
    constructor(url: string) {
      requests.push(url);
      setTimeout(() => {
        this.onopen?.({});
        this.onmessage?.({ data: asPlayer });
      }, 1);
    }
    send(): void {}
    close(): void {}
  }
  const pusher = new EventStreamClient({ baseUrl: "http://old.invalid", stream: "s", spectate: true, transport: "push", WebSocket: OldServerSocket as unknown as WebSocketConstructor, fetch: old });
  await assert.rejects(pusher.run(() => assert.fail("an update of a server that took a spectator for a player")), isNotSpectating);
  assert.match(requests[requests.length - 1]!, /^ws:.*[?&]spectate=1$/);
});

/** Watched is the reference sim, keeping the hash of its state after every tick. */
class Watched extends RefSim {
  readonly hashes = new Map<number, string>();
  stateHash(d: SimDriver): bigint {
    this.hashes.set(d.tick, hashOf(d.snapshot()));
    return 0n;
  }
}

test("a spectator's SimDriver plays the players' game tick for tick, cannot send, and reports nothing", async () => {
  const stream = "watch-sim";
  const player = new Watched();
  const playerDriver = new SimDriver(new EventStreamClient({ baseUrl: srv.url, stream, privateId: "sim-player", WebSocket: null }), player, { recordHashes: 1 });
  const wire = new Wire();
  const watched = new Watched();
  const watcher = new EventStreamClient({ baseUrl: srv.url, stream, spectate: true, transport: "push", fetch: wire.fetch, WebSocket: wire.WebSocket, maxBackoffMs: 200 });
  const watcherDriver = new SimDriver(watcher, watched, { recordHashes: 1 });
  const ctl = new AbortController();
  const keys = setInterval(() => {
    try {
      playerDriver.sendEvent("move", "lrud"[Math.floor(Math.random() * 4)]!);
    } catch {
      // replaying: nothing is sent
    }
  }, 50);
  const common = (): number[] => [...player.hashes.keys()].filter((k) => watched.hashes.has(k));
  const check = setInterval(() => common().length > 60 && ctl.abort(), 50); // three checkpoints of 20 ticks
  const timer = setTimeout(() => ctl.abort(), 20_000);
  try {
    await Promise.all([playerDriver.run(ctl.signal), watcherDriver.run(ctl.signal)]);
  } finally {
    clearInterval(keys);
    clearInterval(check);
    clearTimeout(timer);
  }
  assert.equal(playerDriver.err, null);
  assert.equal(watcherDriver.err, null);
  assert.ok(common().length > 60, `only ${common().length} ticks in common`);
  for (const k of common()) assert.equal(watched.hashes.get(k), player.hashes.get(k), `the spectator's state after tick ${k}`);
  assert.throws(() => watcherDriver.sendEvent("move", "l"), (e: unknown) => e instanceof EventStreamError && e.code === LocalCode.Spectator);
  assert.equal(watcherDriver.publicId, "");
  assert.deepEqual(watched.players.map((p) => p.id), ["1"], "the spectator joined the game");
  wire.spectated();
});
