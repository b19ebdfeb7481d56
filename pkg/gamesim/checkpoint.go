package gamesim

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/goeventstream/eventstream/pkg/esclient"
)

// Snapshotter is a Sim that can serialize its whole state. A Driver whose
// Sim implements it takes part in the server's checkpoints without any
// network code of the game's (docs/protocol.md, "Checkpoints"): at every
// checkpoint tick it snapshots the state, reports its hash, keeps the last
// few snapshots to answer the server's requests for a snapshot or a desync
// dump, joins a compacted stream from the stream's snapshot, and resyncs
// from it when an "_x" names this client. A Sim without a Snapshotter
// reports no hashes.
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
// diverged ("_x"), so that a game may show it; the Driver of a client it
// names reloads the last verified snapshot by itself. Each divergence is
// told once, at the tick of its "_x", to the Drivers that were there: not
// while Replaying (a Driver that joins later is not told of what came
// before it), and not again when the server names the same client at the
// next checkpoints it had played before it could reload. What OnDesync
// does is for the player, never simulation state: Drivers that joined at
// different ticks are told different things.
type DesyncHandler interface {
	OnDesync(d *Driver, x Desync)
}

// CheckpointHandler is a Sim told when the Driver learns of a later
// checkpoint whose canonical hash the server told it (LastCheckpoint), so
// that a game may show the stream's verified state. It is told in Update,
// between ticks. What OnCheckpoint does is for the player, never
// simulation state: Drivers learn of checkpoints at different times.
type CheckpointHandler interface {
	OnCheckpoint(d *Driver, c esclient.Checkpoint)
}

// LastCheckpoint returns the latest checkpoint of the epoch whose
// canonical hash the server told this Driver's client, and whether there
// is one: the stream's snapshot, when the Driver joined or resynced from
// it or uploaded it (esclient's Client.LastCheckpoint says which
// checkpoints the server tells of). None in a Replay.
func (d *Driver) LastCheckpoint() (esclient.Checkpoint, bool) {
	if d.client == nil {
		return esclient.Checkpoint{}, false
	}
	return d.client.LastCheckpoint()
}

// tellCheckpoint calls the Sim's OnCheckpoint when LastCheckpoint moved
// since it was last told.
func (d *Driver) tellCheckpoint() {
	h, ok := d.sim.(CheckpointHandler)
	if !ok {
		return
	}
	if c, ok := d.LastCheckpoint(); ok && c != d.toldCkpt {
		d.toldCkpt = c
		h.OnCheckpoint(d, c)
	}
}

// Desync is a desync the server found.
type Desync struct {
	// Checkpoint is the checkpoint tick at which the clients diverged.
	Checkpoint int64
	// IDs are the public ids of the clients that diverged, those not told
	// already.
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
	if d.reloading || d.keptSnapshot(d.epoch, k) != nil {
		// The state is to be replaced, or this checkpoint was played
		// before a reload: the server keeps the first report, and a dump
		// must be the state that report hashed.
		return
	}
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
	d.client.ReportHash(k, esclient.HashOf(data)) // a spectator's client reports nothing: it has no vote
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

// onDesync processes an "_x" event at tick k. One divergence is told
// once, to the Drivers that were there:
//   - a client named again for a checkpoint it had simulated before an
//     earlier "_x" named it is the same divergence (its state could not
//     have been reloaded yet): it is not told again, and not reloaded again;
//   - the Sim is told only of ticks played live (not while Replaying: not
//     the re-simulation after a reload, nor the history a Driver replays
//     when it joins) and of checkpoints from when this Driver joined, or
//     that it reloads for;
//   - a Driver reloads when it is named for the state it has now: not for
//     a checkpoint it played before its last reload.
//
// The ids named are recorded even while replaying, so that Drivers that
// saw the same events agree on what is a repeat.
func (d *Driver) onDesync(k int64, e esclient.Event) {
	t, ids, err := esclient.ParseDesync(e.Body)
	if err != nil {
		return // not one this version can read
	}
	var fresh []string
	for _, id := range ids {
		if at, ok := d.told[id]; ok && t <= at {
			continue
		}
		if d.told == nil {
			d.told = map[string]int64{}
		}
		d.told[id] = k
		fresh = append(fresh, id)
	}
	if len(fresh) == 0 || d.Replaying() {
		return
	}
	x := Desync{Checkpoint: t, IDs: fresh, Self: d.client != nil && slices.Contains(fresh, d.client.PublicID())}
	reload := x.Self && d.snapper != nil && t > d.reloadedAt && !d.reloading
	if h, ok := d.sim.(DesyncHandler); ok && (t >= d.joined || reload) {
		h.OnDesync(d, x)
	}
	if reload {
		d.reloading = true // its next checkpoints are of the state it leaves
		d.mu.Lock()
		d.resync = true // the network goroutine fetches the snapshot
		d.mu.Unlock()
	}
}

// reloaded records that the state was replaced (a resync, a join from a
// snapshot, a new epoch) after tick last had been played.
func (d *Driver) reloaded(last int64) {
	d.reloadedAt, d.reloading = max(d.reloadedAt, last), false
}

// Resyncs returns how many times this Driver reloaded its state after the
// server named it in a desync.
func (d *Driver) Resyncs() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.resyncs
}

