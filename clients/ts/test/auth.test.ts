// EventStreamClient against a server with auth on (docs/protocol.md,
// "Tokens"): the token goes as a Bearer header on requests and as
// access_token on the push upgrade; one the server finds expired is
// replaced and the request sent again; one that expires within 30 s is
// replaced before it is sent.

import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { after, before, test } from "node:test";

import { EventStreamClient, EventStreamError, type WebSocketConstructor } from "../src/index.js";
import { startServer, type Server } from "./server.js";

const WS = (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
const secret = "a-test-secret-of-at-least-32-bytes-long";

function jwt(claims: Record<string, unknown>, key = secret): string {
  const b64 = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString("base64url");
  const head = b64({ alg: "HS256", typ: "JWT" }) + "." + b64(claims);
  return head + "." + createHmac("sha256", key).update(head).digest("base64url");
}

const now = (): number => Math.floor(Date.now() / 1000);

let srv: Server;
before(async () => {
  srv = await startServer("-auth-secret", secret);
});
after(async () => {
  await srv.stop();
});

test("without a token the server refuses, with the code unauthorized", async () => {
  const c = new EventStreamClient({ baseUrl: srv.url, stream: "locked", privateId: "alice", WebSocket: null });
  await assert.rejects(c.sync(), (e: unknown) => e instanceof EventStreamError && e.status === 401 && e.code === "unauthorized" && !e.retryable);
});

test("a token that expired is replaced and the request sent again; one about to expire is replaced first", async () => {
  const given: string[] = [];
  const tokens = [jwt({ sub: "bob", stream: "locked", exp: now() - 120 }), jwt({ sub: "bob", stream: "locked", exp: now() + 3600 })];
  const c = new EventStreamClient({
    baseUrl: srv.url, stream: "locked", privateId: "bob", WebSocket: null,
    token: () => {
      const t = tokens[Math.min(given.length, tokens.length - 1)]!;
      given.push(t);
      return t;
    },
  });
  const u = await c.sync();
  assert.equal(u.events[0]?.type, "_a");
  assert.equal(given.length, 2, "the expired token was not replaced");
  await c.sync();
  assert.equal(given.length, 2, "a token valid for an hour is kept");

  let calls = 0;
  const soon = new EventStreamClient({
    baseUrl: srv.url, stream: "locked", privateId: "carol", WebSocket: null,
    token: async () => {
      calls++;
      return jwt({ sub: "carol", stream: "locked", exp: now() + 20 });
    },
  });
  await soon.sync();
  await soon.sync();
  assert.equal(calls, 2, "a token that expires within 30 s is replaced before each request");
});

test("push carries the token as access_token", async () => {
  const urls: string[] = [];
  let opened = 0;
  const Base = WS as unknown as new (url: string) => EventTarget;
  class Recording extends Base {
    constructor(url: string) {
      super(url);
      urls.push(url);
      this.addEventListener("open", () => opened++);
    }
  }
  const c = new EventStreamClient({
    baseUrl: srv.url, stream: "locked", privateId: "dave", WebSocket: Recording as unknown as WebSocketConstructor, transport: "push",
    token: () => jwt({ sub: "dave", stream: "locked", exp: now() + 3600 }),
  });
  c.send("hi", "over push");
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), 10_000);
  let seen = false;
  await c.run((u) => {
    if (u.events.some((e) => e.type === "hi" && e.origin === u.publicId)) {
      seen = true;
      ctl.abort();
    }
  }, ctl.signal);
  clearTimeout(timer);
  assert.ok(seen);
  assert.ok(opened >= 1, "no push connection opened");
  assert.match(urls[0]!, /\/locked\/dave\/0\?access_token=ey[\w.-]+$/);
});

test("a token for another player is refused: forbidden", async () => {
  const c = new EventStreamClient({
    baseUrl: srv.url, stream: "locked", privateId: "erin", WebSocket: null,
    token: () => jwt({ sub: "mallory", stream: "locked", exp: now() + 3600 }),
  });
  await assert.rejects(c.sync(), (e: unknown) => e instanceof EventStreamError && e.status === 403 && e.code === "forbidden");
});

