package gamesim

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/goeventstream/eventstream/pkg/esclient"
)

// Snapshotter is a Sim that can serialize its whole state. A Driver whose
// Sim implements it takes part in the server's checkpoints without any
// network code of the game's (docs/protocol.md, "Checkpoints"): at every
// checkpoint tick it snapshots the state, reports its hash, keeps the last
// few snapshots to answer the server's requests for a snapshot or a desync
// dump, joins a compacted stream from the stream's snapshot, and resyncs
// from it when an "_x" names this client. A Sim without a Snapshotter
// works as before: it reports no hashes.
type Snapshotter interface {
	// Snapshot appends the simulation's whole state to b and returns it:
	// every value its callbacks and entities read, including every entity
	// of d.Entities() in that order. It must be canonical: the same state
	// gives the same bytes on every client (no map order, no pointers, no
	// floats formatted differently; docs/determinism.md).
	Snapshot(d *Driver, b []byte) ([]byte, error)
	// Restore replaces the simulation's state with the bytes that
	// Snapshot appended, spawning its entities again with d.Spawn in the
	// order they had. It runs between ticks; d.Rand is not to be used.
	Restore(d *Driver, data []byte) error
}

// DesyncHandler is a Sim told when the server names clients whose state
// diverged ("_x"). Every client gets it, at the same tick, so a game may
// show it; the Driver of a client it names resyncs by itself.
type DesyncHandler interface {
	OnDesync(d *Driver, x Desync)
}

// Desync is a desync the server found.
type Desync struct {
	// Checkpoint is the checkpoint tick at which the clients diverged.
	Checkpoint int64
	// IDs are the public ids of the clients that diverged.
	IDs []string
	// Self is set when IDs holds this client's public id. It differs
	// between clients: use it for what the player is told, never for
	// simulation state.
	Self bool
}

// keptSnapshots is how many checkpoints' snapshots a Driver keeps, to
// answer the server's requests for one.
const keptSnapshots = 8

// checkpoint is a snapshot of a checkpoint tick this Driver simulated.
type checkpoint struct {
	tick  int64
	epoch string
	data  []byte
}

// snapshotMagic starts every snapshot a Driver makes; the Driver's own
// state (epoch, tick, entity count) follows, then the Sim's.
const snapshotMagic = "gamesim1"

// snapshot returns the snapshot of the state after tick k.
func (d *Driver) snapshot(k int64) ([]byte, error) {
	b := append(make([]byte, 0, 256), snapshotMagic...)
	b = binary.AppendUvarint(b, uint64(len(d.epoch)))
	b = append(b, d.epoch...)
	b = binary.BigEndian.AppendUint64(b, uint64(k))
	b = binary.BigEndian.AppendUint32(b, uint32(len(d.entities)))
	return d.snapper.Snapshot(d, b)
}

// checkpointAt snapshots checkpoint tick k, keeps the snapshot and reports
// its hash.
func (d *Driver) checkpointAt(k int64) {
	data, err := d.snapshot(k)
	if err != nil {
		d.setErr(fmt.Errorf("gamesim: snapshot of tick %d: %w", k, err))
		return
	}
	d.ckMu.Lock()
	d.kept = append(d.kept, checkpoint{tick: k, epoch: d.epoch, data: data})
	if len(d.kept) > keptSnapshots {
		d.kept = slices.Delete(d.kept, 0, len(d.kept)-keptSnapshots)
	}
	d.ckMu.Unlock()
	d.client.ReportHash(k, esclient.HashOf(data))
}

// keptSnapshot returns the kept snapshot of tick k of epoch, or nil.
func (d *Driver) keptSnapshot(epoch string, k int64) []byte {
	d.ckMu.Lock()
	defer d.ckMu.Unlock()
	for _, c := range slices.Backward(d.kept) {
		if c.tick == k && c.epoch == epoch {
			return c.data
		}
	}
	return nil
}

