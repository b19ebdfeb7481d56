// The simulation of Gem Rush, mirrored rule for rule from
// examples/web/sim/sim.go (the reference): integers only (positions in
// 1/16 of a pixel, division truncated toward zero as Go's), the same
// order of work, the same draws of Rand and the same snapshot bytes, so
// that a page and a Go bot agree bit for bit. examples/web/sim's vectors
// (testdata/vectors.json), replayed by test/sim.test.ts, hold the two to
// each other.

import { ByteReader, type ByteWriter, type Entity, type Event, type Reset, type Sim, type SimDriver } from "../../../clients/ts/src/index.js";

// The arena, in units of 1/UNIT pixel. Mirrored from sim.go.
export const UNIT = 16;
export const WIDTH = 800 * UNIT;
export const HEIGHT = 480 * UNIT;
export const PLAYER_RADIUS = 14 * UNIT;
export const GEM_RADIUS = 7 * UNIT;
const ACCEL = 16;
const ACCEL_DIAG = 11;
const MAX_GEMS = 12;
const GEM_CHANCE = 6;
const BIG_GEM_CHANCE = 10;
const BIG_GEM_VALUE = 5;
export const ROUND_TICKS = 1200;
export const PAUSE_TICKS = 100;
const BUMP_COOLDOWN = 20;
export const MAX_NAME_LEN = 12;

/** Event types a player sends (sim.TypeInput, sim.TypeName). */
export const TYPE_INPUT = "in";
export const TYPE_NAME = "name";

/** Input bits: the arrow keys held. */
export const UP = 1;
export const DOWN = 2;
export const LEFT = 4;
export const RIGHT = 8;

/** Player is one player's disc (sim.Player). */
export interface Player {
  id: string;
  name: string;
  x: number;
  y: number;
  vx: number;
  vy: number;
  input: number;
  score: number;
  online: boolean;
  cooldown: number;
}

/** Gem is a gem on the floor (sim.Gem). */
export interface Gem {
  x: number;
  y: number;
  value: number;
}

/** div is Go's integer division: the quotient truncated toward zero (never -0). */
function div(a: number, b: number): number {
  return Math.trunc(a / b) + 0;
}

/** World is the game's state (sim.World); it is the Sim and Snapshotter a SimDriver drives. */
export class World implements Sim {
  players: Player[] = [];
  gems: Gem[] = [];
  round = 0;
  clock = 0;
  pause = 0;
  winner = "";
  winnerScore = 0;
  #arena: Arena | null = null;

