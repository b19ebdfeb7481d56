// @eventstreamd/client: the TypeScript client of eventstreamd.
// EventStreamClient ~ Go's esclient.Client; SimDriver ~ gamesim.Driver.
// docs/protocol.md and docs/gamesim-spec.md are the contract of both.

export { ByteReader, ByteWriter } from "./bytes.js";
export {
  DefaultMaxBackoffMs,
  DefaultMaxQueue,
  DefaultStorageKey,
  DefaultSyncIntervalMs,
  DefaultTimeoutMs,
  EventStreamClient,
  MaxBodyLen,
  MaxEventsPerSync,
  MaxTypeLen,
  RestartBackoffMs,
  ServerOrigin,
  TypeConnect,
  TypeDesync,
  TypeDisconnect,
  TypeReset,
  loadOrCreatePrivateId,
  randomUUID,
  type Checkpoint,
  type ClientConfig,
  type Event,
  type FetchLike,
  type HashReport,
  type PrivateIdStorage,
  type Snapshot,
  type Transport,
  type Update,
  type WebSocketConstructor,
  type WebSocketLike,
} from "./client.js";
export {
  DefaultCatchUpThreshold,
  DefaultMaxTicksPerUpdate,
  KeptSnapshots,
  SimDriver,
  type Desync,
  type DriverConfig,
  type Entity,
  type FrameScheduler,
  type Reset,
  type Sim,
  type TickHash,
} from "./driver.js";
export { EventStreamError, LocalCode, statusOf } from "./errors.js";
export { Rand, seedOf, splitmix64 } from "./rand.js";
export { fromHex, hashOf, sha256, toHex } from "./sha256.js";
export { parseSnapshot, snapshotMagic, writeSnapshotHeader, type SnapshotHeader } from "./snapshot.js";
