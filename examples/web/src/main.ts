// The page of Gem Rush: an EventStreamClient and a SimDriver from
// clients/ts drive the World of sim.ts; this file adds the keyboard, the
// drawing and what the player is told. Nothing here changes simulation
// state except through events, and the X key, which breaks this tab's
// state on purpose to show the server catch and heal a desync.

import { EventStreamClient, EventStreamError, LocalCode, SimDriver, hashOf, type ByteWriter, type Checkpoint, type Desync, type PrivateIdStorage, type Reset } from "../../../clients/ts/src/index.js";
import { draw, displayName, hue, Positions } from "./render.js";
import { DOWN, formatInput, LEFT, RIGHT, TYPE_INPUT, TYPE_NAME, UP, World } from "./sim.js";

/** What a test (or a curious developer, in the console) can read of the page: window.gemRush. */
interface Probe {
  stream: string;
  publicId: string;
  tick: number;
  /** The driver re-simulates ticks this page did not play live (SimDriver.replaying), as of tick. */
  replaying: boolean;
  /** Every checkpoint this page reported (or, spectating, hashed): [tick, hex SHA-256]. */
  checkpoints: [number, string][];
  /** The latest checkpoint the server verified, as this page learned it (SimDriver.lastCheckpoint): [tick, hash], or null. */
  verified: [number, string] | null;
  /** The page watches (?spectate=1): it is not in the game. */
  spectator: boolean;
  desyncs: Desync[];
  resyncs: number;
  /** The ticks whose snapshot this page loaded (a late join, a resync). */
  restoredFrom: number[];
  /** How many times the stream started ("_a") in this page: 0 for a page that joined from a snapshot. */
  resets: number;
  world: World;
  error: string;
}

declare global {
  // eslint-disable-next-line no-var
  var gemRushConfig: { server?: string } | undefined;
  // eslint-disable-next-line no-var
  var gemRush: Probe | undefined;
}

const NAMES = ["Comet", "Pixel", "Nova", "Rocket", "Zephyr", "Quasar", "Blip", "Fizz", "Orbit", "Dash", "Ember", "Glint"];
const KEYS: Record<string, number> = {
  ArrowUp: UP, KeyW: UP, ArrowDown: DOWN, KeyS: DOWN, ArrowLeft: LEFT, KeyA: LEFT, ArrowRight: RIGHT, KeyD: RIGHT,
};

/** PageWorld is the game's World, telling the page of checkpoints, desyncs and restores. */
class PageWorld extends World {
  constructor(readonly probe: Probe, readonly ui: Ui) {
    super();
  }

  override onReset(d: SimDriver, r: Reset): void {
    this.probe.resets++;
    super.onReset(d, r);
  }

  // The SimDriver snapshots only at checkpoint ticks (this page never asks
  // it for one otherwise): the bytes written are the checkpoint's.
  override snapshot(d: SimDriver, w: ByteWriter): void {
    super.snapshot(d, w);
    const hash = hashOf(w.finish());
    this.probe.checkpoints.push([d.tick, hash]);
    if (this.probe.checkpoints.length > 120) this.probe.checkpoints.shift();
    this.ui.checkpoint.textContent = `${d.tick} ${hash}`;
  }

  override restore(d: SimDriver, data: Uint8Array): void {
    super.restore(d, data);
    this.probe.restoredFrom.push(d.tick);
  }

  // The stream's verified state: the snapshot this page loaded or uploaded.
  onCheckpoint(_d: SimDriver, c: Checkpoint): void {
    this.probe.verified = [c.t, c.hash];
    this.ui.verified.textContent = `${c.t} ${c.hash}`;
  }

  onDesync(d: SimDriver, x: Desync): void {
    if (d.replaying) return; // told already
    this.probe.desyncs.push(x);
    const who = x.ids.map((id) => displayName(this.player(id)?.name ?? "", id)).join(", ");
    this.ui.banner(
      x.self
        ? `Desync! The server caught this tab's state diverging at checkpoint ${x.checkpoint}: healing from the verified snapshot (or, before the stream has one, by re-simulating it from the start)…`
        : `Desync at checkpoint ${x.checkpoint}: ${who} diverged and heals`,
      "bad",
    );
  }

  /** breakState is the bug the X key plants: points nobody else has. */
  breakState(id: string): boolean {
    const p = this.player(id);
    if (!p) return false;
    p.score += 7;
    return true;
  }
}