// parseSnapshot splits a snapshot made by snapshot into the Driver's
// state and the Sim's bytes.
func parseSnapshot(data []byte) (epoch string, k int64, count int, sim []byte, err error) {
	b, ok := bytes.CutPrefix(data, []byte(snapshotMagic))
	if !ok {
		return "", 0, 0, nil, errors.New("gamesim: not a snapshot of a gamesim Driver")
	}
	n, w := binary.Uvarint(b)
	if w <= 0 || uint64(len(b)-w) < n+12 {
		return "", 0, 0, nil, errors.New("gamesim: a snapshot cut short")
	}
	epoch, b = string(b[w:w+int(n)]), b[w+int(n):]
	return epoch, int64(binary.BigEndian.Uint64(b)), int(binary.BigEndian.Uint32(b[8:])), b[12:], nil
}

// restoreFrom replaces the state with a snapshot made by snapshot: the
// Driver then processes the tick after it.
func (d *Driver) restoreFrom(data []byte) error {
	epoch, k, count, sim, err := parseSnapshot(data)
	if err != nil {
		return err
	}
	d.entities, d.ops = nil, nil
	d.epoch, d.seed = epoch, seedOf(epoch)
	d.tick = k
	d.reseed(k)
	d.processing = true // Restore spawns
	err = d.snapper.Restore(d, sim)
	d.processing = false
	for _, op := range d.ops {
		if op.spawn {
			d.entities = append(d.entities, op.e)
		}
	}
	d.ops = d.ops[:0]
	switch {
	case err != nil:
		return fmt.Errorf("gamesim: restoring tick %d: %w", k, err)
	case len(d.entities) != count:
		return fmt.Errorf("gamesim: restoring tick %d spawned %d entities, not the %d of the snapshot", k, len(d.entities), count)
	}
	d.next = k + 1
	return nil
}

// onDesync processes an "_x" event at tick k.
func (d *Driver) onDesync(e esclient.Event) {
	t, ids, err := esclient.ParseDesync(e.Body)
	if err != nil {
		return // not one this version can read
	}
	x := Desync{Checkpoint: t, IDs: ids, Self: d.client != nil && slices.Contains(ids, d.client.PublicID())}
	if h, ok := d.sim.(DesyncHandler); ok {
		h.OnDesync(d, x)
	}
	if x.Self && d.snapper != nil && !d.Replaying() {
		d.mu.Lock()
		d.resync = true // the network goroutine fetches the snapshot
		d.mu.Unlock()
	}
}

// Resyncs returns how many times this Driver reloaded its state after the
// server named it in a desync.
func (d *Driver) Resyncs() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.resyncs
}

// upload answers the server's requests for a snapshot or a dump from the
// snapshots kept, in the background. d.mu must be held.
func (d *Driver) upload(ctx context.Context, u esclient.Update) {
	for _, ask := range []struct {
		tick *int64
		put  func(context.Context, int64, []byte) error
	}{
		{u.Snap, func(ctx context.Context, t int64, data []byte) error {
			_, err := d.client.PutSnapshot(ctx, t, data)
			return err
		}},
		{u.Dump, d.client.PutDump},
	} {
		if ask.tick == nil {
			continue
		}
		data := d.keptSnapshot(u.Epoch, *ask.tick)
		if data == nil {
			continue // not kept (any more): the server asks another client
		}
		d.uploads.Add(1)
		go func(t int64, put func(context.Context, int64, []byte) error) {
			defer d.uploads.Done()
			_ = put(ctx, t, data) // best effort: the server asks again
		}(*ask.tick, ask.put)
	}
}

// loadSnapshot fetches the stream's snapshot for a reply that starts after
// one (Update.Base) or for a resync. It is called on the network goroutine
// without d.mu held; it returns nil and no error when there is none.
func (d *Driver) loadSnapshot(ctx context.Context) (*esclient.Snapshot, error) {
	snap, err := d.client.GetSnapshot(ctx)
	if errors.Is(err, esclient.ErrNoSnapshot) {
		return nil, nil
	}
	return snap, err
}

// setErr records an error for Err, from the simulation's goroutine.
func (d *Driver) setErr(err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.netErr = err
}

// SnapshotOf returns the snapshot of d's state, between ticks, as the
// Driver makes it at a checkpoint: for tests and tools (a Replay's state
// to compare with a desync dump). The Sim must implement Snapshotter.
func SnapshotOf(d *Driver) ([]byte, error) {
	if d.snapper == nil {
		return nil, errors.New("gamesim: the Sim does not implement Snapshotter")
	}
	return d.snapshot(d.tick)
}
