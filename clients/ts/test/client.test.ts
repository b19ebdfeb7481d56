// EventStreamClient against the real server.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { EventStreamClient, EventStreamError, LocalCode, type WebSocketConstructor } from "../src/index.js";
import { collect, startServer, type Server } from "./server.js";

const WS = (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;

let srv: Server;
before(async () => {
  srv = await startServer();
});
after(async () => {
  await srv.stop();
});

/** memoryStorage is a Storage kept in a Map. */
export function memoryStorage(): { getItem(k: string): string | null; setItem(k: string, v: string): void; map: Map<string, string> } {
  const map = new Map<string, string>();
  return { map, getItem: (k) => map.get(k) ?? null, setItem: (k, v) => void map.set(k, v) };
}

test("a poll sync creates the stream and sends a batch once", async () => {
  const storage = memoryStorage();
  const c = new EventStreamClient({ baseUrl: srv.url, stream: "poll1", storage, WebSocket: null });
  assert.equal(c.transport, "poll");
  assert.match(storage.map.get("eventstreamd.privateId") ?? "", /^[0-9a-f-]{36}$/);
  const u = await c.sync();
  assert.equal(u.publicId, "1");
  assert.equal(u.events[0]?.type, "_a");
  assert.equal(u.events[0]?.body, u.epoch);
  assert.ok(u.reset);
  c.send("move", "left");
  c.send("chat", 'quote " and é');
  assert.equal(c.pending, 2);
  await c.sync();
  assert.equal(c.pending, 0);
  const us = await collect(c, (us) => us.flatMap((u) => u.events).filter((e) => e.origin === "1").length >= 2);
  const mine = us.flatMap((u) => u.events).filter((e) => e.origin === "1");
  assert.deepEqual(mine.map((e) => [e.type, e.body]), [["move", "left"], ["chat", 'quote " and é']]);
});

test("without a WebSocket, transport push is refused with a typed error, and auto polls", () => {
  assert.throws(
    () => new EventStreamClient({ baseUrl: srv.url, stream: "nows", privateId: "p", WebSocket: null, transport: "push" }),
    (e: unknown) => e instanceof EventStreamError && e.status === 0 && e.code === LocalCode.NoWebSocket && /ClientConfig\.WebSocket/.test(e.message),
  );
  assert.equal(new EventStreamClient({ baseUrl: srv.url, stream: "nows", privateId: "p", WebSocket: null, transport: "auto" }).transport, "poll");
  assert.equal(new EventStreamClient({ baseUrl: srv.url, stream: "nows", privateId: "p", WebSocket: null }).transport, "poll");
  assert.equal(new EventStreamClient({ baseUrl: srv.url, stream: "nows", privateId: "p", WebSocket: null, transport: "poll" }).transport, "poll");
});

test("lastError says what run retries after, until the next update", async () => {
  let down = true;
  const fetchFn = (input: string, init: RequestInit): Promise<Response> => (down ? Promise.reject(new TypeError("fetch failed")) : fetch(input, init));
  const c = new EventStreamClient({ baseUrl: srv.url, stream: "lasterr", privateId: "p", WebSocket: null, fetch: fetchFn, maxBackoffMs: 50 });
  assert.equal(c.lastError, null);
  const ctl = new AbortController();
  const seen: (string | null)[] = [];
  const running = c.run(() => {
    seen.push(c.lastError?.code ?? null);
    ctl.abort();
  }, ctl.signal);
  const deadline = Date.now() + 10_000;
  while ((c.lastError as EventStreamError | null) === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  const err = c.lastError as EventStreamError | null;
  assert.ok(err instanceof EventStreamError, "a failed sync is recorded");
  assert.equal(err.code, LocalCode.Network);
  assert.match(err.message, /fetch failed/);
  down = false;
  await running;
  assert.deepEqual(seen, [null], "the update cleared it before it was delivered");
  assert.equal(c.lastError as EventStreamError | null, null);
});

test("the private id is kept in storage: a second client is the same player", async () => {
  const storage = memoryStorage();
  const a = new EventStreamClient({ baseUrl: srv.url, stream: "keep", storage, WebSocket: null });
  const ua = await a.sync();
  const b = new EventStreamClient({ baseUrl: srv.url, stream: "keep", storage, WebSocket: null });
  assert.equal(b.privateId, a.privateId);
  const ub = await b.sync();
  assert.equal(ub.publicId, ua.publicId);
});

test("errors carry the server's code", async () => {
  const c = new EventStreamClient({ baseUrl: srv.url, stream: "errs", privateId: "p1", WebSocket: null });
  assert.throws(() => c.send("_x", ""), (e: unknown) => e instanceof EventStreamError && e.code === "reserved_type" && e.status === 0);
  assert.throws(() => c.send("", ""), (e: unknown) => e instanceof EventStreamError && e.code === "bad_request");
  assert.throws(() => c.send("m", "x".repeat(16 * 1024 + 1)), (e: unknown) => e instanceof EventStreamError && e.code === "too_large");
  assert.throws(() => c.send("m", "\ud800"), (e: unknown) => e instanceof EventStreamError && e.code === "bad_request");
  for (const bad of ["a\nb", "tab\t", "\u007f", "\u0085", "\udc00"]) {
    assert.throws(() => c.send(bad, ""), (e: unknown) => e instanceof EventStreamError && e.code === "bad_request", JSON.stringify(bad));
  }
  // What send lets through, the server takes: a type of any other character, a body of any.
  const ok = new EventStreamClient({ baseUrl: srv.url, stream: "errs", privateId: "p2", WebSocket: null });
  ok.send("é 🙂 \u00a0", "\n\t\u0000\u2028 \ud83d\ude00");
  await ok.sync();
  assert.equal(ok.pending, 0);
  // What the server refuses, through the client: a body the checks above would not let through.
  const tampering = new EventStreamClient({
    baseUrl: srv.url, stream: "errs", privateId: "p1", WebSocket: null,
    fetch: (u, init) => fetch(u, init.method === "POST" ? { ...init, body: '{"events":[{"type":"_z"}]}' } : init),
  });
  tampering.send("m", "x");
  const e = await tampering.sync().then(() => null, (e: unknown) => e);
  assert.ok(e instanceof EventStreamError);
  assert.equal(e.status, 400);
  assert.equal(e.code, "reserved_type");
  assert.equal(e.retryable, false);
  assert.ok(!e.message.includes("p1"));
  assert.equal(tampering.pending, 1, "a refused batch is kept");
});

test("push brings every event once, in order, and acknowledges batches", async () => {
  const c = new EventStreamClient({ baseUrl: srv.url, stream: "push1", privateId: "pusher", WebSocket: WS!, transport: "push" });
  const other = new EventStreamClient({ baseUrl: srv.url, stream: "push1", privateId: "other", WebSocket: null });
  await other.sync();
  let sent = false;
  const us = await collect(c, (us) => {
    if (!sent && us.length > 0) {
      sent = true;
      for (let i = 0; i < 5; i++) c.send("n", String(i));
      void (async () => {
        for (let i = 5; i < 10; i++) {
          other.send("n", String(i));
          await other.sync();
        }
      })();
    }
    return us.flatMap((u) => u.events).filter((e) => e.type === "n").length >= 10;
  });
  const ns = us.flatMap((u) => u.events).filter((e) => e.type === "n");
  assert.deepEqual(ns.filter((e) => e.origin === c.publicId).map((e) => e.body), ["0", "1", "2", "3", "4"]);
  assert.deepEqual(ns.filter((e) => e.origin === other.publicId).map((e) => e.body), ["5", "6", "7", "8", "9"]);
  for (let i = 1; i < us.length; i++) assert.ok(us[i]!.t >= us[i - 1]!.t);
  assert.equal(c.pending, 0);
});

test("a push message that posts events names the epoch its client read last", async () => {
  const sentMessages: string[] = [];
  const Recording = class extends (WS as unknown as new (url: string) => { send(data: string): void }) {
    override send(data: string): void {
      sentMessages.push(data);
      super.send(data);
    }
  } as unknown as WebSocketConstructor;
  const c = new EventStreamClient({ baseUrl: srv.url, stream: "push-epoch", privateId: "pe", WebSocket: Recording, transport: "push" });
  let sent = false;
  await collect(c, (us) => {
    if (!sent && us.length > 0) {
      sent = true;
      c.send("n", "1");
    }
    return us.flatMap((u) => u.events).some((e) => e.type === "n");
  });
  const withBatch = sentMessages.map((m) => JSON.parse(m) as { batch?: string; epoch?: string }).filter((m) => m.batch);
  assert.ok(withBatch.length > 0, "the batch went by push");
  for (const m of withBatch) assert.equal(m.epoch, c.epoch);
});

test("a page's WebSocket, fetch and storage fit ClientConfig (checked when the tests compile)", () => {
  const inPage = (): EventStreamClient => new EventStreamClient({ baseUrl: "http://x", stream: "s", WebSocket, fetch, storage: sessionStorage });
  assert.equal(typeof inPage, "function");
});
