// lastCheckpoint (docs/gamesim-spec.md, "The last checkpoint"; Go's twin:
// pkg/esclient/checkpoint_test.go's TestLastCheckpoint) against the real
// server: a client learns a checkpoint's canonical hash from the server's
// snapshot, the one it uploaded and the server stored or the one it
// fetched, and from nothing else. (Which one it keeps: the vectors of
// checkpoints.json, in vectors.test.ts.)

import assert from "node:assert/strict";
import { test } from "node:test";

import { EventStreamClient, EventStreamError, hashOf, type Checkpoint } from "../src/index.js";
import { startServer } from "./server.js";

const utf8 = new TextEncoder();

test("lastCheckpoint is the snapshot the client uploaded and the server stored, or the one it fetched", async () => {
  const srv = await startServer("-snapshot-every", "1");
  try {
    const [a, b] = ["a", "b"].map((id) => new EventStreamClient({ baseUrl: srv.url, stream: "ck", privateId: id, WebSocket: null }));
    const clients = [a!, b!];
    // judge has both clients report state for checkpoint ck, once it is sealed, and returns the one asked for its snapshot.
    const judge = async (ck: number, state: Uint8Array): Promise<[EventStreamClient, EventStreamClient]> => {
      for (const c of clients) {
        c.send("move", "x"); // events since the last snapshot: one is asked for
        await c.sync();
      }
      while (clients.some((c) => c.lastT <= ck)) {
        await new Promise((r) => setTimeout(r, 50)); // a tick
        for (const c of clients) await c.sync(); // until ck is sealed for both
      }
      for (const c of clients) c.reportHash(ck, hashOf(state));
      let asked: EventStreamClient | null = null;
      for (const c of clients) if ((await c.sync()).snap === ck) asked = c;
      assert.ok(asked, `nobody was asked for the snapshot of ${ck}`);
      return asked === a ? [a!, b!] : [b!, a!];
    };

    for (const c of clients) assert.equal(c.lastCheckpoint, null, "before any checkpoint");
    let state = utf8.encode("state at 20");
    let [asked, other] = await judge(20, state);
    assert.equal(asked.lastCheckpoint, null, "judged: the server asks for the snapshot, but says no hash");
    assert.equal(other.lastCheckpoint, null, "judged: the server says nothing to the other");
    await assert.rejects(asked.putSnapshot(20, utf8.encode("another state")), (e: unknown) => e instanceof EventStreamError && e.code === "snapshot_mismatch");
    assert.equal(asked.lastCheckpoint, null, "a snapshot the server refused");
    assert.equal(await asked.putSnapshot(20, state), true);
    let want: Checkpoint = { t: 20, hash: hashOf(state), epoch: asked.epoch };
    assert.deepEqual(asked.lastCheckpoint, want, "the snapshot it uploaded, stored");
    assert.equal(other.lastCheckpoint, null, "the other did not fetch the snapshot");
    await other.snapshot();
    assert.deepEqual(other.lastCheckpoint, want, "the snapshot it fetched");

    state = utf8.encode("state at 40");
    [asked, other] = await judge(40, state);
    assert.equal(await asked.putSnapshot(40, state), true);
    want = { t: 40, hash: hashOf(state), epoch: asked.epoch };
    assert.deepEqual(asked.lastCheckpoint, want);
    assert.equal(other.lastCheckpoint?.t, 20, "until it fetches the stream's snapshot");
    await other.snapshot();
    assert.deepEqual(other.lastCheckpoint, want);
  } finally {
    await srv.stop();
  }
});
