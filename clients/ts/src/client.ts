// EventStreamClient: the client of one eventstreamd stream, as
// docs/protocol.md states the protocol (Go's twin: pkg/esclient's Client).
//
// send queues events; sync does one round trip; run keeps exchanging, on a
// push connection (a WebSocket: each tick arrives as it is sealed) or by
// polling, as ClientConfig.transport says ("auto": push, polling while
// push fails). Every request sends the queued events as one batch with a
// random id, so a retry after a lost reply, or over a new connection,
// cannot append them twice, and a failure never loses them. (Events still
// queued or in flight when the page unloads are lost with it: a reload
// keeps the private id, not the queue, so they are never sent twice.)

import { EventStreamError, LocalCode, statusOf } from "./errors.js";
import { hashOf } from "./sha256.js";

/** An event of a stream. */
export interface Event {
  /** The tick the event belongs to. */
  t: number;
  /** TypeReset, TypeConnect, TypeDisconnect, TypeDesync, another server type, or a client's type. */
  type: string;
  /** ServerOrigin, or the public id of the client that sent it. */
  origin: string;
  /** The epoch for TypeReset, a public id for TypeConnect and TypeDisconnect, whatever the client sent otherwise. */
  body: string;
}

/** Server event types and origin; every type starting with "_" is the server's. */
export const TypeReset = "_a";
export const TypeConnect = "_c";
export const TypeDisconnect = "_d";
export const TypeDesync = "_x";
export const ServerOrigin = "_";

/** The server's default limits, which send checks locally. */
export const MaxTypeLen = 64;
export const MaxBodyLen = 16 * 1024;
export const MaxEventsPerSync = 256;
const maxBatchBytes = 64 * 1024 - 1024; // safely below the default 64 KiB request limit

/** What one sync (or one push message) brought. */
export interface Update {
  /** This client's public id in the stream. */
  publicId: string;
  /** The tick in progress: every tick below it is final, and events holds every event below it not yet received. */
  t: number;
  /** The incarnation of the stream. */
  epoch: string;
  /** The stream's ticks per second. */
  tickRate: number;
  /** The new events, in stream order. */
  events: Event[];
  /** The events start again from tick 0 (the first sync, or the stream was created anew): drop all state built from earlier events. */
  reset: boolean;
  /** The server had more events than fit in one reply; run asks again at once. */
  more: boolean;
  /** How many queued events were dropped because the stream started anew (see ClientConfig.keepQueueOnReset). */
  dropped: number;
  /** The checkpoint interval in ticks (report the hash of every multiple of it); 0 when checkpoints are off. */
  checkpointEvery: number;
  /** Set when the ticks asked for were compacted: events start after the snapshot of this tick (snapshot()). */
  base?: number;
  /** Set when the server asks for this client's snapshot of this checkpoint (putSnapshot). */
  snap?: number;
  /** Set when the server asks for this client's snapshot of this checkpoint for a desync report (putDump). */
  dump?: number;
}

/** A stream's verified state at the end of a checkpoint tick. */
export interface Snapshot {
  t: number;
  hash: string;
  epoch: string;
  data: Uint8Array;
}

/** A checkpoint the server judged: its tick, of an epoch, and its canonical hash (esclient's Checkpoint). */
export interface Checkpoint {
  t: number;
  hash: string;
  epoch: string;
}

/** The state hash of a checkpoint tick, as a sync reports it. */
export interface HashReport {
  t: number;
  h: string;
}

/** How run exchanges with the server (docs/protocol.md, "Push"). */
export type Transport = "auto" | "poll" | "push";

/** Where the private id is kept: localStorage and sessionStorage are such. */
export interface PrivateIdStorage {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
}

/**
 * The part of a WebSocket the client uses: the browser's, or Node's (node
 * --experimental-websocket, or the ws package). The client sets the
 * handlers: onmessage gets an event with data (a string), onclose one with
 * code. (Their parameters are typed never so that every WebSocket's
 * handler types fit.)
 */
export interface WebSocketLike {
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: never) => void) | null;
  onmessage: ((ev: never) => void) | null;
  onclose: ((ev: never) => void) | null;
  onerror: ((ev: never) => void) | null;
}

export type WebSocketConstructor = new (url: string) => WebSocketLike;

/** How the client fetches: globalThis.fetch, or one of the same shape. */
export type FetchLike = (input: string, init: RequestInit) => Promise<Response>;

