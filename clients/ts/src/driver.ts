// SimDriver drives a deterministic game simulation from a stream: the
// twin of Go's gamesim.Driver (docs/gamesim-spec.md is the contract of
// both). Processing tick k:
//
//  1. Rand is re-derived from (seed, k), the seed coming from the body of
//     the last "_a" (the stream's epoch).
//  2. The events stamped k are dispatched in stream order: "_a" clears
//     every entity and pending spawn, reseeds Rand from its body and calls
//     onReset; "_c" onConnect; "_d" onDisconnect; "_x" onDesync (and a
//     resync when it names this client); other server types are skipped;
//     anything else calls onClientEvent.
//  3. Every entity's simTick runs, in spawn order.
//  4. The spawns and destroys requested during 2 and 3 take effect, in the
//     order they were requested: a spawned entity first ticks at k+1.
//  5. At a checkpoint tick (a multiple of the stream's interval), the
//     state is snapshotted and its hash reported.
//
// Everything runs on the one JavaScript thread: callbacks run inside
// update (or run's frames), never while another runs.

import { ByteWriter } from "./bytes.js";
import { EventStreamClient, sleep, TypeConnect, TypeDesync, TypeDisconnect, TypeReset, ServerOrigin, type Checkpoint, type Event, type Snapshot, type Update } from "./client.js";
import { EventStreamError, LocalCode } from "./errors.js";
import { Rand, seedOf } from "./rand.js";
import { hashOf } from "./sha256.js";
import { parseSnapshot, writeSnapshotHeader } from "./snapshot.js";

/** Sim is a game simulation; its methods are called while a tick is processed. */
export interface Sim {
  /** "_a": after every entity was cleared and Rand reseeded, start the scene from scratch. */
  onReset(d: SimDriver, r: Reset): void;
  /** A client connected. */
  onConnect(d: SimDriver, publicId: string): void;
  /** A client went silent. */
  onDisconnect(d: SimDriver, publicId: string): void;
  /** A client's event; e.origin is the sender's public id. */
  onClientEvent(d: SimDriver, e: Event): void;
  /** Optional (gamesim's DesyncHandler): the server named clients whose state diverged. */
  onDesync?(d: SimDriver, x: Desync): void;
  /**
   * Optional (gamesim's CheckpointHandler): the driver learned of a later checkpoint whose canonical hash the server
   * told it (lastCheckpoint), for a game to show the stream's verified state. Called in update, between ticks; for the
   * player, never simulation state (drivers learn of checkpoints at different times).
   */
  onCheckpoint?(d: SimDriver, c: Checkpoint): void;
  /** Optional (gamesim's StateHasher): a hash of the state, recorded after every tick when DriverConfig.recordHashes is set. */
  stateHash?(d: SimDriver): bigint;
  /**
   * Optional (gamesim's Snapshotter, with restore): write the whole state
   * after the driver's header, canonically (the same state gives the same
   * bytes on every client, in every language), every entity of
   * d.entities() in that order included.
   */
  snapshot?(d: SimDriver, w: ByteWriter): void;
  /** Replace the state with what snapshot wrote, spawning the entities again in their order with d.spawn. */
  restore?(d: SimDriver, data: Uint8Array): void;
}

/** Entity is a simulation-aware object, ticked once per tick in spawn order; entities are compared by identity. */
export interface Entity {
  simTick(d: SimDriver): void;
}

/** Reset tells onReset which stream starts. */
export interface Reset {
  /** The body of the "_a": the epoch Rand is seeded from. */
  epoch: string;
  /** The epoch this driver ran before: "" at its first start. It differs between clients: never simulation state. */
  previous: string;
}

/** Desync is a desync the server found ("_x"). */
export interface Desync {
  /** The checkpoint tick at which the clients diverged. */
  checkpoint: number;
  /** The public ids of the clients that diverged. */
  ids: string[];
  /** This client is among them. It differs between clients: never simulation state. */
  self: boolean;
}

/** TickHash is the state hash after a tick of an epoch. */
export interface TickHash {
  epoch: string;
  tick: number;
  hash: bigint;
}

