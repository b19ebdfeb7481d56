// A full stream stops the posting, not the reading, as esclient's
// TestAFullStreamStopsPostingNotReading holds the Go client to.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { EventStreamClient, EventStreamError, type Update, type WebSocketConstructor } from "../src/index.js";
import { startServer, type Server } from "./server.js";

const WS = (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;

let srv: Server;
before(async () => {
  srv = await startServer("-max-stream-bytes", "4096");
});
after(async () => {
  await srv.stop();
});

for (const transport of ["poll", "push"] as const) {
  test(`a full stream stops the posting, not the reading (${transport})`, async () => {
    const c = new EventStreamClient({ baseUrl: srv.url, stream: "full-" + transport, privateId: "p", WebSocket: transport === "push" ? WS! : null, transport, syncIntervalMs: 20 });
    const body = "x".repeat(400);
    const afterFull: number[] = [];
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), 15_000);
    await c.run((u: Update) => {
      if (c.postError === null) {
        c.send("move", body);
        return;
      }
      afterFull.push(u.t);
      if (afterFull.length >= 5) ctl.abort();
    }, ctl.signal);
    clearTimeout(timer);
    assert.equal(afterFull.length, 5, "run read on after the stream was full");
    assert.ok(afterFull[4]! > afterFull[0]!, "the stream was read on");
    assert.throws(() => c.send("move", "more"), (e: unknown) => e instanceof EventStreamError && e.code === "stream_full");
    assert.equal(c.pending, 0, "what could not be posted was dropped");
  });
}