  #clear(): void {
    this.players = [];
    this.gems = [];
    this.round = 0;
    this.clock = 0;
    this.pause = 0;
    this.winner = "";
    this.winnerScore = 0;
  }

  /** player returns the player of a public id, or undefined. */
  player(id: string): Player | undefined {
    return this.players.find((p) => p.id === id);
  }

  onReset(d: SimDriver, _r: Reset): void {
    this.#clear();
    this.clock = ROUND_TICKS;
    this.#arena = new Arena(this);
    d.spawn(this.#arena);
  }

  onConnect(d: SimDriver, id: string): void {
    let p = this.player(id);
    if (!p) {
      const x = PLAYER_RADIUS + d.rand().intN(WIDTH - 2 * PLAYER_RADIUS);
      const y = PLAYER_RADIUS + d.rand().intN(HEIGHT - 2 * PLAYER_RADIUS);
      p = { id, name: "", x, y, vx: 0, vy: 0, input: 0, score: 0, online: false, cooldown: 0 };
      this.players.push(p);
    }
    p.online = true;
  }

  onDisconnect(_d: SimDriver, id: string): void {
    const p = this.player(id);
    if (p) {
      p.online = false;
      p.vx = 0;
      p.vy = 0;
      p.input = 0;
    }
  }

  onClientEvent(_d: SimDriver, e: Event): void {
    const p = this.player(e.origin);
    if (!p) return;
    if (e.type === TYPE_INPUT) {
      const input = parseInput(e.body);
      if (input !== undefined) p.input = input;
    } else if (e.type === TYPE_NAME && validName(e.body)) {
      p.name = e.body;
    }
  }

  /** tick is the arena's SimTick (arena.SimTick). */
  tick(d: SimDriver): void {
    this.#countDown();
    for (const p of this.players) if (p.online) move(p);
    for (let i = 0; i < this.players.length; i++) {
      for (let j = i + 1; j < this.players.length; j++) {
        const p = this.players[i]!;
        const q = this.players[j]!;
        if (p.online && q.online) this.#collide(p, q);
      }
    }
    for (const p of this.players) if (p.online) this.#collect(p);
    if (this.pause === 0 && this.gems.length < MAX_GEMS && d.rand().intN(GEM_CHANCE) === 0) {
      const x = GEM_RADIUS * 2 + d.rand().intN(WIDTH - GEM_RADIUS * 4);
      const y = GEM_RADIUS * 2 + d.rand().intN(HEIGHT - GEM_RADIUS * 4);
      const value = d.rand().intN(BIG_GEM_CHANCE) === 0 ? BIG_GEM_VALUE : 1;
      this.gems.push({ x, y, value });
    }
  }

  #countDown(): void {
    if (this.pause > 0) {
      this.pause--;
      if (this.pause === 0) this.clock = ROUND_TICKS;
      return;
    }
    this.clock--;
    if (this.clock > 0) return;
    this.round++;
    this.pause = PAUSE_TICKS;
    this.winner = "";
    this.winnerScore = 0;
    for (const p of this.players) {
      if (p.score > this.winnerScore) {
        this.winner = p.id;
        this.winnerScore = p.score;
      }
      p.score = 0;
    }
    this.gems = [];
  }

  #collide(p: Player, q: Player): void {
    const dx = q.x - p.x;
    const dy = q.y - p.y;
    const d2 = dx * dx + dy * dy;
    if (d2 >= 4 * PLAYER_RADIUS * PLAYER_RADIUS) return;
    if (this.pause === 0 && p.cooldown === 0 && q.cooldown === 0) {
      const sp = p.vx * p.vx + p.vy * p.vy;
      const sq = q.vx * q.vx + q.vy * q.vy;
      if (sp > sq && q.score > 0) {
        p.score++;
        q.score--;
      } else if (sq > sp && p.score > 0) {
        q.score++;
        p.score--;
      }
      p.cooldown = BUMP_COOLDOWN;
      q.cooldown = BUMP_COOLDOWN;
    }
    [p.vx, q.vx] = [q.vx, p.vx];
    [p.vy, q.vy] = [q.vy, p.vy];
    const dist = isqrt(d2);
    const overlap = 2 * PLAYER_RADIUS - dist;
    let px = 0;
    let py = 0;
    if (dist === 0) {
      px = div(overlap, 2);
    } else {
      px = div(dx * overlap, 2 * dist);
      py = div(dy * overlap, 2 * dist);
    }
    p.x = bounce(p.x - px, 0, WIDTH)[0];
    p.y = bounce(p.y - py, 0, HEIGHT)[0];
    q.x = bounce(q.x + px, 0, WIDTH)[0];
    q.y = bounce(q.y + py, 0, HEIGHT)[0];
  }

  #collect(p: Player): void {
    const reach = (PLAYER_RADIUS + GEM_RADIUS) * (PLAYER_RADIUS + GEM_RADIUS);
    this.gems = this.gems.filter((g) => {
      const dx = g.x - p.x;
      const dy = g.y - p.y;
      if (dx * dx + dy * dy < reach) {
        p.score += g.value;
        return false;
      }
      return true;
    });
  }

  /** snapshot writes the whole state, in sim.go's format. */
  snapshot(_d: SimDriver, w: ByteWriter): void {
    for (const v of [this.round, this.clock, this.pause, this.winnerScore]) w.varint(v);
    w.string(this.winner);
    w.uvarint(this.players.length);
    for (const p of this.players) {
      w.string(p.id).string(p.name);
      for (const v of [p.x, p.y, p.vx, p.vy, p.input, p.score, p.online ? 1 : 0, p.cooldown]) w.varint(v);
    }
    w.uvarint(this.gems.length);
    for (const g of this.gems) w.varint(g.x).varint(g.y).varint(g.value);
  }

  /** restore replaces the state with what snapshot wrote. */
  restore(d: SimDriver, data: Uint8Array): void {
    const r = new ByteReader(data);
    this.#clear();
    this.round = r.varint();
    this.clock = r.varint();
    this.pause = r.varint();
    this.winnerScore = r.varint();
    this.winner = r.string();
    for (let n = count(r); n > 0; n--) {
      const id = r.string();
      const name = r.string();
      const [x, y, vx, vy, input, score, online, cooldown] = Array.from({ length: 8 }, () => r.varint()) as [
        number, number, number, number, number, number, number, number,
      ];
      this.players.push({ id, name, x, y, vx, vy, input, score, online: online === 1, cooldown });
    }
    for (let n = count(r); n > 0; n--) this.gems.push({ x: r.varint(), y: r.varint(), value: r.varint() });
    if (r.remaining > 0) throw new RangeError("sim: bytes after the snapshot");
    this.#arena = new Arena(this);
    d.spawn(this.#arena);
  }
}

