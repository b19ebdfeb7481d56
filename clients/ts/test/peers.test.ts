// A TypeScript SimDriver and a Go gamesim.Driver (internal/refsim/refpeer)
// playing the reference sim in one stream of the real server: they agree
// on every checkpoint's hash, so the server names nobody; and each joins a
// compacted stream from a snapshot the other made.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { before, test } from "node:test";

import { EventStreamClient, SimDriver, hashOf, type WebSocketConstructor } from "../src/index.js";
import { RefSim } from "./refsim.js";
import { buildGo, startServer, type Server } from "./server.js";

const WS = (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket ?? null;
const every = 20; // the server's default checkpoint interval

let refpeer: string;
before(() => {
  refpeer = buildGo("./internal/refsim/refpeer", "refpeer");
});

/** TsPeer is the reference sim, counting its resets and keeping the hash of every checkpoint tick. */
class TsPeer extends RefSim {
  resets = 0;
  readonly hashes = new Map<number, string>();

  override onReset(d: SimDriver): void {
    this.resets++;
    super.onReset(d);
  }

  stateHash(d: SimDriver): bigint {
    if (d.tick % every === 0) this.hashes.set(d.tick, hashOf(d.snapshot()));
    return 0n;
  }
}

/** playTs plays the reference sim in stream for ms, pressing a key every 100 ms. */
async function playTs(srv: Server, stream: string, ms: number): Promise<{ peer: TsPeer; driver: SimDriver }> {
  const client = new EventStreamClient({ baseUrl: srv.url, stream, storage: null, WebSocket: WS });
  const peer = new TsPeer();
  const driver = new SimDriver(client, peer, { recordHashes: 1 });
  const ctl = new AbortController();
  const keys = setInterval(() => {
    try {
      driver.sendEvent("move", "lrud"[Math.floor(Math.random() * 4)]!);
    } catch {
      // replaying: nothing is sent
    }
  }, 100);
  const timer = setTimeout(() => ctl.abort(), ms);
  try {
    await driver.run(ctl.signal);
  } finally {
    clearInterval(keys);
    clearTimeout(timer);
  }
  assert.equal(driver.err, null);
  return { peer, driver };
}

interface GoResult {
  hashes: Map<number, string>;
  resets: number;
  last: number;
}

/** playGo runs refpeer in stream for ms. */
function playGo(srv: Server, stream: string, ms: number): Promise<GoResult> {
  return new Promise((resolve, reject) => {
    const p = spawn(refpeer, ["-url", srv.url, "-stream", stream, "-id", "go-" + stream, "-duration", `${ms}ms`], { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    p.stdout!.on("data", (b: Buffer) => (out += b.toString()));
    p.once("error", reject);
    p.once("exit", (code) => {
      if (code !== 0) return reject(new Error(`refpeer exited with ${code}`));
      const r: GoResult = { hashes: new Map(), resets: -1, last: -1 };
      for (const line of out.trim().split("\n")) {
        const v = JSON.parse(line) as { t?: number; h?: string; resets?: number; last?: number };
        if (v.h !== undefined) r.hashes.set(v.t!, v.h);
        if (v.resets !== undefined) [r.resets, r.last] = [v.resets, v.last!];
      }
      resolve(r);
    });
  });
}

/** agree checks that both sides hashed at least min common checkpoints, all equal, and returns them. */
function agree(a: Map<number, string>, b: Map<number, string>, min: number): number[] {
  const common = [...a.keys()].filter((t) => b.has(t)).sort((x, y) => x - y);
  assert.ok(common.length >= min, `only ${common.length} common checkpoints: ${[...a.keys()]} and ${[...b.keys()]}`);
  for (const t of common) assert.equal(a.get(t), b.get(t), `the hashes of checkpoint ${t}`);
  return common;
}

async function waitForSnapshot(srv: Server, stream: string, minTick: number): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const r = await fetch(`${srv.url}/${stream}/snapshot`, { method: "HEAD" });
    const t = Number(r.headers.get("Eventstream-Tick"));
    if (r.ok && t >= minTick) return t;
    await new Promise((res) => setTimeout(res, 50));
  }
  throw new Error(`no snapshot of ${stream} at or after tick ${minTick}`);
}

test("a Go and a TypeScript client in one stream agree on every checkpoint, and the server names nobody", async () => {
  const srv = await startServer();
  try {
    const [ts, go] = await Promise.all([playTs(srv, "both", 4000), playGo(srv, "both", 4000)]);
    assert.equal(ts.peer.resets, 1);
    assert.equal(go.resets, 1);
    agree(ts.peer.hashes, go.hashes, 3);
    // Both sent moves: the state is not the empty one.
    assert.ok(ts.peer.players.length === 2 && go.last > 40);
    const desyncs = (await (await fetch(`${srv.url}/both/desyncs`)).json()) as { desyncs: unknown[] };
    assert.deepEqual(desyncs.desyncs, []);
  } finally {
    await srv.stop();
  }
});

test("a TypeScript client joins a compacted stream from a Go client's snapshot", async () => {
  const srv = await startServer("-snapshot-every", "10", "-history-retain", "0s");
  try {
    const go = playGo(srv, "fromgo", 7000);
    await waitForSnapshot(srv, "fromgo", 2 * every);
    const ts = await playTs(srv, "fromgo", 3000);
    assert.equal(ts.peer.resets, 0, "the TS client started from tick 0, not from the snapshot");
    agree(ts.peer.hashes, (await go).hashes, 2);
    assert.equal((await go).resets, 1);
  } finally {
    await srv.stop();
  }
});

test("a Go client joins a compacted stream from a TypeScript client's snapshot", async () => {
  const srv = await startServer("-snapshot-every", "10", "-history-retain", "0s");
  try {
    const ts = playTs(srv, "fromts", 7000);
    await waitForSnapshot(srv, "fromts", 2 * every);
    const go = await playGo(srv, "fromts", 3000);
    assert.equal(go.resets, 0, "the Go client started from tick 0, not from the snapshot");
    agree((await ts).peer.hashes, go.hashes, 2);
    assert.equal((await ts).peer.resets, 1);
  } finally {
    await srv.stop();
  }
});

test("a TypeScript client that diverges is named, uploads its dump, and resyncs from the snapshot", async () => {
  const srv = await startServer("-snapshot-every", "10");
  try {
    const goA = playGo(srv, "heal", 9000);
    const goB = playGo(srv, "heal", 9000);
    await waitForSnapshot(srv, "heal", 2 * every);
    // A TS client joins, then breaks its own state once (a bug, or a cheat).
    const client = new EventStreamClient({ baseUrl: srv.url, stream: "heal", storage: null, WebSocket: WS });
    const peer = new TsPeer();
    const driver = new SimDriver(client, peer, { recordHashes: 1 });
    let broken = -1;
    const breaker = setInterval(() => {
      if (broken < 0 && !driver.replaying && driver.tick > 0 && peer.players.length > 0) {
        peer.players[0]!.score += 1000;
        broken = driver.tick;
      }
    }, 50);
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), 5000);
    await driver.run(ctl.signal);
    clearInterval(breaker);
    clearTimeout(timer);
    assert.ok(broken > 0);
    assert.ok(driver.resyncs >= 1, "the TS client never resynced");

    const desyncs = (await (await fetch(`${srv.url}/heal/desyncs`)).json()) as { desyncs: { t: number; clients: { id: string; dump?: string }[] }[] };
    const named = desyncs.desyncs.flatMap((x) => x.clients.filter((c) => c.id === client.publicId));
    assert.ok(named.length >= 1, "the server never named the TS client");
    assert.ok(named.some((c) => c.dump), "the TS client uploaded no dump");
    assert.ok(desyncs.desyncs.every((x) => x.t > broken - every), "a desync before the state was broken");

    // After the resync it agrees with the Go clients again.
    const [a, b] = [await goA, await goB];
    agree(a.hashes, b.hashes, 5);
    const last = Math.max(...peer.hashes.keys());
    assert.ok(last > broken + every);
    assert.equal(peer.hashes.get(last), a.hashes.get(last), `checkpoint ${last}, after the resync`);
  } finally {
    await srv.stop();
  }
});