/** Ui holds the page's elements. */
class Ui {
  readonly canvas = element<HTMLCanvasElement>("arena");
  readonly checkpoint = element("checkpoint");
  readonly verified = element("verified");
  readonly scores = element("scores");
  readonly clock = element("clock");
  readonly status = element("status");
  readonly bannerEl = element("banner");
  #bannerUntil = 0;

  banner(text: string, kind: "ok" | "bad" | "info"): void {
    this.bannerEl.textContent = text;
    this.bannerEl.className = `banner ${kind}`;
    this.#bannerUntil = performance.now() + 7000;
  }

  tick(now: number): void {
    if (this.#bannerUntil && now > this.#bannerUntil) {
      this.bannerEl.className = "banner hidden";
      this.#bannerUntil = 0;
    }
  }
}

function element<T extends HTMLElement = HTMLElement>(id: string): T {
  const e = document.getElementById(id);
  if (!e) throw new Error(`the page has no #${id}`);
  return e as T;
}

/**
 * tabSlot gives this tab a slot of its own, kept in sessionStorage (which
 * survives a reload but is not shared with other tabs): the private id of
 * each slot is kept in localStorage, so a reload is the same player, and
 * two tabs of one browser are two players. A slot is free once its tab has
 * not renewed its lease for 3 s.
 */
function tabSlot(stream: string): number | null {
  try {
    void localStorage.length;
    void sessionStorage.length;
  } catch {
    return null; // storage is blocked: a new player at every load
  }
  const lease = (slot: number) => `gemrush.${stream}.lease.${slot}`;
  let slot = Number(sessionStorage.getItem(`gemrush.${stream}.slot`) ?? "-1");
  if (!(slot >= 0)) {
    const now = Date.now();
    slot = 0;
    while (now - Number(localStorage.getItem(lease(slot)) ?? "0") < 3000) slot++;
    sessionStorage.setItem(`gemrush.${stream}.slot`, String(slot));
  }
  const renew = () => localStorage.setItem(lease(slot), String(Date.now()));
  renew();
  setInterval(renew, 1000);
  addEventListener("pagehide", () => localStorage.removeItem(lease(slot)));
  return slot;
}

function start(): void {
  const ui = new Ui();
  const query = new URLSearchParams(location.search);
  const stream = query.get("stream") || "demo";
  const server = query.get("server") || globalThis.gemRushConfig?.server || "http://localhost:9922";
  // ?spectate=1 watches the game: a spectator is not in it, and sends nothing.
  const spectate = query.get("spectate") === "1";
  const probe: Probe = { stream, publicId: "", tick: -1, replaying: true, checkpoints: [], verified: null, spectator: spectate, desyncs: [], resyncs: 0, restoredFrom: [], resets: 0, world: new World(), error: "" };
  globalThis.gemRush = probe;

  let client: EventStreamClient;
  const slot = spectate ? null : tabSlot(stream);
  try {
    client = new EventStreamClient(
      spectate
        ? { baseUrl: server, stream, spectate }
        : slot === null
          ? { baseUrl: server, stream, storage: null }
          : { baseUrl: server, stream, storage: localStorage as PrivateIdStorage, storageKey: `gemrush.${stream}.privateId.${slot}` },
    );
  } catch (e) {
    probe.error = String(e);
    ui.status.textContent = `Cannot play: ${(e as Error).message}`;
    return;
  }
  const world = new PageWorld(probe, ui);
  probe.world = world;
  const d = new SimDriver(client, world);
  // A name of this browser's own, a different one for each of its tabs.
  let first = Number(slot === null ? "-1" : localStorage.getItem("gemrush.name") ?? "-1");
  if (!(first >= 0)) {
    first = Math.floor(Math.random() * NAMES.length);
    if (slot !== null) localStorage.setItem("gemrush.name", String(first));
  }
  const name = NAMES[(first + (slot ?? 0)) % NAMES.length]!;

  const held = new Set<number>();
  let sentInput = -1;
  let sentName = false;
  const send = (type: string, body: string): boolean => {
    try {
      d.sendEvent(type, body);
      return true;
    } catch (e) {
      if (e instanceof EventStreamError) return false; // re-simulating, or the queue is full: try again next frame
      throw e;
    }
  };
  addEventListener("keydown", (e) => {
    const bit = KEYS[e.code];
    if (bit) {
      held.add(bit);
      e.preventDefault();
    } else if (e.code === "KeyX" && !e.repeat) {
      if (world.breakState(d.publicId)) ui.banner("You broke this tab's state on purpose (X): the next checkpoint will tell…", "info");
    }
  });
  addEventListener("keyup", (e) => {
    const bit = KEYS[e.code];
    if (bit) held.delete(bit);
  });
  addEventListener("blur", () => held.clear());

  let troubleSince = -1; // when client.lastError was first seen set, -1 while it is null
  const pos = new Positions();
  const ctx = ui.canvas.getContext("2d")!;
  const frame = (now: number, drawing: boolean) => {
    const before = pos.capture(world);
    const restores = probe.restoredFrom.length; // a resync's snapshot is loaded by the update that follows it
    if (d.update(now) > 0) pos.moved(before, now);
    probe.tick = d.tick;
    probe.replaying = d.replaying;
    probe.publicId = d.publicId;
    if (d.resyncs > probe.resyncs) {
      // The server named this tab: the driver reloaded the stream's
      // verified snapshot (or, before there is one, re-simulates the
      // stream from its start) and plays on from there.
      ui.banner(probe.restoredFrom.length > restores ? `Healed: reloaded the verified snapshot of tick ${probe.restoredFrom.at(-1)}` : "Healed: re-simulated the stream from its start", "ok");
      probe.resyncs = d.resyncs;
    }
    const me = world.player(d.publicId);
    if (me && !d.replaying) {
      if (!sentName) sentName = send(TYPE_NAME, name);
      let input = 0;
      for (const bit of held) input |= bit;
      if (input !== sentInput && send(TYPE_INPUT, formatInput(input))) sentInput = input;
    }
    if (d.err) probe.error = String((d.err as Error).message ?? d.err);
    // What the client retries after, once it has lasted a second (a push
    // connection that drops and comes back at once is no news).
    const retrying = client.lastError;
    if (!retrying) troubleSince = -1;
    else if (troubleSince < 0) troubleSince = now;
    const trouble = retrying && now - troubleSince >= 1000 ? troubleText(retrying, server) : "";
    if (drawing) {
      draw(ctx, world, d.publicId, pos, now, 50);
      hud(ui, world, d, stream, spectate, probe.error, trouble);
      ui.tick(now);
    }
  };
  const loop = (now: number) => {
    frame(now, true);
    requestAnimationFrame(loop);
  };
  requestAnimationFrame(loop);
  // A hidden tab gets no animation frames: keep simulating (and reporting
  // checkpoints) on a timer, which browsers slow down but do not stop.
  setInterval(() => {
    if (document.hidden) frame(performance.now(), false);
  }, 100);
}