test("a push connection renews a token nearing its exp on the connection, without reconnecting", async () => {
  let opened = 0;
  const Base = WS as unknown as new (url: string) => EventTarget;
  class Counting extends Base {
    constructor(url: string) {
      super(url);
      this.addEventListener("open", () => opened++);
    }
  }
  let issued = 0;
  const c = new EventStreamClient({
    baseUrl: srv.url, stream: "locked", privateId: "frank", WebSocket: Counting as unknown as WebSocketConstructor, transport: "push",
    token: () => {
      issued++;
      return jwt({ sub: "frank", stream: "locked", exp: now() + 31 }); // within 30 s of its exp a second later
    },
  });
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), 3500);
  let updates = 0;
  let sent = 0;
  await c.run((u) => {
    updates++;
    if (u.events.some((e) => e.type === "ping" && e.origin === u.publicId)) sent--;
    if (sent === 0) {
      c.send("ping", String(updates));
      sent++;
    }
  }, ctl.signal);
  clearTimeout(timer);
  assert.equal(opened, 1, "the connection was opened again");
  assert.ok(issued >= 3, `only ${issued} tokens: none renewed`);
  assert.ok(updates > 10);
});

test("a push connection sends a renewal the server refused with rate_limited again, after its retryAfter", async () => {
  // One check of a forged token a second, for every address together
  // (loopback counts): a stranger's flood keeps the server from checking
  // the renewal's signature, and the refusal says when to send it again.
  const limited = await startServer("-auth-secret", secret, "-max-bad-signatures-per-second", "1", "-metrics-public");
  const first = jwt({ sub: "gina", stream: "locked", exp: now() + 25, jti: "1" }); // renewed as soon as the connection is open
  const renewal = jwt({ sub: "gina", stream: "locked", exp: now() + 3600, jti: "2" });
  const renewals: string[] = [];
  let refusals = 0;
  let opened = 0;
  const Base = WS as unknown as new (url: string) => EventTarget & { send(data: string): void };
  class Watching extends Base {
    constructor(url: string) {
      super(url);
      this.addEventListener("open", () => opened++);
      this.addEventListener("message", (ev) => {
        if (String((ev as MessageEvent).data).includes('"code":"rate_limited"')) refusals++;
      });
    }
    override send(data: string): void {
      if (data.startsWith('{"token":')) renewals.push(data);
      super.send(data);
    }
  }
  const validChecks = async (): Promise<number> => {
    const text = await (await fetch(limited.url + "/metrics")).text();
    return Number(/^eventstreamd_auth_signature_checks_total\{result="valid"\} (\d+)$/m.exec(text)?.[1] ?? 0);
  };
  const until = async (pred: () => boolean | Promise<boolean>, what: string): Promise<void> => {
    for (const end = Date.now() + 5000; !(await pred()); await new Promise((r) => setTimeout(r, 20))) {
      if (Date.now() > end) assert.fail(what);
    }
  };
  const forged = jwt({ sub: "x", stream: "locked", exp: now() + 3600 }, "a stranger's key, of 32 bytes or more");
  let attacking = true;
  const attacker = async (): Promise<void> => {
    while (attacking) await (await fetch(limited.url + "/locked/x/0", { headers: { Authorization: "Bearer " + forged } })).arrayBuffer();
  };
  const ctl = new AbortController();
  let attack: Promise<unknown> = Promise.resolve();
  let ran: Promise<void> = Promise.resolve();
  try {
    const r = await fetch(limited.url + "/locked/gina/0", { headers: { Authorization: "Bearer " + first } });
    assert.equal(r.status, 200, "the first token, verified before the flood");
    attack = Promise.all([attacker(), attacker()]);
    const c = new EventStreamClient({
      baseUrl: limited.url, stream: "locked", privateId: "gina", WebSocket: Watching as unknown as WebSocketConstructor, transport: "push",
      syncIntervalMs: 50, token: () => (renewals.length === 0 && opened === 0 ? first : renewal),
    });
    ran = c.run(() => {}, ctl.signal);
    await until(() => refusals > 0, "the renewal was never refused (taken in the moment the server's bucket refilled: rerun)");
    attacking = false;
    await attack;
    await until(() => renewals.length >= 2, "the refused renewal was not sent again");
    await until(async () => (await validChecks()) >= 2, "the server never took the renewal");
    assert.deepEqual(renewals, [renewals[0], renewals[0]], "the same token, sent again once");
    assert.equal(opened, 1, "the connection was opened again");
  } finally {
    attacking = false;
    ctl.abort();
    await Promise.allSettled([attack, ran]);
    await limited.stop();
  }
});
