// EventStreamClient's guarantees against the real server: a batch whose
// reply is lost is applied once; tokens go where the protocol says; "auto"
// falls back to polling when push cannot connect; a stream that started
// anew is rejoined (epoch_mismatch), its queue dropped or kept.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { EventStreamClient, EventStreamError, type Event, type FetchLike, type WebSocketConstructor, type WebSocketLike } from "../src/index.js";
import { startServer, type Server } from "./server.js";

let srv: Server;
before(async () => {
  srv = await startServer("-client-timeout", "500ms", "-stream-ttl", "500ms", "-sweep-interval", "100ms");
});
after(async () => {
  await srv.stop();
});

/** history returns every event of a stream, read by a watcher. */
async function history(stream: string): Promise<Event[]> {
  const r = await fetch(`${srv.url}/${stream}/watcher-${Math.random().toString(36).slice(2)}/0`);
  return ((await r.json()) as { events: Event[] }).events;
}

test("a batch whose reply was lost is sent again with its id and applied once", async () => {
  let lose = 1;
  const bodies: string[] = [];
  const losing: FetchLike = async (url, init) => {
    const resp = await fetch(url, init);
    if (typeof init.body === "string") bodies.push(init.body);
    if (typeof init.body === "string" && init.body.includes('"events"') && lose-- > 0) {
      await resp.text();
      throw new TypeError("fetch failed: the connection was reset"); // applied, but the reply never came
    }
    return resp;
  };
  const c = new EventStreamClient({ baseUrl: srv.url, stream: "lost", privateId: "p-lost", WebSocket: null, fetch: losing });
  await c.sync();
  c.send("once", "1");
  await assert.rejects(c.sync(), (e: unknown) => e instanceof EventStreamError && e.code === "network" && e.retryable);
  assert.equal(c.pending, 1, "the batch is kept");
  await c.sync(); // the epoch first: it sends nothing
  await c.sync(); // the batch again, same id
  assert.equal(c.pending, 0);
  const sent = bodies.filter((b) => b.includes('"events"')).map((b) => (JSON.parse(b) as { batch: string }).batch);
  assert.equal(sent.length, 2);
  assert.equal(sent[0], sent[1], "the retry carries the same batch id");
  assert.match(sent[0]!, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  await new Promise((r) => setTimeout(r, 120)); // past the tick it was appended at
  const once = (await history("lost")).filter((e) => e.type === "once");
  assert.equal(once.length, 1, "the retry appended the event again");
});

/** FailingWebSocket never connects: as a browser sees a refused upgrade. */
class FailingWebSocket implements WebSocketLike {
  static urls: string[] = [];
  onopen: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: ((ev: { code: number }) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;
  constructor(url: string) {
    FailingWebSocket.urls.push(url);
    setTimeout(() => {
      this.onerror?.({});
      this.onclose?.({ code: 1006 });
    }, 1);
  }
  send(): void {
    throw new Error("not open");
  }
  close(): void {}
}

test("auto polls when push cannot connect, and the token goes as a Bearer header and as access_token", async () => {
  const auths: (string | null)[] = [];
  const recording: FetchLike = (url, init) => {
    auths.push(new Headers(init.headers).get("Authorization"));
    return fetch(url, init);
  };
  const c = new EventStreamClient({
    baseUrl: srv.url, stream: "fallback", privateId: "p-fallback", fetch: recording, WebSocket: FailingWebSocket, token: async () => "tok/en+1",
  });
  assert.equal(c.transport, "auto");
  c.send("hello", "push or poll");
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), 10_000);
  const seen: Event[] = [];
  await c.run((u) => {
    seen.push(...u.events);
    if (seen.some((e) => e.type === "hello")) ctl.abort();
  }, ctl.signal);
  clearTimeout(timer);
  assert.ok(seen.some((e) => e.type === "hello" && e.body === "push or poll"), "nothing came by polling");
  assert.ok(FailingWebSocket.urls.length >= 1);
  assert.match(FailingWebSocket.urls[0]!, /^ws:\/\/127\.0\.0\.1:\d+\/fallback\/p-fallback\/0\?access_token=tok%2Fen%2B1$/);
  assert.ok(auths.length > 0 && auths.every((a) => a === "Bearer tok/en+1"));
});

test("a stream that started anew: the events queued for the old one are dropped, or kept and posted into the new one", async () => {
  for (const keep of [false, true]) {
    const stream = `anew-${keep}`;
    const c = new EventStreamClient({ baseUrl: srv.url, stream, privateId: "p-anew", WebSocket: null, keepQueueOnReset: keep });
    const first = await c.sync();
    // Silent past -client-timeout and -stream-ttl: the stream is deleted.
    let gone = false;
    for (let i = 0; i < 100 && !gone; i++) {
      await new Promise((r) => setTimeout(r, 100));
      gone = (await fetch(`${srv.url}/${stream}/desyncs`)).status === 404; // no such stream (and this creates none)
    }
    assert.ok(gone);
    c.send("late", "for the old game");
    await assert.rejects(c.sync(), (e: unknown) => e instanceof EventStreamError && e.code === "epoch_mismatch" && e.status === 409 && e.retryable);
    const u = await c.sync(); // the epoch first, without events
    assert.ok(u.reset);
    assert.notEqual(u.epoch, first.epoch);
    assert.equal(u.dropped, keep ? 0 : 1);
    assert.equal(c.pending, keep ? 1 : 0);
    await c.sync();
    await new Promise((r) => setTimeout(r, 120));
    assert.equal((await history(stream)).filter((e) => e.type === "late").length, keep ? 1 : 0);
  }
});

test("a batch sent on a push connection that drops before its acknowledgement is sent again and applied once", async () => {
  const Base = (globalThis as { WebSocket?: new (url: string) => WebSocketLike }).WebSocket!;
  const batches: string[] = [];
  let cut = 1;
  class Cutting extends (Base as unknown as new (url: string) => WebSocketLike & EventTarget) {
    override send(data: string): void {
      super.send(data);
      const b = (JSON.parse(data) as { batch?: string }).batch;
      if (b) batches.push(b);
      if (b && cut-- > 0) super.close(4000, "cut before the acknowledgement"); // applied, but its ack never comes
    }
  }
  const c = new EventStreamClient({ baseUrl: srv.url, stream: "cut", privateId: "p-cut", WebSocket: Cutting as unknown as WebSocketConstructor, transport: "push" });
  let sent = false;
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), 10_000);
  let seen = 0;
  await c.run((u) => {
    if (!sent) {
      c.send("once", "over push");
      sent = true;
    }
    seen += u.events.filter((e) => e.type === "once").length;
    if (c.pending === 0 && seen > 0) ctl.abort();
  }, ctl.signal);
  clearTimeout(timer);
  assert.ok(batches.length >= 2, "the batch was not sent again");
  assert.equal(new Set(batches).size, 1, "the batch was sent again with another id");
  await new Promise((r) => setTimeout(r, 120));
  assert.equal((await history("cut")).filter((e) => e.type === "once").length, 1);
});