/** ClientConfig configures an EventStreamClient; baseUrl and stream are required. */
export interface ClientConfig {
  /** The server's address, such as "http://localhost:9922". */
  baseUrl: string;
  /** The stream's name: 1 to 128 characters of A-Z a-z 0-9 . _ ~ - */
  stream: string;
  /**
   * This client's secret id; by default the one kept in storage under
   * storageKey (created there the first time), and for a spectator a new
   * random one (with a token, pass its sub).
   */
  privateId?: string;
  /**
   * Where the private id is kept: by default globalThis.localStorage, when
   * there is one; null keeps none (a new player every time). Every tab of
   * an origin shares localStorage, so every tab is the same player; pass
   * sessionStorage for a player per tab that a reload keeps.
   */
  storage?: PrivateIdStorage | null;
  /** The storage key of the private id; "eventstreamd.privateId" by default. */
  storageKey?: string;
  /** The fetch to use; globalThis.fetch by default. */
  fetch?: FetchLike;
  /**
   * The WebSocket constructor to push with; globalThis.WebSocket by default
   * (browsers, Node 22; Node 20 has none without --experimental-websocket:
   * pass the ws package's). Without one, "auto" polls and "push" is refused.
   */
  WebSocket?: WebSocketConstructor | null;
  /**
   * "auto" (the default: push, polling while push fails, and polling alone
   * when there is no WebSocket), "poll" or "push" (push only: the
   * constructor throws an EventStreamError of code "no_websocket" when
   * there is no WebSocket).
   */
  transport?: Transport;
  /** Time between syncs when polling, in ms; 200 by default. */
  syncIntervalMs?: number;
  /** Cap of the wait between retries, in ms; 5000 by default. */
  maxBackoffMs?: number;
  /** Most events waiting to be sent; 100000 by default. */
  maxQueue?: number;
  /** The first tick the first sync asks for; 0 (the whole stream, as a simulation needs) by default. */
  fromTick?: number;
  /** Keep the queued events when the stream starts anew, instead of dropping them. */
  keepQueueOnReset?: boolean;
  /** A request's timeout, in ms; 10000 by default. */
  timeoutMs?: number;
  /**
   * For a server with auth on (docs/protocol.md, "Tokens"): gets a stream
   * token from the game's backend, whose sub is this client's private id.
   * The client keeps it until 30 s before its exp (read, not verified),
   * or until the server answers token_expired, and then gets a new one
   * (esclient's Config.Token). It is sent as "Authorization: Bearer" on
   * requests and as "?access_token=" on the push upgrade, whose headers a
   * browser cannot set. Without it, no token is sent.
   */
  token?: () => string | Promise<string>;
  /**
   * Makes the client a spectator (docs/protocol.md, "Spectators"; esclient's
   * Config.Spectate): a replay viewer, a tournament screen. It reads the
   * stream as a player does, by poll or push, but never appears in it: no
   * public id (Update.publicId is ""), no _c or _d. Its requests ask for it
   * (?spectate=1; with a spectator's token, its role says so too). send,
   * putSnapshot and putDump throw an EventStreamError of code "spectator",
   * reportHash reports nothing, and run waits for a stream that does not
   * exist yet (the server answers not_found) instead of rejecting. A
   * server that answers with a public id took it for a player: run
   * rejects with code "not_spectating".
   */
  spectate?: boolean;
}

/** Defaults of ClientConfig. */
export const DefaultSyncIntervalMs = 200;
export const DefaultMaxBackoffMs = 5000;
export const RestartBackoffMs = 500;
export const DefaultMaxQueue = 100_000;
export const DefaultTimeoutMs = 10_000;
export const DefaultStorageKey = "eventstreamd.privateId";

// How "auto" falls back to polling, as esclient's Auto.
const pushFailuresBeforePolling = 3;
const pushLivedLongMs = 30_000;
const pollBeforePushAgainMs = 30_000;
const pushSilenceMs = 5000;
const maxPendingHashes = 16;
const tokenRenewBeforeMs = 30_000;
const closeTokenExpired = 4003; // a push connection whose token expired unrenewed

const namePattern = /^[A-Za-z0-9._~-]{1,128}$/;
const utf8 = new TextEncoder();

interface Pending {
  type: string;
  body: string;
  size: number; // bytes of type and encoded body
}

interface Batch {
  id: string;
  events: Pending[];
}

interface WireReply {
  id: string;
  t: number;
  epoch: string;
  tps: number;
  events: Event[];
  more?: boolean;
  ckpt?: number;
  base?: number;
  snap?: number;
  dump?: number;
}

