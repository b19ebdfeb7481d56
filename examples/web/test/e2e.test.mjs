// The browser demo end to end, as people play it: the real eventstreamd
// binary (with a short -snapshot-every and -history-retain, so that the
// stream is compacted while the test runs), the real demo server, Debian's
// Chromium driven by playwright-core (the system browser: nothing is
// downloaded), two tabs and a Go bot in one stream.
//
// Run by `make test-web` after the page is built (node build.mjs).
// CHROMIUM names the browser (default: chromium on the PATH); screenshots
// go to ARTIFACTS_DIR (default examples/web/artifacts/).
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const web = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const repo = resolve(web, "../..");
const artifacts = resolve(process.env.ARTIFACTS_DIR || join(web, "artifacts"));

// The keys' input bits and the arena's size (examples/web/sim).
const RIGHT = 8;
const LEFT = 4;
const UNIT = 16;
const WIDTH = 800 * UNIT;

const cleanups = [];
after(async () => {
  for (const f of cleanups.reverse()) await f();
});

/** freePort returns a loopback port nobody listens on. */
function freePort() {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.on("error", fail);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });
}

/** until polls check (which returns a truthy value when satisfied) until it does, or fails after ms. */
async function until(what, ms, check) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    try {
      const v = await check();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`gave up after ${ms} ms waiting for ${what}${last ? `: ${last.message}` : ""}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** start runs a program until the tests end; lines collects its standard output a line at a time. */
function start(bin, args, env = {}) {
  const p = spawn(bin, args, { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "inherit"] });
  const lines = [];
  let partial = "";
  p.stdout.on("data", (b) => {
    const parts = (partial + b.toString()).split("\n");
    partial = parts.pop();
    lines.push(...parts);
  });
  const exited = new Promise((r) => p.on("exit", r));
  cleanups.push(async () => {
    p.kill("SIGTERM");
    await exited;
  });
  return { lines, exited };
}

async function get(url) {
  const r = await fetch(url);
  return { status: r.status, headers: r.headers, body: await r.text() };
}

/** probe reads what the page exposes as window.gemRush. */
function probe(page) {
  return page.evaluate(() => {
    const g = globalThis.gemRush;
    if (!g) return null;
    const players = g.world.players.map((p) => ({ id: p.id, x: p.x, y: p.y, input: p.input, score: p.score, online: p.online }));
    return { publicId: g.publicId, spectator: g.spectator, tick: g.tick, replaying: g.replaying, checkpoints: g.checkpoints, verified: g.verified, desyncs: g.desyncs, resyncs: g.resyncs, restoredFrom: g.restoredFrom, resets: g.resets, error: g.error, players, checkpointText: document.getElementById("checkpoint").textContent };
  });
}

/** agreed returns the newest checkpoint tick at or after from that every source reported, asserting that they agree on every tick they share. */
function agreed(sources, from) {
  const maps = sources.map((s) => new Map(s));
  let best = -1;
  for (const [t, h] of maps[0]) {
    if (t < from || !maps.every((m) => m.has(t))) continue;
    for (const m of maps) assert.equal(m.get(t), h, `checkpoint ${t}: the hashes differ`);
    best = Math.max(best, t);
  }
  return best >= 0 ? best : null;
}

function botCheckpoints(lines) {
  return lines.flatMap((l) => {
    const m = /^checkpoint (\d+) ([0-9a-f]{64})$/.exec(l);
    return m ? [[Number(m[1]), m[2]]] : [];
  });
}

test("two tabs and a Go bot play Gem Rush in one stream", { timeout: 240_000 }, async () => {
  // The programs, built from this tree.
  const bin = mkdtempSync(join(tmpdir(), "gemrush-e2e-"));
  cleanups.push(() => rmSync(bin, { recursive: true, force: true }));
  for (const [name, pkg] of [["eventstreamd", "./cmd/eventstreamd"], ["serve", "./examples/web/serve"], ["bot", "./examples/web/bot"]]) {
    execFileSync("go", ["build", "-o", join(bin, name), pkg], { cwd: repo, stdio: "inherit" });
  }
  const esPort = await freePort();
  const server = `http://127.0.0.1:${esPort}`;
  start(join(bin, "eventstreamd"), ["-addr", `127.0.0.1:${esPort}`, "-log-level", "warn", "-drain-delay", "0", "-snapshot-every", "30", "-history-retain", "2s"]);
  await until("eventstreamd", 15_000, async () => (await get(`${server}/healthz`)).status === 200);
  const demoPort = await freePort();
  const demo = `http://127.0.0.1:${demoPort}`;
  start(join(bin, "serve"), ["-dir", join(web, "dist")], { DEMO_ADDR: `127.0.0.1:${demoPort}`, EVENTSTREAMD_URL: server });
  await until("the demo server", 15_000, async () => (await get(`${demo}/config.js`)).body.includes(server));

  const stream = `e2e-${Date.now().toString(36)}`;
  const userDataDir = mkdtempSync(join(tmpdir(), "gemrush-chromium-"));
  cleanups.push(() => rmSync(userDataDir, { recursive: true, force: true }));
  const executablePath = process.env.CHROMIUM || execFileSync("sh", ["-c", "command -v chromium"], { encoding: "utf8" }).trim();
  // A persistent context: its pages are tabs of one browser, sharing
  // localStorage, as a person's two tabs would.
  const browser = await chromium.launchPersistentContext(userDataDir, {
    executablePath,
    headless: true,
    viewport: { width: 1160, height: 620 },
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  cleanups.push(() => browser.close());
  const errors = [];
  const open = async (label) => {
    const page = await browser.newPage();
    page.on("pageerror", (e) => errors.push(`${label}: ${e.message}`));
    await page.goto(`${demo}/?stream=${stream}`);
    const p = await until(`${label} to join`, 20_000, async () => {
      const p = await probe(page);
      return p?.publicId && p.players.some((q) => q.id === p.publicId) ? p : null;
    });
    return { page, id: p.publicId };
  };

  const one = await open("tab 1");
  const two = await open("tab 2");
  assert.notEqual(one.id, two.id, "two tabs are two players");
  const bot = start(join(bin, "bot"), ["-url", server, "-stream", stream]);
  const botId = (await until("the bot to join", 20_000, () => bot.lines.map((l) => /^public id (\d+)$/.exec(l)).find(Boolean)))[1];

  // Keyboard input on tab 1 moves its disc on tab 2.
  await until("tab 2 to see tab 1 and the bot", 20_000, async () => {
    const p = await probe(two.page);
    return [one.id, botId].every((id) => p.players.some((q) => q.id === id && q.online));
  });
  const seen = (await probe(two.page)).players.find((q) => q.id === one.id);
  const [key, bit, sign] = seen.x < WIDTH / 2 ? ["ArrowRight", RIGHT, 1] : ["ArrowLeft", LEFT, -1];
  await one.page.bringToFront();
  await one.page.keyboard.down(key);
  await until(`tab 2 to see tab 1's ${key}`, 10_000, async () => (await probe(two.page)).players.find((q) => q.id === one.id).input === bit);
  await until(`tab 1's disc to move on tab 2`, 10_000, async () => {
    const q = (await probe(two.page)).players.find((q) => q.id === one.id);
    return sign * (q.x - seen.x) > 60 * UNIT;
  });
  await one.page.keyboard.up(key);

  // All three report the same hash for the same checkpoint, and the
  // server's verdicts name nobody.
  const joinedAt = (await probe(two.page)).tick;
  const common = await until("a checkpoint all three reported", 30_000, async () => {
    const [a, b] = [await probe(one.page), await probe(two.page)];
    return agreed([a.checkpoints, b.checkpoints, botCheckpoints(bot.lines)], joinedAt);
  });
  const texts = await Promise.all([one, two].map(async (t) => (await probe(t.page)).checkpointText));
  for (const text of texts) assert.match(text, /^\d+ [0-9a-f]{64}$/, "#checkpoint shows <tick> <hash>");
  assert.deepEqual(JSON.parse((await get(`${server}/${stream}/desyncs`)).body), { desyncs: [] }, "no checkpoint named anybody");
  for (const t of [one, two]) assert.deepEqual((await probe(t.page)).desyncs, []);
  console.log(`# checkpoint ${common}: tab 1, tab 2 and the Go bot agree`);

  // A spectator's tab (?spectate=1) watches the same game, state for state,
  // and is in nobody's game.
  const watcher = await browser.newPage();
  watcher.on("pageerror", (e) => errors.push(`the spectator: ${e.message}`));
  await watcher.goto(`${demo}/?stream=${stream}&spectate=1`);
  const players = [one.id, two.id, botId].sort();
  const watched = await until("the spectator to see the game", 20_000, async () => {
    const w = await probe(watcher);
    return w && w.tick > joinedAt && players.every((id) => w.players.some((q) => q.id === id)) ? w : null;
  });
  assert.equal(watched.spectator, true);
  assert.equal(watched.publicId, "", "a spectator has no public id");
  await until("the spectator's checkpoints to agree with the players'", 30_000, async () => {
    const [w, b] = [await probe(watcher), await probe(two.page)];
    return agreed([w.checkpoints, b.checkpoints, botCheckpoints(bot.lines)], watched.tick + 1);
  });
  for (const p of [await probe(watcher), await probe(two.page)]) {
    assert.deepEqual(p.players.map((q) => q.id).sort(), players, "the spectator appeared in the game");
  }
  console.log(`# the spectator watched from tick ${watched.tick}, in nobody's game`);

  // A reload rejoins as the same player.
  await two.page.reload();
  const again = await until("tab 2 to rejoin", 20_000, async () => (await probe(two.page))?.publicId);
  assert.equal(again, two.id, "a reloaded tab is the same player");

  // X breaks tab 1's state: the server names tab 1 alone, everyone is told,
  // tab 1 heals (from the snapshot, or by re-simulating) and agrees again.
  // A driver is told of a desync only from a checkpoint at or after the
  // tick it joined at (docs/gamesim-spec.md, "Desyncs"), and tab 1 may
  // play ticks behind the reloaded tab 2: X waits until tab 1 is past the
  // tick tab 2 joined at, which is at or before a tick tab 2 played live.
  const joined = await until("tab 2 to play live", 20_000, async () => {
    const p = await probe(two.page);
    return p && p.tick >= 0 && !p.replaying ? p.tick : null;
  });
  await until(`tab 1 to reach tick ${joined}`, 10_000, async () => (await probe(one.page)).tick >= joined);
  await one.page.keyboard.press("KeyX");
  const x = await until("the desync to be caught", 20_000, async () => (await probe(one.page)).desyncs.find((x) => x.self));
  assert.deepEqual(x.ids, [one.id]);
  await until("tab 2 to be told", 10_000, async () => (await probe(two.page)).desyncs.some((y) => y.checkpoint === x.checkpoint));
  await until("the bot to be told", 10_000, () => bot.lines.some((l) => l === `desync at checkpoint ${x.checkpoint}: players [${one.id}]`));
  const banner = (t) => t.page.evaluate(() => document.getElementById("banner").textContent);
  assert.match(await banner(two), /^Desync at checkpoint \d+: .+ diverged/, "tab 2 shows the desync");
  await until("tab 1 to heal", 20_000, async () => (await probe(one.page)).resyncs >= 1);
  await until("tab 1 to show it healed", 10_000, async () => /^Healed: /.test(await banner(one)));
  await until("tab 1 to agree again", 30_000, async () => {
    const [a, b] = [await probe(one.page), await probe(two.page)];
    return agreed([a.checkpoints.filter(([t]) => t > x.checkpoint + 20), b.checkpoints, botCheckpoints(bot.lines)], x.checkpoint + 1);
  });

  // Once the stream is compacted, a late tab starts from its snapshot.
  const snap = await until("the stream's snapshot", 30_000, async () => {
    const r = await get(`${server}/${stream}/snapshot`);
    return r.status === 200 ? Number(r.headers.get("eventstream-tick")) : null;
  });
  await until("the snapshot's events to be older than -history-retain", 20_000, async () => (await probe(two.page)).tick > snap + 3 * 20);
  const late = await open("the late tab");
  const lp = await probe(late.page);
  assert.equal(lp.resets, 0, "the late tab never saw the stream's _a: its start was compacted");
  assert.ok(lp.restoredFrom.length > 0 && lp.restoredFrom[0] >= snap, `the late tab started from the snapshot of tick ${snap}: ${JSON.stringify(lp.restoredFrom)}`);
  // The snapshot it started from is the verified state it shows: the hash the players reported of that checkpoint.
  const [vt, vh] = await until("the late tab to show the verified checkpoint", 10_000, async () => (await probe(late.page)).verified);
  assert.ok(vt >= lp.restoredFrom[0], `verified ${vt}, started from ${lp.restoredFrom[0]}`);
  // The bot's: the reloaded tab 2 has no hash of a checkpoint it restored past.
  assert.equal(vh, new Map(botCheckpoints(bot.lines)).get(vt), `the bot's hash of checkpoint ${vt}`);
  assert.equal(await late.page.evaluate(() => document.getElementById("verified").textContent), `${vt} ${vh}`);
  await until("the late tab to agree", 30_000, async () => {
    const [a, b] = [await probe(late.page), await probe(two.page)];
    return agreed([a.checkpoints, b.checkpoints], lp.tick + 1);
  });

  // A page whose eventstreamd is not there says so, and why, on the page.
  const nowhere = `http://127.0.0.1:${await freePort()}`;
  const lost = await browser.newPage();
  lost.on("pageerror", (e) => errors.push(`the lost tab: ${e.message}`));
  await lost.goto(`${demo}/?stream=${stream}&server=${encodeURIComponent(nowhere)}`);
  const status = await until("the lost tab to say it cannot reach eventstreamd", 20_000, async () => {
    const text = await lost.evaluate(() => document.getElementById("status").textContent);
    return text.startsWith(`Cannot reach eventstreamd at ${nowhere}: is \`make run\` running?`) ? text : null;
  });
  console.log(`# the lost tab: ${status}`);
  await lost.close();

  mkdirSync(artifacts, { recursive: true });
  for (const [label, t] of [["tab1", one], ["tab2", two], ["late", late], ["spectator", { page: watcher }]]) {
    const path = join(artifacts, `gemrush-${label}.png`);
    await t.page.bringToFront();
    await t.page.screenshot({ path });
    console.log(`# screenshot: ${path}`);
  }
  assert.deepEqual(errors, [], "no page threw");
});
