// The reference simulation of docs/gamesim-spec.md, the TypeScript twin of
// pkg/gamesim/refsim_test.go: the two must stay identical, and the state
// hashes in pkg/gamesim/testdata/vectors/stream.json say they are.

import { ByteReader, ByteWriter, SimDriver, type Entity, type Event, type Sim } from "../src/index.js";

const size = 32;

// destroy is Go's `_ = d.Destroy(e)`: an entity destroyed twice in a tick is an error that the sim ignores.
function destroy(d: SimDriver, e: Entity): void {
  try {
    d.destroy(e);
  } catch {
    // already being destroyed
  }
}

interface Player {
  id: string;
  x: number;
  y: number;
  score: number;
}

class Coin implements Entity {
  constructor(
    readonly s: RefSim,
    readonly id: bigint,
    public x: number,
    public y: number,
    public ttl: number,
  ) {}

  simTick(d: SimDriver): void {
    this.ttl--;
    for (const p of this.s.players) {
      if (p.x === this.x && p.y === this.y) {
        p.score++;
        destroy(d, this);
        return;
      }
    }
    if (this.ttl <= 0) {
      destroy(d, this);
      this.s.spawnCoin(d);
    }
  }
}

class Clock implements Entity {
  constructor(
    readonly s: RefSim,
    public n: bigint,
    public acc: bigint,
  ) {}

  simTick(d: SimDriver): void {
    this.n++;
    this.acc ^= d.rand().uint64();
    if (this.n % 10n === 0n && this.s.players.length > 0) {
      const perm = d.rand().perm(this.s.players.length);
      this.acc = (this.acc * 31n + BigInt(perm[0]!)) & 0xffffffffffffffffn;
    }
    if (d.rand().float64() < 0.05) this.s.spawnCoin(d);
  }
}

export class RefSim implements Sim {
  players: Player[] = [];
  nextId = 0n;

  spawnCoin(d: SimDriver): void {
    const r = d.rand();
    const c = new Coin(this, this.nextId, r.intN(size), r.intN(size), 1 + r.intN(40));
    this.nextId++;
    d.spawn(c);
  }

  player(id: string): Player | undefined {
    return this.players.find((p) => p.id === id);
  }

  onReset(d: SimDriver): void {
    this.players = [];
    this.nextId = 0n;
    d.spawn(new Clock(this, 0n, 0n));
    for (let i = 0; i < 3; i++) this.spawnCoin(d);
  }

  onConnect(d: SimDriver, id: string): void {
    if (!this.player(id)) this.players.push({ id, x: d.rand().intN(size), y: d.rand().intN(size), score: 0 });
  }

  onDisconnect(_d: SimDriver, id: string): void {
    this.players = this.players.filter((p) => p.id !== id);
  }

  onClientEvent(d: SimDriver, e: Event): void {
    const p = this.player(e.origin);
    if (!p) return;
    switch (e.type) {
      case "move":
        if (e.body === "l") p.x = (p.x + size - 1) % size;
        if (e.body === "r") p.x = (p.x + 1) % size;
        if (e.body === "u") p.y = (p.y + size - 1) % size;
        if (e.body === "d") p.y = (p.y + 1) % size;
        break;
      case "coin":
        this.spawnCoin(d);
        break;
      case "drop": {
        // the first coin of the scene; a second drop in one tick fails on the same coin
        const c = d.entities().find((en) => en instanceof Coin);
        if (c) destroy(d, c);
        break;
      }
      case "jump":
        p.x = Number((BigInt(p.x) + d.rand().int64N(5n)) % BigInt(size));
        p.y = Number((BigInt(p.y) + d.rand().uint64N(5n)) % BigInt(size));
        break;
    }
  }

  snapshot(d: SimDriver, w: ByteWriter): void {
    w.uvarint(this.players.length);
    for (const p of this.players) w.string(p.id).varint(p.x).varint(p.y).varint(p.score);
    w.uvarint(this.nextId);
    for (const en of d.entities()) {
      if (en instanceof Coin) {
        w.byte(0x43).uvarint(en.id).varint(en.x).varint(en.y).varint(en.ttl);
      } else if (en instanceof Clock) {
        w.byte(0x4b).uvarint(en.n).uint64(en.acc);
      } else {
        throw new Error("refsim: unknown entity");
      }
    }
  }

  restore(d: SimDriver, data: Uint8Array): void {
    const r = new ByteReader(data);
    this.players = [];
    for (let n = r.uvarint(); n > 0; n--) this.players.push({ id: r.string(), x: r.varint(), y: r.varint(), score: r.varint() });
    this.nextId = r.uvarintBig();
    while (r.remaining > 0) {
      const kind = r.byte();
      if (kind === 0x43) {
        d.spawn(new Coin(this, r.uvarintBig(), r.varint(), r.varint(), r.varint()));
      } else if (kind === 0x4b) {
        d.spawn(new Clock(this, r.uvarintBig(), r.uint64()));
      } else {
        throw new Error(`refsim: unknown entity kind ${kind}`);
      }
    }
  }
}