/** A frame scheduler: calls cb with a time in ms, returns how to cancel. requestAnimationFrame and a timer are such. */
export type FrameScheduler = (cb: (nowMs: number) => void) => () => void;

/** DriverConfig configures a SimDriver; every field is optional. */
export interface DriverConfig {
  /** Ticks behind the last t received before catching up faster than the tick rate; 0: adaptive when pushing, 4 when polling. */
  catchUpThreshold?: number;
  /** Most ticks one update processes, so that a frame never stalls; 64 by default. */
  maxTicksPerUpdate?: number;
  /** Keep the state hash of the last this-many ticks (hashes()); the Sim must have stateHash. */
  recordHashes?: number;
  /** What paces run: requestAnimationFrame in a page, a 5 ms timer elsewhere. */
  frames?: FrameScheduler;
  /** The clock of arrivals, in ms (for the adaptive threshold); performance.now by default. */
  now?: () => number;
}

export const DefaultCatchUpThreshold = 4;
export const DefaultMaxTicksPerUpdate = 64;
/** How many checkpoints' snapshots a driver keeps, to answer the server's requests for one. */
export const KeptSnapshots = 8;

interface EntityOp {
  e: Entity;
  spawn: boolean;
}

/** Kept is the snapshot of a checkpoint tick this driver simulated. */
interface Kept {
  tick: number;
  epoch: string;
  data: Uint8Array;
}

const never = Number.MAX_SAFE_INTEGER;
// How a failed upload is retried: after uploadRetryMs, doubling, while the
// wait is at most maxUploadRetryMs (about 6 s in all, within the 10 s a
// checkpoint is kept).
const uploadRetryMs = 200;
const maxUploadRetryMs = 3200;

function defaultFrames(): FrameScheduler {
  const raf = (globalThis as { requestAnimationFrame?: (cb: (t: number) => void) => number }).requestAnimationFrame;
  const caf = (globalThis as { cancelAnimationFrame?: (h: number) => void }).cancelAnimationFrame;
  if (raf && caf) {
    return (cb) => {
      const h = raf(cb);
      return () => caf(h);
    };
  }
  return (cb) => {
    const h = setTimeout(() => cb(performance.now()), 5);
    return () => clearTimeout(h);
  };
}

/** SimDriver drives a Sim from a stream (gamesim.Driver). */
export class SimDriver {
  readonly #client: EventStreamClient | null;
  readonly #sim: Sim;
  readonly #threshold: number;
  readonly #fixedThreshold: boolean;
  readonly #maxTicks: number;
  readonly #record: number;
  readonly #frames: FrameScheduler;
  readonly #now: () => number;
  readonly #snapshots: boolean; // the sim has snapshot and restore (gamesim's Snapshotter): it takes part in checkpoints

  // The simulation.
  #next = 0; // the next tick to process
  #tick = -1; // the tick being processed, or the last processed
  #epoch = "";
  #live = never; // ticks from here on are new to this driver: it may send
  #seed: [bigint, bigint] = [0n, 0n];
  readonly #rand = new Rand();
  #entities: Entity[] = [];
  #ops: EntityOp[] = [];
  #processing = false;
  #replayingNow = false;
  #hashes: TickHash[] = [];
  #hashNext = 0;
  #last = -1; // the time of the last update, ms; -1 before the first
  #acc = 0;
  #ckpt = 0;
  #joined = never; // the tick this driver joined the epoch at: it was there from it on
  #told = new Map<string, number>(); // public id -> the tick of the "_x" that first named it
  #reloadedAt = -1; // the last tick played with a state a resync replaced; -1 for none
  #reloading = false; // an "_x" named this client: no reports until the reload
  #kept: Kept[] = [];
  #toldCheckpoint: Checkpoint | null = null; // the lastCheckpoint onCheckpoint was told last
  #uploading = new Set<string>(); // uploads under way: kind, epoch, tick

