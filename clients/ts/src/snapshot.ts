// The snapshot a SimDriver makes (docs/gamesim-spec.md, "Snapshots"),
// byte for byte as gamesim's: the magic "gamesim1", the epoch (a uvarint
// length and its UTF-8 bytes), the tick (8 bytes big-endian), the number
// of entities (4 bytes big-endian), then the Sim's own bytes.

import { ByteReader, ByteWriter } from "./bytes.js";
import { EventStreamError, LocalCode } from "./errors.js";

/** snapshotMagic starts every snapshot a SimDriver (or gamesim.Driver) makes. */
export const snapshotMagic = "gamesim1";
const magic = new TextEncoder().encode(snapshotMagic);

/** writeSnapshotHeader starts a snapshot of tick k of epoch with count entities. */
export function writeSnapshotHeader(w: ByteWriter, epoch: string, k: number, count: number): void {
  w.bytes(magic).string(epoch).uint64(k).uint32(count);
}

/** SnapshotHeader is the SimDriver's own state in a snapshot. */
export interface SnapshotHeader {
  epoch: string;
  tick: number;
  entities: number;
  /** The Sim's bytes. */
  sim: Uint8Array;
}

/** parseSnapshot splits a snapshot into the driver's state and the Sim's bytes. */
export function parseSnapshot(data: Uint8Array): SnapshotHeader {
  try {
    const r = new ByteReader(data);
    const m = r.bytes(magic.length);
    if (!m.every((b, i) => b === magic[i])) throw new RangeError("not a snapshot of a gamesim Driver");
    const epoch = r.string();
    const tick = r.uint64();
    if (tick > BigInt(Number.MAX_SAFE_INTEGER)) throw new RangeError("a tick beyond 2^53");
    const entities = r.uint32();
    return { epoch, tick: Number(tick), entities, sim: r.bytes(r.remaining) };
  } catch (e) {
    throw new EventStreamError(0, LocalCode.BadSnapshot, `not a snapshot: ${(e as Error).message}`);
  }
}