/** troubleText says why nothing arrives from eventstreamd while the client retries. */
function troubleText(e: EventStreamError, server: string): string {
  return e.code === LocalCode.Network && e.status === 0
    ? `Cannot reach eventstreamd at ${server}: is \`make run\` running? (${e.message}; retrying)`
    : `eventstreamd at ${server} answers ${e.code || e.status}: ${e.message} (retrying)`;
}

function hud(ui: Ui, world: World, d: SimDriver, stream: string, spectate: boolean, error: string, trouble: string): void {
  const secs = Math.ceil(world.clock / 20);
  ui.clock.textContent = world.pause > 0 ? `round ${world.round + 1} starts soon` : `round ${world.round + 1} · ${Math.floor(secs / 60)}:${String(secs % 60).padStart(2, "0")}`;
  const shown = world.players.filter((p) => p.online).sort((a, b) => b.score - a.score || a.id.localeCompare(b.id));
  const key = JSON.stringify([d.publicId, shown.map((p) => [p.id, p.name, p.score])]);
  if (ui.scores.dataset.key !== key) {
    ui.scores.dataset.key = key;
    ui.scores.replaceChildren(...shown.map((p) => scoreRow(p.id, p.name, p.score, p.id === d.publicId)));
  }
  ui.status.textContent = error
    ? `Trouble: ${error}`
    : trouble ||
      (spectate
        ? d.tick >= 0 ? `stream “${stream}” · watching · tick ${d.tick}` : `waiting for stream “${stream}”…`
        : d.publicId ? `stream “${stream}” · you are player ${d.publicId} · tick ${Math.max(d.tick, 0)}` : `joining stream “${stream}”…`);
}

/** scoreRow is the scoreboard's line of a player. */
function scoreRow(id: string, name: string, points: number, me: boolean): HTMLLIElement {
  const li = document.createElement("li");
  const dot = document.createElement("span");
  dot.className = "dot";
  dot.style.background = `hsl(${hue(id)} 85% 60%)`;
  const who = document.createElement("span");
  who.className = "who";
  who.textContent = displayName(name, id) + (me ? " (you)" : "");
  const score = document.createElement("span");
  score.className = "score";
  score.textContent = String(points);
  li.append(dot, who, score);
  if (me) li.className = "me";
  return li;
}

start();