  // From the network.
  #buf: Event[] = [];
  #knownT = 0; // every tick below is final
  #tickRate = 20;
  #reset = false;
  #liveFrom = never;
  #joinedFrom = never; // the first liveFrom of joinedEpoch
  #joinedEpoch = "";
  #netCkpt = 0;
  #arrived = -1;
  #gaps = new Array<number>(8).fill(0);
  #gapNext = 0;
  #adaptive = 0;
  #restore: Snapshot | null = null;
  #resync = false;
  #resyncs = 0;
  #err: unknown = null;
  #netErr: unknown = null; // what stopped the network for good
  #abort: AbortController | null = null;
  #net: Promise<void> | null = null;
  #uploads = new Set<Promise<unknown>>();

  /** A driver of sim fed by client; nothing runs until update or run is called. */
  constructor(client: EventStreamClient | null, sim: Sim, cfg: DriverConfig = {}) {
    this.#client = client;
    this.#sim = sim;
    this.#fixedThreshold = (cfg.catchUpThreshold ?? 0) > 0;
    this.#threshold = this.#fixedThreshold ? cfg.catchUpThreshold! : DefaultCatchUpThreshold;
    this.#maxTicks = (cfg.maxTicksPerUpdate ?? 0) > 0 ? cfg.maxTicksPerUpdate! : DefaultMaxTicksPerUpdate;
    this.#record = Math.max(cfg.recordHashes ?? 0, 0);
    this.#frames = cfg.frames ?? defaultFrames();
    this.#now = cfg.now ?? (() => performance.now());
    this.#snapshots = typeof sim.snapshot === "function" && typeof sim.restore === "function";
  }

  /**
   * replay drives sim through a recorded stream with no network and no
   * pacing: every tick below until is processed at once. events start with
   * the stream's "_a" at tick 0, in stream order, all below until.
   */
  static replay(sim: Sim, events: readonly Event[], until: number, cfg: DriverConfig = {}): SimDriver {
    if (events.length === 0 || events[0]!.type !== TypeReset || events[0]!.t !== 0) {
      throw new RangeError("replay: a replay starts with the stream's _a at tick 0, which holds its seed");
    }
    if (events[events.length - 1]!.t >= until) {
      throw new RangeError(`replay: the replay runs to tick ${until}, but an event is at tick ${events[events.length - 1]!.t}`);
    }
    for (let i = 1; i < events.length; i++) {
      if (events[i]!.t < events[i - 1]!.t) throw new RangeError(`replay: events[${i}] is at tick ${events[i]!.t}, before the event before it`);
    }
    const d = new SimDriver(null, sim, cfg);
    d.#processUntil(until, events);
    return d;
  }

