// How EventStreamClient waits between retries, without a server: a 429's
// Retry-After is honoured; server errors are retried, client errors are not.

import assert from "node:assert/strict";
import { test } from "node:test";

import { EventStreamClient, EventStreamError, type FetchLike } from "../src/index.js";

const reply = { id: "1", t: 1, epoch: "e", tps: 20, ckpt: 20, events: [{ t: 0, type: "_a", origin: "_", body: "e" }] };

function scripted(answers: (() => Response)[]): { fetch: FetchLike; at: number[] } {
  const at: number[] = [];
  return {
    at,
    fetch: async () => {
      at.push(Date.now());
      const next = answers.shift();
      return next ? next() : new Response(JSON.stringify(reply), { status: 200 });
    },
  };
}

const refusal = (status: number, code: string, retryAfter?: string): (() => Response) => () =>
  new Response(JSON.stringify({ error: { code, message: "no" } }), { status, headers: retryAfter ? { "Retry-After": retryAfter } : {} });

test("run waits as long as a 429's Retry-After says, then goes on", async () => {
  const s = scripted([refusal(429, "rate_limited", "1")]);
  const c = new EventStreamClient({ baseUrl: "http://x.invalid", stream: "s", privateId: "p", WebSocket: null, fetch: s.fetch, syncIntervalMs: 5 });
  const e = await c.sync().then(() => null, (e: unknown) => e);
  assert.ok(e instanceof EventStreamError && e.code === "rate_limited" && e.retryAfterMs === 1000 && e.retryable);
  s.at.length = 0;
  const ctl = new AbortController();
  const first = scripted([refusal(429, "rate_limited", "1")]);
  const d = new EventStreamClient({ baseUrl: "http://x.invalid", stream: "s", privateId: "p", WebSocket: null, fetch: first.fetch, syncIntervalMs: 5 });
  await d.run(() => ctl.abort(), ctl.signal);
  assert.equal(first.at.length, 2);
  assert.ok(first.at[1]! - first.at[0]! >= 950, `retried after ${first.at[1]! - first.at[0]!} ms`);
});

test("run retries a 503 and stops at a 409 it cannot change", async () => {
  const s = scripted([refusal(503, "store_unavailable"), refusal(409, "stream_full")]);
  const c = new EventStreamClient({ baseUrl: "http://x.invalid", stream: "s", privateId: "p", WebSocket: null, fetch: s.fetch, syncIntervalMs: 5 });
  await assert.rejects(c.run(() => {}), (e: unknown) => e instanceof EventStreamError && e.code === "stream_full" && e.status === 409);
  assert.equal(s.at.length, 2);
});