/** count reads a number of items, each at least one byte (sim.go's reader.count). */
function count(r: ByteReader): number {
  const n = r.uvarint();
  if (n > r.remaining) throw new RangeError("sim: a snapshot cut short");
  return n;
}

/** Arena is the World's one entity: it runs the game's tick. */
class Arena implements Entity {
  constructor(readonly world: World) {}
  simTick(d: SimDriver): void {
    this.world.tick(d);
  }
}

function move(p: Player): void {
  let ax = 0;
  let ay = 0;
  if (p.input & LEFT) ax--;
  if (p.input & RIGHT) ax++;
  if (p.input & UP) ay--;
  if (p.input & DOWN) ay++;
  const acc = ax !== 0 && ay !== 0 ? ACCEL_DIAG : ACCEL;
  p.vx = div((p.vx + ax * acc) * 15, 16);
  p.vy = div((p.vy + ay * acc) * 15, 16);
  [p.x, p.vx] = bounce(p.x + p.vx, p.vx, WIDTH);
  [p.y, p.vy] = bounce(p.y + p.vy, p.vy, HEIGHT);
  if (p.cooldown > 0) p.cooldown--;
}

function bounce(x: number, v: number, size: number): [number, number] {
  if (x < PLAYER_RADIUS) return [PLAYER_RADIUS, div(-v, 2)];
  if (x > size - PLAYER_RADIUS) return [size - PLAYER_RADIUS, div(-v, 2)];
  return [x, v];
}

/** isqrt is the integer square root of n ≥ 0 (Newton's method, as sim.go's). */
export function isqrt(n: number): number {
  if (n < 2) return n;
  let x = n;
  let y = div(n + 1, 2);
  while (y < x) {
    x = y;
    y = div(y + div(n, y), 2);
  }
  return x;
}

/** parseInput reads the body of an input event (sim.ParseInput). */
export function parseInput(body: string): number | undefined {
  if (body.length !== 1) return undefined;
  const c = body.charCodeAt(0);
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10;
  return undefined;
}

/** formatInput is the body of an input event of bits (sim.FormatInput). */
export function formatInput(input: number): string {
  return "0123456789abcdef"[input & 15]!;
}

/** validName reports whether s may be a player's name (sim.ValidName): 1 to 12 printable ASCII characters. */
export function validName(s: string): boolean {
  if (s.length < 1 || s.length > MAX_NAME_LEN) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}