  /** replayFrom is replay from a snapshot a driver made: events follow the snapshot's tick, in stream order, all below until. */
  static replayFrom(sim: Sim, snapshot: Uint8Array, events: readonly Event[], until: number, cfg: DriverConfig = {}): SimDriver {
    const d = new SimDriver(null, sim, cfg);
    d.#restoreFrom(snapshot);
    events.forEach((e, i) => {
      if (e.t <= d.#tick) throw new RangeError(`replayFrom: events[${i}] is at tick ${e.t}, not after the snapshot's tick ${d.#tick}`);
      if (e.t >= until) throw new RangeError(`replayFrom: the replay runs to tick ${until}, but events[${i}] is at tick ${e.t}`);
      if (i > 0 && e.t < events[i - 1]!.t) throw new RangeError(`replayFrom: events[${i}] is at tick ${e.t}, before the event before it`);
    });
    d.#processUntil(until, events);
    return d;
  }

  /** rand is the simulation's only source of randomness, re-derived at every tick. */
  rand(): Rand {
    return this.#rand;
  }

  /** The tick being processed or, between ticks, the last processed; -1 before the first. */
  get tick(): number {
    return this.#tick;
  }

  /** The epoch being simulated (the body of its last "_a"); "" before the first tick. */
  get epoch(): string {
    return this.#epoch;
  }

  /** Whether the tick being processed was played before this driver joined, or already acted on: sendEvent sends nothing then. */
  get replaying(): boolean {
    return this.#tick < this.#live;
  }

  /** This client's public id ("" before the first sync and in a replay): for local decisions, never for state. */
  get publicId(): string {
    return this.#client?.publicId ?? "";
  }

  /**
   * The latest checkpoint of the epoch whose canonical hash the server told this driver's client, or null: the stream's
   * snapshot, when the driver joined or resynced from it or uploaded it (EventStreamClient.lastCheckpoint says which
   * checkpoints the server tells of). Null in a replay. Gamesim's LastCheckpoint.
   */
  get lastCheckpoint(): Checkpoint | null {
    return this.#client?.lastCheckpoint ?? null;
  }

  /** tellCheckpoint calls the sim's onCheckpoint when lastCheckpoint moved since it was last told. */
  #tellCheckpoint(): void {
    const c = this.lastCheckpoint;
    const told = this.#toldCheckpoint;
    if (!this.#sim.onCheckpoint || !c || (told && told.t === c.t && told.hash === c.hash && told.epoch === c.epoch)) return;
    this.#toldCheckpoint = c;
    this.#sim.onCheckpoint(this, c);
  }

  /** How many times this driver reloaded its state after the server named it in a desync. */
  get resyncs(): number {
    return this.#resyncs;
  }

  /** The error that stopped the network, or a snapshot that failed; null when none. */
  get err(): unknown {
    return this.#err;
  }

  /** The entities in the scene, in spawn order. */
  entities(): Entity[] {
    return this.#entities.slice();
  }

  /** spawn adds e to the scene at the end of the tick being processed. */
  spawn(e: Entity): void {
    if (!this.#processing) throw new EventStreamError(0, LocalCode.NotProcessing, "entities may be spawned and destroyed only while a tick or event is processed");
    if (e == null) throw new EventStreamError(0, LocalCode.NilEntity, "no entity");
    if (this.#present(e)) throw new EventStreamError(0, LocalCode.Spawned, "entity already spawned");
    this.#ops.push({ e, spawn: true });
  }

  /** destroy removes e from the scene at the end of the tick being processed. */
  destroy(e: Entity): void {
    if (!this.#processing) throw new EventStreamError(0, LocalCode.NotProcessing, "entities may be spawned and destroyed only while a tick or event is processed");
    if (e == null) throw new EventStreamError(0, LocalCode.NilEntity, "no entity");
    if (!this.#present(e)) throw new EventStreamError(0, LocalCode.UnknownEntity, "entity not in the scene");
    this.#ops.push({ e, spawn: false });
  }

  /** present reports whether e will be in the scene once the pending spawns and destroys take effect. */
  #present(e: Entity): boolean {
    let inScene = this.#entities.includes(e);
    for (const op of this.#ops) if (op.e === e) inScene = op.spawn;
    return inScene;
  }

  /**
   * sendEvent queues an event for the next sync; act on it when it comes
   * back in onClientEvent. While replaying it sends nothing and throws
   * (code "replaying"); in a replay it does nothing. A spectator's driver
   * (its client's ClientConfig.spectate: a replay viewer, a tournament
   * screen) sends nothing and throws (code "spectator"); it snapshots its
   * checkpoints as a player's does (a game may show their hashes), but
   * reports no hash and uploads nothing (gamesim's SendEvent).
   */
  sendEvent(type: string, body = ""): void {
    if (!this.#client) return;
    if (this.#replayingNow) throw new EventStreamError(0, LocalCode.Replaying, "ticks already played are being re-simulated; their inputs are not sent again");
    this.#client.send(type, body);
  }

  /** The recorded state hashes, oldest first. */
  hashes(): TickHash[] {
    if (this.#hashes.length < this.#record) return this.#hashes.slice();
    return [...this.#hashes.slice(this.#hashNext), ...this.#hashes.slice(0, this.#hashNext)];
  }

  /** snapshot returns the snapshot of the state between ticks, as made at a checkpoint (gamesim.SnapshotOf). */
  snapshot(): Uint8Array {
    if (!this.#sim.snapshot) throw new EventStreamError(0, LocalCode.BadSnapshot, "the Sim has no snapshot method");
    return this.#snapshotAt(this.#tick);
  }

  #processUntil(end: number, events: readonly Event[]): void {
    let i = 0;
    for (let k = this.#next; k < end; k++) {
      const from = i;
      while (i < events.length && events[i]!.t <= k) i++;
      this.#process(k, events.slice(from, i));
    }
  }

  /** process runs tick k with its events, as the header says. */
  #process(k: number, events: readonly Event[]): void {
    this.#tick = k;
    this.#processing = true;
    this.#replayingNow = k < this.#live;
    try {
      this.#rand.reseed(this.#seed, k);
      for (const e of events) {
        switch (e.type) {
          case TypeReset: {
            this.#entities = [];
            this.#ops = [];
            if (e.body !== this.#epoch) {
              // a new epoch, not a resync from tick 0
              this.#told = new Map();
              this.#reloadedAt = -1;
              this.#reloading = false;
            }
            const r: Reset = { epoch: e.body, previous: this.#epoch };
            this.#epoch = e.body;
            this.#seed = seedOf(e.body);
            this.#rand.reseed(this.#seed, k);
            this.#sim.onReset(this, r);
            break;
          }
          case TypeConnect:
            this.#sim.onConnect(this, e.body);
            break;
          case TypeDisconnect:
            this.#sim.onDisconnect(this, e.body);
            break;
          case TypeDesync:
            this.#onDesync(k, e);
            break;
          default:
            if (!e.type.startsWith(ServerOrigin)) this.#sim.onClientEvent(this, e);
          // else a server event of a later protocol: not for this version
        }
      }
      for (const e of this.#entities) e.simTick(this);
      for (const op of this.#ops) {
        if (op.spawn) {
          this.#entities.push(op.e);
        } else {
          const i = this.#entities.indexOf(op.e);
          if (i >= 0) this.#entities.splice(i, 1);
        }
      }
      this.#ops = [];
    } finally {
      this.#processing = false;
      this.#replayingNow = false;
    }
    this.#next = k + 1;
    if (this.#snapshots && this.#client && this.#ckpt > 0 && k % this.#ckpt === 0) this.#checkpointAt(k);
    if (this.#record > 0 && this.#sim.stateHash) {
      const th: TickHash = { epoch: this.#epoch, tick: k, hash: this.#sim.stateHash(this) };
      if (this.#hashes.length < this.#record) {
        this.#hashes.push(th);
      } else {
        this.#hashes[this.#hashNext] = th;
        this.#hashNext = (this.#hashNext + 1) % this.#hashes.length;
      }
    }
  }

  #snapshotAt(k: number): Uint8Array {
    const w = new ByteWriter();
    writeSnapshotHeader(w, this.#epoch, k, this.#entities.length);
    this.#sim.snapshot!(this, w);
    return w.finish();
  }

  /** checkpointAt snapshots checkpoint tick k, keeps the snapshot and reports its hash. */
  #checkpointAt(k: number): void {
    if (this.#reloading || this.#keptSnapshot(this.#epoch, k)) {
      // The state is to be replaced, or this checkpoint was played before
      // a reload: the server keeps the first report, and a dump must be
      // the state that report hashed.
      return;
    }
    let data: Uint8Array;
    try {
      data = this.#snapshotAt(k);
    } catch (e) {
      this.#err = e;
      return;
    }
    this.#kept.push({ tick: k, epoch: this.#epoch, data });
    if (this.#kept.length > KeptSnapshots) this.#kept.splice(0, this.#kept.length - KeptSnapshots);
    this.#client!.reportHash(k, hashOf(data));
  }

  #keptSnapshot(epoch: string, k: number): Uint8Array | null {
    for (let i = this.#kept.length - 1; i >= 0; i--) {
      const c = this.#kept[i]!;
      if (c.tick === k && c.epoch === epoch) return c.data;
    }
    return null;
  }

  /** restoreFrom replaces the state with a snapshot: the driver then processes the tick after it. */
  #restoreFrom(data: Uint8Array): void {
    if (!this.#sim.restore) throw new EventStreamError(0, LocalCode.BadSnapshot, "the Sim has no restore method");
    const h = parseSnapshot(data);
    this.#entities = [];
    this.#ops = [];
    this.#epoch = h.epoch;
    this.#seed = seedOf(h.epoch);
    this.#tick = h.tick;
    this.#rand.reseed(this.#seed, h.tick);
    this.#processing = true; // restore spawns
    let err: unknown = null;
    try {
      this.#sim.restore(this, h.sim);
    } catch (e) {
      err = e;
    }
    this.#processing = false;
    for (const op of this.#ops) if (op.spawn) this.#entities.push(op.e);
    this.#ops = [];
    if (err) throw new EventStreamError(0, LocalCode.BadSnapshot, `restoring tick ${h.tick}: ${(err as Error).message ?? err}`);
    if (this.#entities.length !== h.entities) {
      throw new EventStreamError(0, LocalCode.BadSnapshot, `restoring tick ${h.tick} spawned ${this.#entities.length} entities, not the ${h.entities} of the snapshot`);
    }
    this.#next = h.tick + 1;
  }

  /**
   * onDesync processes an "_x" at tick k. One divergence is told once, to
   * the drivers that were there (docs/gamesim-spec.md, "Desyncs"): a
   * client named again for a checkpoint it played before an earlier "_x"
   * named it is the same divergence (not told, not reloaded again); the
   * sim is told only of ticks played live, and of checkpoints from when
   * this driver joined or that it reloads for; a driver reloads when it
   * is named for the state it has now. The ids are recorded even while
   * replaying, so that drivers that saw the same events agree.
   */
  #onDesync(k: number, e: Event): void {
    let t: number;
    let ids: string[];
    try {
      const v = JSON.parse(e.body) as { t?: unknown; ids?: unknown };
      if (typeof v.t !== "number" || !Array.isArray(v.ids) || !v.ids.every((id) => typeof id === "string")) return;
      t = v.t;
      ids = v.ids as string[];
    } catch {
      return; // not one this version can read
    }
    const fresh: string[] = [];
    for (const id of ids) {
      const at = this.#told.get(id);
      if (at !== undefined && t <= at) continue;
      this.#told.set(id, k);
      fresh.push(id);
    }
    if (fresh.length === 0 || this.replaying) return;
    const x: Desync = { checkpoint: t, ids: fresh, self: this.#client !== null && fresh.includes(this.#client.publicId) };
    const reload = x.self && this.#snapshots && t > this.#reloadedAt && !this.#reloading;
    if (t >= this.#joined || reload) this.#sim.onDesync?.(this, x);
    if (reload) {
      this.#reloading = true; // its next checkpoints are of the state it leaves
      this.#resync = true; // the network side fetches the snapshot
    }
  }

  /** reloaded records that the state was replaced (a resync, a join from a snapshot, a new epoch) after tick last had been played. */
  #reloaded(last: number): void {
    this.#reloadedAt = Math.max(this.#reloadedAt, last);
    this.#reloading = false;
  }

  /**
   * update processes the ticks due at nowMs (a monotonic time in ms, such
   * as requestAnimationFrame's) and returns how many it processed. Call it
   * once per frame; every callback runs inside it. The first call starts
   * the network.
   */
  update(nowMs: number): number {
    this.#start();
    const replaced = this.#tick; // the last tick played with the state a reload replaces
    if (this.#restore) {
      const snap = this.#restore;
      this.#restore = null;
      try {
        this.#restoreFrom(snap.data);
      } catch (e) {
        this.#err = e; // start again from tick 0
        this.#client?.rewind(0);
        this.#buf = [];
        this.#reset = true;
        this.#knownT = 0;
        this.#liveFrom = never;
      }
      this.#reloaded(replaced);
    }
    if (this.#reset) {
      this.#reset = false;
      this.#next = 0;
      this.#reloaded(replaced);
    }
    // Events of ticks already played are in the state: those at or below a
    // snapshot's tick, which may come in any update after the one that
    // brought base (the snapshot fetched then can be newer than its t).
    let drop = 0;
    while (drop < this.#buf.length && this.#buf[drop]!.t < this.#next) drop++;
    this.#buf.splice(0, drop);
    this.#live = this.#liveFrom;
    this.#joined = this.#joinedFrom;
    this.#ckpt = this.#netCkpt;
    const n = this.#due(nowMs, 1000 / this.#tickRate);
    const end = this.#next + n;
    let k = 0;
    while (k < this.#buf.length && this.#buf[k]!.t < end) k++;
    const events = this.#buf.splice(0, k);
    this.#processUntil(end, events);
    this.#tellCheckpoint();
    return n;
  }

  /** due returns how many ticks to process at now, and moves the pacing clock on. */
  #due(now: number, tickMs: number): number {
    if (this.#last < 0) this.#last = now;
    if (now > this.#last) this.#acc += now - this.#last;
    this.#last = now;
    const available = Math.max(this.#knownT - this.#next, 0); // ticks below the last t received
    const byClock = Math.floor(this.#acc / tickMs);
    let n = Math.min(byClock, available);
    const threshold = this.#adaptive > 0 ? this.#adaptive : this.#threshold;
    const behind = available - n;
    if (behind > threshold) n += behind - threshold; // catch up to within the threshold
    n = Math.min(n, this.#maxTicks);
    this.#acc -= Math.min(n, byClock) * tickMs;
    if (n === available) this.#acc = Math.min(this.#acc, tickMs); // caught up: bank no time while waiting
    return n;
  }

  /**
   * run drives the simulation in real time, a frame at a time, until
   * signal aborts (it resolves) or the network stops for good (it rejects
   * with the EventStreamError). In a page, requestAnimationFrame stops
   * while the tab is hidden: the simulation (and its checkpoint reports)
   * waits, and catches up when the tab is shown, at most
   * maxTicksPerUpdate ticks a frame; pass DriverConfig.frames (a timer)
   * to keep it running.
   */
  run(signal?: AbortSignal): Promise<void> {
    this.#start();
    return new Promise((resolve, reject) => {
      let cancel = (): void => {};
      const stop = (err: unknown): void => {
        cancel();
        signal?.removeEventListener("abort", onAbort);
        void this.close().then(() => (err ? reject(err) : resolve()));
      };
      const onAbort = (): void => stop(null);
      signal?.addEventListener("abort", onAbort);
      if (signal?.aborted) return stop(null);
      const frame = (now: number): void => {
        this.update(now);
        if (this.#netErr !== null) return stop(this.#netErr);
        cancel = this.#frames(frame);
      };
      cancel = this.#frames(frame);
    });
  }

  /** close stops the network and waits for it and for uploads; the state stays readable. */
  async close(): Promise<void> {
    this.#abort?.abort();
    await this.#net;
    await Promise.allSettled([...this.#uploads]);
  }

  #start(): void {
    if (this.#abort || !this.#client) return;
    this.#abort = new AbortController();
    const signal = this.#abort.signal;
    this.#net = this.#client.run((u) => this.#receive(u, signal), signal).then(
      () => {
        this.#net = null;
      },
      (e: unknown) => {
        this.#net = null;
        if (!signal.aborted) this.#err = this.#netErr = e;
      },
    );
  }

  /** receive takes an update from the network. */
  async #receive(u: Update, signal: AbortSignal): Promise<void> {
    const client = this.#client!;
    let resync = this.#resync;
    let snap: Snapshot | null = null;
    if (this.#snapshots && (u.base !== undefined || resync)) {
      try {
        snap = await client.snapshot(signal);
        if (u.base !== undefined && snap && (snap.t < u.base || snap.epoch !== u.epoch)) {
          throw new EventStreamError(0, LocalCode.BadSnapshot, "the snapshot is older than the reply's base, or of another epoch");
        }
      } catch {
        if (u.base !== undefined) {
          client.rewind(0); // it cannot be played without the snapshot: ask again
          return;
        }
        resync = false; // try again after the next sync
      }
    }
    this.#netCkpt = u.checkpointEvery;
    this.#upload(u, signal);
    if (resync) {
      // re-simulate from the snapshot, or from tick 0
      this.#resync = false;
      this.#resyncs++;
      this.#buf = [];
      this.#liveFrom = never;
      if (snap) {
        this.#restore = snap;
        this.#knownT = snap.t + 1;
        client.rewind(snap.t + 1);
      } else {
        this.#reset = true;
        this.#knownT = 0;
        client.rewind(0);
      }
      return; // this update's events come again
    }
    if (u.base !== undefined) {
      if (!snap) {
        this.#err = new EventStreamError(0, LocalCode.BadSnapshot, "the stream was compacted: its Sim must have snapshot and restore to join it");
        return;
      }
      this.#buf = [];
      this.#restore = snap; // update drops the events it holds
    }
    if (u.reset) {
      this.#buf = []; // the old incarnation's events are moot
      this.#reset = true;
      this.#liveFrom = never;
    }
    if (!u.more && this.#liveFrom === never) {
      this.#liveFrom = u.t; // up to date: the ticks from here on are new
      if (this.#joinedEpoch !== u.epoch) {
        this.#joinedFrom = u.t; // a resync does not move it
        this.#joinedEpoch = u.epoch;
      }
    }
    this.#buf.push(...u.events);
    this.#knownT = u.t;
    if (u.tickRate > 0) this.#tickRate = u.tickRate;
    this.#measureJitter(u);
  }

  /**
   * upload answers the server's requests for a snapshot or a dump from the
   * snapshots kept, in the background: every time the server asks, unless
   * an upload of the same is still under way. A failed upload is retried
   * (200 ms, doubling, while the wait is at most 3.2 s) unless the server
   * refused it for good.
   */
  #upload(u: Update, signal: AbortSignal): void {
    const client = this.#client!;
    const asks: [string, number | undefined, (t: number, data: Uint8Array) => Promise<unknown>][] = [
      ["snapshot", u.snap, (t, data) => client.putSnapshot(t, data, signal)],
      ["dump", u.dump, (t, data) => client.putDump(t, data, signal)],
    ];
    for (const [kind, tick, put] of asks) {
      if (tick === undefined) continue;
      const data = this.#keptSnapshot(u.epoch, tick);
      if (!data) continue; // not kept (any more): the server asks another client
      const key = `${kind} ${u.epoch} ${tick}`;
      if (this.#uploading.has(key)) continue;
      this.#uploading.add(key);
      const p = (async () => {
        for (let wait = uploadRetryMs; ; wait *= 2) {
          try {
            await put(tick, data);
            return; // taken
          } catch (e) {
            const se = e instanceof EventStreamError ? e : null;
            if ((se && !se.retryable) || wait > maxUploadRetryMs || signal.aborted) return; // refused for good, or left to the server's next ask
            if (se && se.retryAfterMs > 0) wait = se.retryAfterMs;
            await sleep(wait, signal);
          }
        }
      })().finally(() => {
        this.#uploading.delete(key);
        this.#uploads.delete(p);
      });
      this.#uploads.add(p);
    }
  }

  /** measureJitter sets the adaptive catch-up threshold from the largest gap between the last updates. */
  #measureJitter(u: Update): void {
    if (this.#fixedThreshold || !this.#client || this.#client.transport === "poll" || u.more) return;
    const now = this.#now();
    if (this.#arrived >= 0) {
      const tick = 1000 / this.#tickRate;
      this.#gaps[this.#gapNext] = (now - this.#arrived) / tick;
      this.#gapNext = (this.#gapNext + 1) % this.#gaps.length;
      const worst = Math.max(...this.#gaps);
      this.#adaptive = Math.min(Math.max(Math.ceil(worst), 1), DefaultCatchUpThreshold);
    }
    this.#arrived = now;
  }
}