// upload answers the server's requests for a snapshot or a dump from the
// snapshots kept, in the background: every time the server asks, unless
// an upload of the same is still under way. A failed upload is retried
// while the server may take it. d.mu must be held.
func (d *Driver) upload(ctx context.Context, u esclient.Update) {
	if d.client != nil && d.client.Spectator() {
		return // a spectator uploads nothing (nor is asked to)
	}
	for _, ask := range []struct {
		kind string
		tick *int64
		put  func(context.Context, int64, []byte) error
	}{
		{"snapshot", u.Snap, func(ctx context.Context, t int64, data []byte) error {
			_, err := d.client.PutSnapshot(ctx, t, data)
			return err
		}},
		{"dump", u.Dump, d.client.PutDump},
	} {
		if ask.tick == nil {
			continue
		}
		data := d.keptSnapshot(u.Epoch, *ask.tick)
		if data == nil {
			continue // not kept (any more): the server asks another client
		}
		key := uploadKey{ask.kind, u.Epoch, *ask.tick}
		d.ckMu.Lock()
		busy := d.uploading[key]
		if !busy {
			if d.uploading == nil {
				d.uploading = map[uploadKey]bool{}
			}
			d.uploading[key] = true
		}
		d.ckMu.Unlock()
		if busy {
			continue
		}
		d.uploads.Add(1)
		go func(t int64, put func(context.Context, int64, []byte) error) {
			defer d.uploads.Done()
			defer func() {
				d.ckMu.Lock()
				delete(d.uploading, key)
				d.ckMu.Unlock()
			}()
			for wait := uploadRetry; ; wait *= 2 {
				err := put(ctx, t, data)
				var se *esclient.Error
				if err == nil || (errors.As(err, &se) && !se.Retryable()) || wait > maxUploadRetry {
					return // taken, refused for good, or left to the server's next ask
				}
				if se != nil && se.RetryAfter > 0 {
					wait = se.RetryAfter
				}
				select {
				case <-ctx.Done():
					return
				case <-time.After(wait):
				}
			}
		}(*ask.tick, ask.put)
	}
}

// uploadKey names an upload under way.
type uploadKey struct {
	kind, epoch string
	tick        int64
}

// How a failed upload is retried: after uploadRetry, doubling, while the
// wait is at most maxUploadRetry (about 6 s in all, within the 10 s a
// checkpoint is kept).
const (
	uploadRetry    = 200 * time.Millisecond
	maxUploadRetry = 3200 * time.Millisecond
)

// loadSnapshot fetches the stream's snapshot for a reply that starts after
// one (Update.Base) or for a resync. It is called on the network goroutine
// without d.mu held; it returns nil and no error when there is none.
func (d *Driver) loadSnapshot(ctx context.Context) (*esclient.Snapshot, error) {
	snap, err := d.client.Snapshot(ctx)
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