/** randomUUID returns a random (version 4) UUID from crypto.getRandomValues, which, unlike crypto.randomUUID, pages served over plain http have too. */
export function randomUUID(): string {
  const b = new Uint8Array(16);
  globalThis.crypto.getRandomValues(b);
  b[6] = (b[6]! & 0x0f) | 0x40;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/**
 * loadOrCreatePrivateId returns the private id kept in storage under key,
 * or creates a random one and keeps it there (esclient's
 * LoadOrCreatePrivateID). Without storage it returns a new one each time.
 */
export function loadOrCreatePrivateId(storage: PrivateIdStorage | null | undefined, key = DefaultStorageKey): string {
  const kept = storage?.getItem(key);
  if (kept && namePattern.test(kept)) return kept;
  const id = randomUUID();
  storage?.setItem(key, id);
  return id;
}

function defaultStorage(): PrivateIdStorage | null {
  try {
    const s = (globalThis as { localStorage?: PrivateIdStorage }).localStorage;
    return s ?? null;
  } catch {
    return null; // a page whose storage is blocked
  }
}

const rewound = new EventStreamError(0, LocalCode.Network, "the cursor was rewound");

/** EventStreamClient is a client of one stream. Its methods may be called at any time; sync and run must not run at once. */
export class EventStreamClient {
  /** The stream's name. */
  readonly stream: string;
  /** This client's secret id: never log or show it. */
  readonly privateId: string;
  /** How run exchanges with the server. */
  readonly transport: Transport;
  /** Whether the client is a spectator (ClientConfig.spectate). */
  readonly spectator: boolean;

  readonly #baseUrl: string;
  readonly #prefix: string; // baseUrl/stream/privateId/
  readonly #fetch: FetchLike;
  readonly #WebSocket: WebSocketConstructor | null;
  readonly #syncInterval: number;
  readonly #maxBackoff: number;
  readonly #maxQueue: number;
  readonly #timeout: number;
  readonly #keepQueueOnReset: boolean;
  readonly #tokenFn: ClientConfig["token"];
  #token = ""; // the token held, "" for none
  #tokenExp = 0; // its exp, ms; 0: unknown, kept until the server says it expired
  #tokenGetting: Promise<string> | null = null; // one tokenFn call at a time

  #queue: Pending[] = []; // events not yet in a batch
  #postError: EventStreamError | null = null; // the stream is full: posting stopped, reading goes on (#stopPosting)
  #inflight: Batch | null = null; // the batch being sent until a reply confirms it
  #probe = false; // a sync failed: ask for the epoch before sending events
  #hashes: HashReport[] = []; // to report with the next syncs
  #lastT: number;
  #rewinds = 0; // rewind calls: a push connection from before one is stale
  #epoch = "";
  #publicId = "";
  #lastCheckpoint: Checkpoint | null = null;
  #wake: (() => void) | null = null; // wakes the push connection: something to send
  #syncing = false;
  #lastError: EventStreamError | null = null; // what run retries after, until the next update

  constructor(cfg: ClientConfig) {
    let base: URL;
    try {
      base = new URL(cfg.baseUrl);
    } catch {
      throw new EventStreamError(0, "bad_request", `baseUrl ${JSON.stringify(cfg.baseUrl)} must be an http or https URL such as http://localhost:9922`);
    }
    if (base.protocol !== "http:" && base.protocol !== "https:") {
      throw new EventStreamError(0, "bad_request", `baseUrl ${JSON.stringify(cfg.baseUrl)} must be an http or https URL such as http://localhost:9922`);
    }
    if (!namePattern.test(cfg.stream)) {
      throw new EventStreamError(0, "bad_stream", "the stream must be 1 to 128 characters of A-Z a-z 0-9 . _ ~ -");
    }
    // A spectator's id is never looked up: only its syntax counts.
    const id = cfg.privateId ?? (cfg.spectate ? randomUUID() : loadOrCreatePrivateId(cfg.storage === undefined ? defaultStorage() : cfg.storage, cfg.storageKey));
    if (!namePattern.test(id)) {
      throw new EventStreamError(0, "bad_client", "the private id must be 1 to 128 characters of A-Z a-z 0-9 . _ ~ -");
    }
    for (const [name, v] of Object.entries({ syncIntervalMs: cfg.syncIntervalMs, maxBackoffMs: cfg.maxBackoffMs, maxQueue: cfg.maxQueue, fromTick: cfg.fromTick, timeoutMs: cfg.timeoutMs })) {
      if (v !== undefined && !(Number.isFinite(v) && v >= 0)) throw new EventStreamError(0, "bad_request", `${name} must be a non-negative number`);
    }
    const fetchFn = cfg.fetch ?? (globalThis.fetch ? globalThis.fetch.bind(globalThis) : undefined);
    if (!fetchFn) throw new EventStreamError(0, "bad_request", "no fetch: pass ClientConfig.fetch");
    this.stream = cfg.stream;
    this.privateId = id;
    this.#baseUrl = base.href.replace(/\/+$/, "");
    this.#prefix = `${this.#baseUrl}/${cfg.stream}/${id}/`;
    this.#fetch = fetchFn;
    const ws = cfg.WebSocket === undefined ? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket ?? null : cfg.WebSocket;
    if (!ws && cfg.transport === "push") {
      throw new EventStreamError(0, LocalCode.NoWebSocket, 'transport "push" needs a WebSocket and there is none: pass ClientConfig.WebSocket (on Node 20, the ws package\'s, or run node --experimental-websocket), or use transport "auto", which polls without one');
    }
    this.#WebSocket = ws;
    this.transport = ws ? cfg.transport ?? "auto" : "poll";
    this.#syncInterval = cfg.syncIntervalMs || DefaultSyncIntervalMs;
    this.#maxBackoff = cfg.maxBackoffMs || DefaultMaxBackoffMs;
    this.#maxQueue = cfg.maxQueue || DefaultMaxQueue;
    this.#timeout = cfg.timeoutMs || DefaultTimeoutMs;
    this.#keepQueueOnReset = cfg.keepQueueOnReset ?? false;
    this.#tokenFn = cfg.token;
    this.#lastT = cfg.fromTick ?? 0;
    this.spectator = cfg.spectate === true;
  }

  /** The client's public id, or "" before the first sync. */
  get publicId(): string {
    return this.#publicId;
  }

  /** The stream's epoch as of the last sync, or "" before the first. */
  get epoch(): string {
    return this.#epoch;
  }

  /** The tick the next sync asks from: the t of the last reply. */
  get lastT(): number {
    return this.#lastT;
  }

  /**
   * The error run is retrying after (the server unreachable, a 503, a push
   * connection that dropped), or null: set when an exchange with the
   * server fails and run will try again, cleared by the next update. For
   * a page to say why nothing arrives; run rejects with the errors it
   * does not retry.
   */
  get lastError(): EventStreamError | null {
    return this.#lastError;
  }

  /**
   * The latest checkpoint of the stream's current epoch whose canonical hash the server has told this client, or null
   * (docs/gamesim-spec.md, "The last checkpoint"; esclient's LastCheckpoint). The server tells it with the stream's
   * snapshot, which it stores only when the snapshot hashes to the canonical hash of its tick: the snapshot that
   * snapshot() fetched, or the one putSnapshot uploaded and the server stored. It tells no client the hash of the other
   * checkpoints it judges (an "_x" names the clients that diverged, not the hash), so this is the stream's latest
   * verified state as far as this client has seen it, not every verdict. It moves only forward; a new epoch clears it.
   */
  get lastCheckpoint(): Checkpoint | null {
    return this.#lastCheckpoint;
  }

  /**
   * judged takes in a checkpoint the server said the canonical hash of, of the client's epoch when cp.epoch is "": it
   * becomes lastCheckpoint when it is of the client's epoch and later than the one held. Esclient's judged.
   */
  #judged(cp: Checkpoint): void {
    const c = { ...cp, epoch: cp.epoch || this.#epoch };
    const last = this.#lastCheckpoint;
    if ((this.#epoch && c.epoch !== this.#epoch) || (last && last.epoch === c.epoch && last.t >= c.t)) return;
    this.#lastCheckpoint = c;
  }

  /** How many events are queued or in flight. */
  get pending(): number {
    return this.#queue.length + (this.#inflight?.events.length ?? 0);
  }

  /**
   * send queues an event for the next sync. It refuses, with an
   * EventStreamError of status 0 and the code the server would answer,
   * what the server would refuse with its default limits.
   */
  send(type: string, body = ""): void {
    if (this.spectator) throw spectatorError();
    const typeLen = utf8.encode(type).length;
    if (typeLen === 0 || typeLen > MaxTypeLen) throw new EventStreamError(0, "bad_request", `an event type must be 1 to ${MaxTypeLen} bytes`);
    if (type.startsWith(ServerOrigin)) throw new EventStreamError(0, "reserved_type", "event types starting with _ are reserved for the server");
    if (/[\u0000-\u001f\u007f-\u009f]|\p{Surrogate}/u.test(type)) {
      throw new EventStreamError(0, "bad_request", "an event type must hold no control character (U+0000-U+001F, U+007F-U+009F) and no lone surrogate");
    }
    if (/\p{Surrogate}/u.test(body)) throw new EventStreamError(0, "bad_request", "an event body must be valid Unicode (no lone surrogate)");
    const size = utf8.encode(JSON.stringify(body)).length - 2;
    if (size > MaxBodyLen) throw new EventStreamError(0, "too_large", `an event body must be at most ${MaxBodyLen} bytes encoded`);
    if (this.#postError) throw this.#postError;
    if (this.#queue.length >= this.#maxQueue) throw new EventStreamError(0, LocalCode.QueueFull, "the send queue is full");
    this.#queue.push({ type, body, size: typeLen + size });
    this.#wake?.();
  }

  /**
   * reportHash queues the state hash of checkpoint tick t for the next sync that covers it; at most 16 wait, the newest
   * kept. A spectator reports nothing: it has no vote.
   */
  reportHash(t: number, hash: string): void {
    if (this.spectator) return;
    if (this.#hashes.some((h) => h.t === t)) return;
    this.#hashes.push({ t, h: hash });
    if (this.#hashes.length > maxPendingHashes) this.#hashes.splice(0, this.#hashes.length - maxPendingHashes);
    this.#wake?.();
  }

  /** rewind makes the next sync ask for the stream from tick t on; a push connection is opened again from t. */
  rewind(t: number): void {
    this.#lastT = Math.max(t, 0);
    this.#rewinds++;
    this.#wake?.();
  }

  /**
   * sync does one round trip: it sends the queued events as one batch and
   * returns what the server sent back. If it fails, the batch is kept,
   * with its id, and the next sync sends it again.
   */
  async sync(signal?: AbortSignal): Promise<Update> {
    if (this.#syncing) throw new EventStreamError(0, "bad_request", "a sync is already running: sync and run must not run at once");
    this.#syncing = true;
    try {
      return await this.#syncOnce(signal);
    } finally {
      this.#syncing = false;
    }
  }

  async #syncOnce(signal?: AbortSignal): Promise<Update> {
    if (!this.#inflight && this.#queue.length > 0) this.#inflight = this.#takeBatch();
    const target = this.#prefix + this.#lastT + queryOf(this.#cursorQuery());
    let sent = this.#inflight;
    if (this.#probe && this.#epoch) sent = null; // the epoch first: the stream may have started anew meanwhile
    let hashes = this.#hashes.filter((h) => h.t < this.#lastT); // later ones wait for a sync that covers them
    if (!sent && this.#probe) hashes = [];
    const body = encodeRequest(sent, hashes);

    let reply: WireReply;
    try {
      // A GET is a POST with no body, and what a spectator may send.
      const resp = body === null ? await this.#request("GET", target, null, undefined, signal) : await this.#request("POST", target, body, "application/json", signal);
      reply = parseReply(await resp.text(), this.spectator);
    } catch (e) {
      if (sent && this.#stopPosting(e)) throw e; // the next sync reads on, without events
      this.#probe = true;
      throw e;
    }
    this.#probe = false;
    if (sent) this.#inflight = null; // the server has it
    this.#hashes = this.#hashes.filter((h) => !hashes.includes(h));
    return this.#received(reply);
  }

  /**
   * postError is the error that stopped the client's posting (a full stream: code stream_full), or null. While it is set,
   * send throws it and the client only reads; a new epoch clears it. Esclient's PostErr.
   */
  get postError(): EventStreamError | null {
    return this.#postError;
  }

  /**
   * stopPosting takes in e, the refusal of a request that carried a batch, and reports whether it is the stream's refusal
   * of any more events (stream_full): the batch and the queue are dropped, send throws the error from then on, and the
   * client goes on reading, so that a game keeps showing the stream (docs/protocol.md, "Client guidance"). Esclient's stopPosting.
   */
  #stopPosting(e: unknown): boolean {
    if (!(e instanceof EventStreamError) || e.code !== "stream_full") return false;
    this.#postError = e;
    this.#queue = [];
    this.#inflight = null;
    return true;
  }

  /** received takes a reply in: the cursor, the epoch, the public id. */
  #received(reply: WireReply): Update {
    const u: Update = {
      publicId: reply.id,
      t: reply.t,
      epoch: reply.epoch,
      tickRate: reply.tps,
      events: reply.events,
      reset: reply.events.length > 0 && reply.events[0]!.type === TypeReset,
      more: reply.more === true,
      dropped: 0,
      checkpointEvery: reply.ckpt ?? 0,
    };
    if (reply.base !== undefined) u.base = reply.base;
    if (reply.snap !== undefined) u.snap = reply.snap;
    if (reply.dump !== undefined) u.dump = reply.dump;
    if (this.#epoch && reply.epoch !== this.#epoch) {
      this.#hashes = []; // of a game that is gone
      this.#postError = null; // a new stream has room
      if (!this.#keepQueueOnReset) {
        u.dropped = this.pending;
        this.#queue = [];
        this.#inflight = null;
      }
    }
    if (this.#lastCheckpoint && this.#lastCheckpoint.epoch !== reply.epoch) this.#lastCheckpoint = null; // of a game that is gone
    this.#lastT = reply.t;
    this.#epoch = reply.epoch;
    this.#publicId = reply.id;
    return u;
  }

  /**
   * cursorQuery is the query of the next sync or push upgrade: the epoch the cursor was read in (docs/protocol.md,
   * "Sync"), and whether the client spectates ("Spectators"). Esclient's syncTarget.
   */
  #cursorQuery(): string[] {
    const q: string[] = [];
    if (this.#epoch) q.push("epoch=" + encodeURIComponent(this.#epoch));
    if (this.spectator) q.push("spectate=1");
    return q;
  }

  /** waits reports whether a spectator waits for what e says: a stream that does not exist yet (a spectator creates none). */
  #waits(e: EventStreamError): boolean {
    return this.spectator && e.code === "not_found";
  }

  /** takeBatch moves the events that fit in one request from the queue into a new batch with a random id. */
  #takeBatch(): Batch {
    let n = 0;
    let size = 0;
    while (n < this.#queue.length && n < MaxEventsPerSync) {
      size += this.#queue[n]!.size + 32;
      if (n > 0 && size > maxBatchBytes) break;
      n++;
    }
    return { id: randomUUID(), events: this.#queue.splice(0, n) };
  }

  /**
   * run exchanges with the server until signal aborts, calling onUpdate
   * with every update, in order (awaiting it when it returns a promise).
   * Network errors and retryable server errors are retried with capped
   * exponential backoff and jitter, or after the server's Retry-After;
   * queued events are never dropped. It resolves when signal aborts, and
   * rejects with an EventStreamError when the server refuses this client
   * in a way no retry can change (a bad stream name, a full stream).
   */
  async run(onUpdate: (u: Update) => void | Promise<void>, signal?: AbortSignal): Promise<void> {
    if (this.#syncing) throw new EventStreamError(0, "bad_request", "a sync is already running: sync and run must not run at once");
    const sig = signal ?? new AbortController().signal;
    const deliver = (u: Update): void | Promise<void> => {
      this.#lastError = null;
      return onUpdate(u);
    };
    switch (this.transport) {
      case "poll":
        return this.#runPoll(deliver, sig, Infinity);
      case "push":
        return this.#runPush(deliver, sig, false);
      default:
        return this.#runPush(deliver, sig, true);
    }
  }

  /** runPoll is run by polling, until signal aborts or the deadline (a Date.now()) passes. */
  async #runPoll(onUpdate: (u: Update) => void | Promise<void>, signal: AbortSignal, deadline: number): Promise<void> {
    let failures = 0;
    while (!signal.aborted && Date.now() < deadline) {
      let u: Update | null = null;
      let wait: number;
      try {
        u = await this.sync(signal);
        failures = 0;
        wait = this.#syncInterval;
      } catch (e) {
        if (signal.aborted) return;
        const se = asError(e, this.privateId);
        if (!se.retryable && se !== this.#postError && !this.#waits(se)) throw se;
        this.#lastError = se;
        failures++;
        wait = se.retryAfterMs > 0 ? se.retryAfterMs : this.#backoff(failures, restarting(se));
      }
      if (u) {
        await onUpdate(u); // even when signal aborted meanwhile: the cursor has moved past it
        if (u.more) continue;
      }
      await sleep(wait, signal);
    }
  }

  /** runPush runs on push connections; with auto, it polls for a while when they fail. */
  async #runPush(onUpdate: (u: Update) => void | Promise<void>, signal: AbortSignal, auto: boolean): Promise<void> {
    let failures = 0;
    for (;;) {
      const r = await this.#pushOnce(onUpdate, signal);
      if (signal.aborted) return;
      if (r.err === rewound) continue; // at once, from the new cursor
      if (!r.err.retryable) throw r.err; // the server will refuse this client however it comes
      this.#lastError = r.err;
      let refused = false;
      if (!r.opened) {
        // A page cannot see why an upgrade failed: a sync says (and makes progress).
        const token = this.#token;
        try {
          const u = await this.sync(signal);
          await onUpdate(u);
          if (this.#token !== token) continue; // the token had expired: push again with the new one
          refused = true; // the server answers, but not with push
        } catch (e) {
          if (signal.aborted) return;
          const se = asError(e, this.privateId);
          if (!se.retryable && !this.#waits(se)) throw se;
          this.#lastError = se; // says more than a failed upgrade
        }
      }
      if (r.livedMs >= pushLivedLongMs) failures = 0;
      failures++;
      if (auto && (refused || failures >= pushFailuresBeforePolling)) {
        await this.#runPoll(onUpdate, signal, Date.now() + pollBeforePushAgainMs);
        if (signal.aborted) return;
        failures = 0;
        continue;
      }
      const wait = r.err.retryAfterMs > 0 ? r.err.retryAfterMs : this.#backoff(failures, restarting(r.err));
      await sleep(wait, signal);
      if (signal.aborted) return;
    }
  }

  /** pushOnce runs one push connection until it ends, and says how long it lived and why it ended. */
  async #pushOnce(onUpdate: (u: Update) => void | Promise<void>, signal: AbortSignal): Promise<{ livedMs: number; opened: boolean; err: EventStreamError }> {
    let token: string;
    try {
      token = await this.#currentToken();
    } catch (e) {
      return { livedMs: 0, opened: false, err: asError(e, this.privateId) };
    }
    const query = this.#cursorQuery();
    if (token) query.push("access_token=" + encodeURIComponent(token));
    const url = "ws" + this.#prefix.slice("http".length) + this.#lastT + queryOf(query);
    const gen = this.#rewinds;
    const WS = this.#WebSocket!;

    return new Promise((resolve) => {
      let ws: WebSocketLike;
      try {
        ws = new WS(url);
      } catch (e) {
        resolve({ livedMs: 0, opened: false, err: asError(e, this.privateId) });
        return;
      }
      let opened = false;
      let start = Date.now();
      let done = false;
      let ready = false; // the first reply came: the epoch is known
      let sent: Batch | null = null; // sent on this connection, not acknowledged yet
      let retryAt = 0;
      let closed: EventStreamError | null = null;
      const inbox: string[] = [];
      let pumping = false;
      let connToken = token; // the token the connection holds: the upgrade's, or the last renewal sent
      let renewing = false;
      let renewed = false; // a renewal was sent on this connection
      let resend = false; // a refusal may have been the last renewal's: send the token again
      let renewAt = 0; // no renewal is sent before: a refused one waits for its retryAfter

      const finish = (err: EventStreamError): void => {
        if (done) return;
        done = true;
        clearInterval(ticker);
        clearTimeout(silence);
        signal.removeEventListener("abort", onAbort);
        if (this.#wake === trySend) this.#wake = null;
        ws.onopen = ws.onmessage = ws.onerror = null;
        ws.onclose = null;
        try {
          ws.close(1000);
        } catch {
          // already closed
        }
        resolve({ livedMs: opened ? Date.now() - start : 0, opened, err });
      };
      const onAbort = (): void => finish(new EventStreamError(0, LocalCode.Network, "aborted"));
      let silence = setTimeout(() => finish(new EventStreamError(0, LocalCode.Network, "the push connection brought nothing for 5 s")), pushSilenceMs);
      const trySend = (): void => {
        if (done) return;
        if (this.#rewinds !== gen) {
          finish(rewound);
          return;
        }
        if (connToken && !renewing && Date.now() >= renewAt) {
          // A token nearing its exp is renewed on the connection, and sent
          // again when a refusal may have been its renewal's; a failure to
          // get one is left for later (the server closes with 4003).
          renewing = true;
          this.#currentToken()
            .then((tok) => {
              if (done || (tok === connToken && !resend)) return;
              ws.send(JSON.stringify({ token: tok }));
              connToken = tok;
              renewed = true;
              resend = false;
            })
            .catch(() => {})
            .finally(() => (renewing = false));
        }
        if (!ready || Date.now() < retryAt) return;
        const next = this.#nextPush(sent);
        if (!next) return;
        try {
          ws.send(next.data);
        } catch (e) {
          finish(asError(e, this.privateId));
          return;
        }
        if (next.batch) sent = next.batch;
      };
      const ticker = setInterval(trySend, this.#syncInterval);
      this.#wake = trySend;
      signal.addEventListener("abort", onAbort);

      const handle = async (data: string): Promise<void> => {
        if (data.startsWith('{"batch":')) {
          const ack = JSON.parse(data) as { batch?: unknown };
          if (this.#inflight && this.#inflight.id === ack.batch) this.#inflight = null; // applied
        } else if (data.startsWith('{"error":')) {
          const wire = JSON.parse(data) as { error?: { code?: unknown; message?: unknown; retryAfter?: unknown; batch?: unknown } };
          const code = typeof wire.error?.code === "string" ? wire.error.code : "";
          const ra = typeof wire.error?.retryAfter === "number" ? Math.min(wire.error.retryAfter, 3600) * 1000 : 0;
          const se = new EventStreamError(statusOf(code), code, typeof wire.error?.message === "string" ? wire.error.message : data, ra);
          if (sent && this.#stopPosting(se)) {
            sent = null; // dropped: the connection reads on
            return;
          }
          if (!se.retryable) {
            finish(se);
            return;
          }
          retryAt = Date.now() + Math.max(se.retryAfterMs, this.#syncInterval);
          sent = null; // sent again after the wait, with its id
          if (renewed && !wire.error?.batch) {
            // The server answers a renewal only to refuse it, naming no
            // batch, like a message without one: the token is sent again
            // after the wait (one it holds already is taken again, unanswered).
            resend = true;
            renewAt = retryAt;
          }
        } else {
          const reply = parseReply(data, this.spectator);
          // The cursor moves when the update is handed over, not before.
          if (this.#rewinds !== gen) {
            finish(rewound);
            return;
          }
          const u = this.#received(reply);
          ready = true;
          await onUpdate(u);
        }
        if (sent && this.#inflight !== sent) sent = null; // acknowledged (or dropped with its epoch)
      };
      const pump = async (): Promise<void> => {
        if (pumping) return;
        pumping = true;
        try {
          while (!done && inbox.length > 0) {
            await handle(inbox.shift()!);
            trySend();
          }
        } catch (e) {
          finish(asError(e, this.privateId));
        }
        pumping = false;
        if (!done && closed && inbox.length === 0) finish(closed);
      };

      ws.onopen = () => {
        opened = true;
        start = Date.now();
      };
      ws.onmessage = (ev: { data: unknown }) => {
        clearTimeout(silence);
        silence = setTimeout(() => finish(new EventStreamError(0, LocalCode.Network, "the push connection brought nothing for 5 s")), pushSilenceMs);
        inbox.push(typeof ev.data === "string" ? ev.data : String(ev.data));
        void pump();
      };
      ws.onerror = () => {}; // a close follows
      ws.onclose = (ev: { code: number }) => {
        if (ev.code === closeTokenExpired) this.#tokenExpired(connToken); // reconnect with a new one
        closed = new EventStreamError(0, LocalCode.Network, `the push connection closed (${ev.code})`);
        if (!pumping) void pump();
      };
    });
  }

  /** nextPush returns the message to send, if any: the batch in flight (once per connection), or a new one, with the hash reports due. */
  #nextPush(sent: Batch | null): { data: string; batch: Batch | null } | null {
    if (!this.#inflight && this.#queue.length > 0) this.#inflight = this.#takeBatch();
    const hashes = this.#hashes.filter((h) => h.t < this.#lastT);
    let b = this.#inflight;
    if (b === sent) b = null; // sent on this connection: waiting for its acknowledgement
    if (!b && hashes.length === 0) return null;
    this.#hashes = this.#hashes.filter((h) => !hashes.includes(h)); // reports are best effort: not sent twice
    // A message names its batch's epoch: one composed before the client read the push of a new epoch is refused, not applied to the new game.
    return { data: encodeRequest(b, hashes, this.#epoch)!, batch: b };
  }

  /** currentToken returns the token to send, getting one when none is held or the one held expires within 30 s; "" without ClientConfig.token. */
  async #currentToken(): Promise<string> {
    const get = this.#tokenFn;
    if (!get) return "";
    if (this.#token && (this.#tokenExp === 0 || this.#tokenExp - Date.now() > tokenRenewBeforeMs)) return this.#token;
    this.#tokenGetting ??= (async () => {
      try {
        const tok = await get();
        if (typeof tok !== "string" || tok === "") throw new EventStreamError(0, "unauthorized", "ClientConfig.token returned no token");
        this.#token = tok;
        this.#tokenExp = tokenExpiry(tok);
        return tok;
      } finally {
        this.#tokenGetting = null;
      }
    })();
    return this.#tokenGetting;
  }

  /** tokenExpired drops tok, which the server found expired: the next request gets a new one. */
  #tokenExpired(tok: string): void {
    if (this.#token === tok) this.#token = "";
  }

  /** backoff returns the wait after failures in a row: full jitter up to syncInterval·2^failures, capped. */
  #backoff(failures: number, restart: boolean): number {
    let ceiling = this.#maxBackoff;
    if (restart) ceiling = Math.min(ceiling, RestartBackoffMs);
    if (failures < 30) ceiling = Math.min(ceiling, this.#syncInterval * 2 ** failures);
    return Math.random() * ceiling + 1;
  }

  /**
   * snapshot fetches the stream's snapshot (GET /{stream}/snapshot) and
   * checks that its bytes have the hash the server verified; null when the
   * stream has none.
   */
  async snapshot(signal?: AbortSignal): Promise<Snapshot | null> {
    const resp = await this.#request("GET", `${this.#baseUrl}/${this.stream}/snapshot`, null, undefined, signal, [404]);
    if (resp.status === 404) return null;
    const data = new Uint8Array(await resp.arrayBuffer());
    const t = Number(resp.headers.get("Eventstream-Tick"));
    if (!Number.isSafeInteger(t) || t < 0) throw new EventStreamError(0, LocalCode.Network, "a snapshot without its tick (is Eventstream-Tick exposed to this page?)");
    const snap: Snapshot = { t, hash: resp.headers.get("Eventstream-Hash") ?? "", epoch: resp.headers.get("Eventstream-Epoch") ?? "", data };
    if (hashOf(data) !== snap.hash) throw new EventStreamError(0, LocalCode.Network, `the snapshot of tick ${t} does not have its hash`);
    this.#judged({ t, hash: snap.hash, epoch: snap.epoch });
    return snap;
  }

  /**
   * putSnapshot uploads this client's snapshot of checkpoint t, as the server asked (Update.snap); it resolves to whether
   * the server stored it: then its hash is the canonical hash of t (lastCheckpoint). It rejects with code
   * snapshot_mismatch when the bytes do not hash to the canonical hash.
   */
  async putSnapshot(t: number, data: Uint8Array, signal?: AbortSignal): Promise<boolean> {
    if (this.spectator) throw spectatorError();
    const resp = await this.#request("PUT", `${this.#prefix}snapshot/${t}`, data, "application/octet-stream", signal);
    const reply = (await resp.json()) as { t?: unknown; stored?: unknown };
    if (reply.stored !== true) return false;
    if (isInt(reply.t)) this.#judged({ t: reply.t, hash: hashOf(data), epoch: "" });
    return true;
  }

  /** putDump uploads this client's snapshot of checkpoint t for a desync report, as the server asked (Update.dump). */
  async putDump(t: number, data: Uint8Array, signal?: AbortSignal): Promise<void> {
    if (this.spectator) throw spectatorError();
    await this.#request("PUT", `${this.#prefix}dump/${t}`, data, "application/octet-stream", signal);
  }

  /**
   * request sends one request and returns its reply when the status is 2xx
   * (or in also); otherwise it throws the reply's EventStreamError. A
   * token the server found expired is replaced, and the request sent
   * again, once.
   */
  async #request(method: string, url: string, body: string | Uint8Array | null, contentType: string | undefined, signal?: AbortSignal, also: number[] = []): Promise<Response> {
    const headers: Record<string, string> = {};
    if (contentType) headers["Content-Type"] = contentType;
    const ctl = new AbortController();
    const onAbort = (): void => ctl.abort();
    signal?.addEventListener("abort", onAbort);
    const timer = setTimeout(() => ctl.abort(), this.#timeout);
    try {
      for (let retried = false; ; retried = true) {
        const token = await this.#currentToken();
        if (token) headers["Authorization"] = "Bearer " + token;
        if (signal?.aborted) ctl.abort();
        const resp = await this.#fetch(url, { method, headers, body: body as BodyInit | null, signal: ctl.signal });
        if ((resp.status >= 200 && resp.status < 300) || also.includes(resp.status)) return resp;
        const err = await replyError(resp);
        if (err.code !== "token_expired" || !token || retried) throw err;
        this.#tokenExpired(token);
      }
    } catch (e) {
      throw asError(e, this.privateId);
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
    }
  }
}

/**
 * encodeRequest encodes a sync's body: the batch, if any, and the hash reports; null when there is neither.
 * A batch names the epoch its events are for, when epoch is not empty (a push message: a poll names it in its query).
 */
function encodeRequest(b: Batch | null, hashes: HashReport[], epoch = ""): string | null {
  if (!b && hashes.length === 0) return null;
  const req: { epoch?: string; batch?: string; events?: { type: string; body: string }[]; hashes?: HashReport[] } = {};
  if (b) {
    if (epoch) req.epoch = epoch;
    req.batch = b.id;
    req.events = b.events.map((e) => ({ type: e.type, body: e.body }));
  }
  if (hashes.length > 0) req.hashes = hashes.map((h) => ({ t: h.t, h: h.h }));
  return JSON.stringify(req);
}

function isInt(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
}

/** queryOf returns a URL's query of parts: "" for none. */
function queryOf(parts: string[]): string {
  return parts.length > 0 ? "?" + parts.join("&") : "";
}

/** spectatorError is what a spectator gets for what it may not do. */
function spectatorError(): EventStreamError {
  return new EventStreamError(0, LocalCode.Spectator, "a spectator reads the stream: it sends no events and uploads nothing");
}

/**
 * parseReply checks a sync reply's shape, pushed or polled: a reply that is not one is a network error. A player's has
 * its public id; a spectator's has none, and one with an id took the spectator for a player (code not_spectating).
 */
function parseReply(text: string, spectate: boolean): WireReply {
  let r: Record<string, unknown>;
  try {
    r = JSON.parse(text) as Record<string, unknown>;
  } catch {
    throw new EventStreamError(0, LocalCode.Network, "the reply is not a sync reply");
  }
  const ok =
    r !== null && typeof r === "object" && typeof r.id === "string" && (r.id !== "" || spectate) && isInt(r.t) &&
    typeof r.epoch === "string" && r.epoch !== "" && Array.isArray(r.events) &&
    r.events.every((e: unknown) => {
      const ev = e as Record<string, unknown>;
      return ev !== null && typeof ev === "object" && isInt(ev.t) && typeof ev.type === "string" && typeof ev.origin === "string" && (ev.body === undefined || typeof ev.body === "string");
    }) &&
    ["base", "snap", "dump", "ckpt", "tps"].every((k) => r[k] === undefined || r[k] === null || isInt(r[k]));
  if (!ok) throw new EventStreamError(0, LocalCode.Network, "the reply is not a sync reply");
  if (spectate && r.id !== "") throw new EventStreamError(0, LocalCode.NotSpectating, "the server answered a spectator as a player: it does not know spectators");
  const out: WireReply = {
    id: r.id as string,
    t: r.t as number,
    epoch: r.epoch as string,
    tps: (r.tps as number | undefined) ?? 0,
    events: (r.events as Record<string, unknown>[]).map((e) => ({ t: e.t as number, type: e.type as string, origin: e.origin as string, body: (e.body as string | undefined) ?? "" })),
    more: r.more === true,
    ckpt: (r.ckpt as number | undefined) ?? 0,
  };
  for (const k of ["base", "snap", "dump"] as const) {
    if (isInt(r[k])) out[k] = r[k] as number;
  }
  return out;
}

/** replyError returns the EventStreamError of a reply that is not a success. */
async function replyError(resp: Response): Promise<EventStreamError> {
  const text = await resp.text().catch(() => "");
  const ra = Number(resp.headers.get("Retry-After"));
  const retryAfterMs = Number.isInteger(ra) && ra > 0 ? Math.min(ra, 3600) * 1000 : 0;
  try {
    const wire = JSON.parse(text) as { error?: { code?: unknown; message?: unknown } };
    if (typeof wire.error?.code === "string" && wire.error.code !== "") {
      return new EventStreamError(resp.status, wire.error.code, typeof wire.error.message === "string" ? wire.error.message : "", retryAfterMs);
    }
  } catch {
    // not eventstreamd's answer (a proxy's)
  }
  return new EventStreamError(resp.status, "", `${resp.status} ${resp.statusText}: ${text.trim().slice(0, 200)}`, retryAfterMs);
}

/** asError turns anything thrown into an EventStreamError whose message never holds the private id. */
function asError(e: unknown, secret: string): EventStreamError {
  if (e instanceof EventStreamError) return e;
  let msg = e instanceof Error ? e.message : String(e);
  const cause = e instanceof Error ? (e as { cause?: unknown }).cause : undefined;
  if (cause instanceof Error) msg += ": " + cause.message;
  return new EventStreamError(0, LocalCode.Network, msg.split(secret).join("<private-id>"));
}

/** tokenExpiry reads the exp of a JWT, without verifying it, in ms; 0 when it has none or is not a JWT. */
function tokenExpiry(tok: string): number {
  const parts = tok.split(".");
  if (parts.length !== 3) return 0;
  try {
    const b64 = parts[1]!.replace(/-/g, "+").replace(/_/g, "/");
    const claims = JSON.parse(new TextDecoder().decode(Uint8Array.from(atob(b64 + "=".repeat((4 - (b64.length % 4)) % 4)), (c) => c.charCodeAt(0)))) as { exp?: unknown };
    return typeof claims.exp === "number" && Number.isFinite(claims.exp) ? claims.exp * 1000 : 0;
  } catch {
    return 0;
  }
}

/** restarting reports whether err says the server is not up (unreachable, or a proxy with no server behind it): a retry may come sooner. */
function restarting(err: EventStreamError): boolean {
  return err.code === LocalCode.Network || (err.code === "" && (err.status === 502 || err.status === 503 || err.status === 504));
}

/** sleep waits ms, or less when signal aborts. (Used by driver.ts too; not part of the package's API.) */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = (): void => {
      clearTimeout(t);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal.addEventListener("abort", done);
  });
}
