// A TypeScript SimDriver and a Go gamesim.Driver (internal/refsim/refpeer)
// playing the reference sim in one stream of the real server: they agree
// on every checkpoint's hash, so the server names nobody; each joins a
// compacted stream from a snapshot the other made; and a TS client that
// diverges is named and heals. Each side plays until what the test needs
// has happened (not for a fixed time), so a loaded machine only slows it.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { before, test } from "node:test";

import { EventStreamClient, SimDriver, hashOf, type WebSocketConstructor } from "../src/index.js";
import { RefSim } from "./refsim.js";
import { buildGo, startServer, type Server } from "./server.js";

const WS = (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket ?? null;
const every = 20; // the server's default checkpoint interval
const patience = 30_000; // the longest any side plays

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

interface Ts {
  peer: TsPeer;
  driver: SimDriver;
  client: EventStreamClient;
}

/**
 * playTs plays the reference sim in stream, pressing a key every 100 ms,
 * until done says so (checked every 50 ms; during returns it, to act on
 * the game while it runs).
 */
async function playTs(srv: Server, stream: string, done: (ts: Ts) => boolean, during?: (ts: Ts) => void): Promise<Ts> {
  const client = new EventStreamClient({ baseUrl: srv.url, stream, storage: null, WebSocket: WS });
  const peer = new TsPeer();
  const driver = new SimDriver(client, peer, { recordHashes: 1 });
  const ts = { peer, driver, client };
  const ctl = new AbortController();
  const keys = setInterval(() => {
    try {
      driver.sendEvent("move", "lrud"[Math.floor(Math.random() * 4)]!);
    } catch {
      // replaying: nothing is sent
    }
  }, 100);
  const check = setInterval(() => {
    during?.(ts);
    if (done(ts)) ctl.abort();
  }, 50);
  const timer = setTimeout(() => ctl.abort(), patience);
  try {
    await driver.run(ctl.signal);
  } finally {
    clearInterval(keys);
    clearInterval(check);
    clearTimeout(timer);
  }
  assert.equal(driver.err, null);
  assert.ok(done(ts), `the TS client in ${stream} gave up after ${patience} ms`);
  return ts;
}

interface GoResult {
  hashes: Map<number, string>;
  resets: number;
  last: number;
}

/** Go is a running refpeer: stop ends it (after a grace, so that it reaches the ticks the TS side reached) and gives what it printed. */
interface Go {
  stop(graceMs?: number): Promise<GoResult>;
  /** The ticks it hashed so far. */
  hashes: Map<number, string>;
}

/** playGo runs refpeer in stream until stopped (or patience runs out). */
function playGo(srv: Server, stream: string): Go {
  const p = spawn(refpeer, ["-url", srv.url, "-stream", stream, "-id", `go-${stream}-${Math.random().toString(36).slice(2)}`, "-duration", `${patience}ms`], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const r: GoResult = { hashes: new Map(), resets: -1, last: -1 };
  let buf = "";
  p.stdout!.on("data", (b: Buffer) => {
    buf += b.toString();
    let i: number;
    while ((i = buf.indexOf("\n")) >= 0) {
      const v = JSON.parse(buf.slice(0, i)) as { t?: number; h?: string; resets?: number; last?: number };
      buf = buf.slice(i + 1);
      if (v.h !== undefined) r.hashes.set(v.t!, v.h);
      if (v.resets !== undefined) [r.resets, r.last] = [v.resets, v.last!];
    }
  });
  const exited = new Promise<number | null>((resolve, reject) => {
    p.once("error", reject);
    p.once("exit", resolve);
  });
  return {
    hashes: r.hashes,
    async stop(graceMs = 500) {
      await new Promise((res) => setTimeout(res, graceMs));
      p.kill("SIGTERM");
      const code = await exited;
      assert.equal(code, 0, "refpeer failed");
      assert.notEqual(r.resets, -1, "refpeer printed no summary");
      return r;
    },
  };
}

/** agree checks that both sides hashed at least min common checkpoints, all equal, and returns them. */
function agree(a: Map<number, string>, b: Map<number, string>, min: number): number[] {
  const common = [...a.keys()].filter((t) => b.has(t)).sort((x, y) => x - y);
  assert.ok(common.length >= min, `only ${common.length} common checkpoints: ${[...a.keys()]} and ${[...b.keys()]}`);
  for (const t of common) assert.equal(a.get(t), b.get(t), `the hashes of checkpoint ${t}`);
  return common;
}

async function waitForSnapshot(srv: Server, stream: string, minTick: number): Promise<number> {
  for (const start = Date.now(); Date.now() - start < patience; ) {
    const r = await fetch(`${srv.url}/${stream}/snapshot`, { method: "HEAD" });
    const t = Number(r.headers.get("Eventstream-Tick"));
    if (r.ok && t >= minTick) return t;
    await new Promise((res) => setTimeout(res, 50));
  }
  throw new Error(`no snapshot of ${stream} at or after tick ${minTick}`);
}

/** hashedAfter counts the checkpoints a peer hashed after tick t. */
const hashedAfter = (hashes: Map<number, string>, t: number): number => [...hashes.keys()].filter((k) => k > t).length;

test("a Go and a TypeScript client in one stream agree on every checkpoint, and the server names nobody", async () => {
  const srv = await startServer();
  try {
    const go = playGo(srv, "both");
    const ts = await playTs(srv, "both", ({ peer }) => peer.players.length === 2 && hashedAfter(peer.hashes, 2 * every) >= 3);
    const gr = await go.stop();
    assert.equal(ts.peer.resets, 1);
    assert.equal(gr.resets, 1);
    agree(ts.peer.hashes, gr.hashes, 4);
    const desyncs = (await (await fetch(`${srv.url}/both/desyncs`)).json()) as { desyncs: unknown[] };
    assert.deepEqual(desyncs.desyncs, []);
  } finally {
    await srv.stop();
  }
});

test("a TypeScript client joins a compacted stream from a Go client's snapshot", async () => {
  const srv = await startServer("-snapshot-every", "10", "-history-retain", "0s");
  try {
    const go = playGo(srv, "fromgo");
    const snap = await waitForSnapshot(srv, "fromgo", 2 * every);
    const ts = await playTs(srv, "fromgo", ({ peer }) => hashedAfter(peer.hashes, snap) >= 3);
    const gr = await go.stop();
    assert.equal(ts.peer.resets, 0, "the TS client started from tick 0, not from the snapshot");
    assert.ok(Math.min(...ts.peer.hashes.keys()) > snap, "the TS client hashed a checkpoint at or before the snapshot");
    agree(ts.peer.hashes, gr.hashes, 2);
    // The snapshot it joined from is a checkpoint the server verified: the hash the Go client reported of it.
    const last = ts.driver.lastCheckpoint;
    assert.ok(last && last.t >= snap, `lastCheckpoint ${JSON.stringify(last)}, joined from ${snap}`);
    assert.equal(last.epoch, ts.client.epoch);
    assert.equal(last.hash, gr.hashes.get(last.t), `the Go client's hash of checkpoint ${last.t}`);
    assert.equal(gr.resets, 1);
  } finally {
    await srv.stop();
  }
});

test("a Go client joins a compacted stream from a TypeScript client's snapshot", async () => {
  const srv = await startServer("-snapshot-every", "10", "-history-retain", "0s");
  try {
    let go: Go | null = null;
    let snap = -1;
    void waitForSnapshot(srv, "fromts", 2 * every).then((t) => {
      snap = t;
      go = playGo(srv, "fromts");
    });
    const ts = await playTs(srv, "fromts", () => go !== null && hashedAfter(go.hashes, snap) >= 3);
    const gr = await go!.stop(0);
    assert.equal(gr.resets, 0, "the Go client started from tick 0, not from the snapshot");
    agree(ts.peer.hashes, gr.hashes, 2);
    // The TS client uploaded the stream's first snapshot: a checkpoint the server verified, of the hash it reported.
    const last = ts.driver.lastCheckpoint;
    assert.ok(last && last.t >= snap, `lastCheckpoint ${JSON.stringify(last)}, the first snapshot ${snap}`);
    assert.equal(last.hash, ts.peer.hashes.get(last.t), `the TS client's hash of checkpoint ${last.t}`);
    assert.equal(ts.peer.resets, 1);
  } finally {
    await srv.stop();
  }
});

test("a TypeScript client that diverges is named, uploads its dump, and resyncs from the snapshot", async () => {
  const srv = await startServer("-snapshot-every", "10");
  try {
    const goA = playGo(srv, "heal");
    const goB = playGo(srv, "heal");
    await waitForSnapshot(srv, "heal", 2 * every);
    // A TS client joins, then breaks its own state once (a bug, or a cheat),
    // and plays until it has resynced and hashed a few checkpoints since.
    let broken = -1;
    let healedAt = -1;
    const ts = await playTs(
      srv,
      "heal",
      ({ driver, peer }) => healedAt >= 0 && hashedAfter(peer.hashes, healedAt) >= 3,
      ({ driver, peer }) => {
        if (broken < 0 && !driver.replaying && driver.tick > 0 && peer.players.length > 0) {
          peer.players[0]!.score += 1000;
          broken = driver.tick;
        }
        if (healedAt < 0 && driver.resyncs > 0 && !driver.replaying) healedAt = driver.tick;
      },
    );
    const [a, b] = [await goA.stop(), await goB.stop()];
    assert.ok(broken > 0);
    assert.ok(ts.driver.resyncs >= 1);

    const desyncs = (await (await fetch(`${srv.url}/heal/desyncs`)).json()) as { desyncs: { t: number; clients: { id: string; dump?: string }[] }[] };
    const named = desyncs.desyncs.flatMap((x) => x.clients.filter((c) => c.id === ts.client.publicId));
    assert.ok(named.length >= 1, "the server never named the TS client");
    assert.ok(named.some((c) => c.dump), "the TS client uploaded no dump");
    assert.ok(desyncs.desyncs.every((x) => x.t > broken - every), "a desync before the state was broken");

    // After the resync it agrees with the Go clients again.
    agree(a.hashes, b.hashes, 5);
    const since = [...ts.peer.hashes.keys()].filter((k) => k > healedAt);
    for (const k of since) assert.equal(ts.peer.hashes.get(k), a.hashes.get(k), `checkpoint ${k}, after the resync`);
    assert.ok(since.filter((k) => a.hashes.has(k)).length >= 2);
  } finally {
    await srv.stop();
  }
});
