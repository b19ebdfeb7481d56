// Package gamesim drives a deterministic game simulation from an
// eventstreamd stream (SimDriver in the TypeScript client;
// docs/gamesim-spec.md is the contract both follow).
//
// A game implements Sim (and usually spawns Entity values); a Driver feeds
// it the stream's events tick by tick, at the server's tick rate, a little
// behind the server (about 50–100 ms with a push client, 200 ms polling;
// docs/determinism.md), so that every client runs the same simulation.
//
// # The contract for processing tick k
//
//  1. Rand is re-derived from (seed, k), where the seed comes from the body
//     of the last "_a" event (the stream's epoch).
//  2. The events stamped k are dispatched in stream order: "_a" clears every
//     entity, reseeds Rand from its body and calls OnReset; "_c" calls
//     OnConnect; "_d" calls OnDisconnect; other server types (starting
//     with "_") that this version does not know are skipped; anything else
//     calls OnClientEvent.
//  3. Every entity's SimTick runs, in spawn order.
//  4. The spawns and destroys requested during 2 and 3 take effect, in the
//     order they were requested, so a spawned entity first ticks at k+1.
//
// Nothing else may influence the simulation: not wall time, not map
// iteration order, not goroutines, not the global math/rand, not the
// client's own public id. docs/determinism.md says how to keep it so.
//
// # Sending from the simulation
//
// A Sim may call SendEvent from its callbacks (a bot deciding its next
// move, say). A Driver that joins a stream first re-simulates the ticks
// that were played before it joined, and a returning player re-simulates
// ticks it already acted on: inputs sent there would be stamped at the
// tick in progress, long after the tick that caused them, and a returning
// player's would go out twice. So while such a tick is processed (Replaying
// reports true), SendEvent sends nothing, from any goroutine, and returns
// ErrReplaying.
//
// # Pacing
//
// A Driver never processes a tick at or after the last t the server sent
// (it is not final yet). It processes ticks at the stream's tick rate as
// time passes and, when more ticks behind the last t received than its
// catch-up threshold, processes extra ticks to catch up, at most
// Config.MaxTicksPerUpdate per call so that a frame never stalls. The
// threshold is Config.CatchUpThreshold, or, by default with a push client,
// the largest gap between the last updates (1 to 4 ticks): the simulation
// runs as close to the server as the network's jitter allows, and 200 ms
// behind it when polling.
//
// # Concurrency
//
// Network I/O runs on a goroutine of its own. Every callback runs on the
// goroutine that calls Update or Run, never concurrently. Spawn, Destroy,
// Rand, Tick, Epoch, Replaying, Entities and Hashes may be called only from
// callbacks or from that goroutine; SendEvent, PublicID and LastCheckpoint
// from any goroutine.
package gamesim

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/goeventstream/eventstream/pkg/esclient"
)

// Sim is a game simulation. Its methods are called while a tick is being
// processed (see the package doc for the order).
type Sim interface {
	// OnReset is called for "_a", after every entity was cleared and Rand
	// reseeded: start the scene from scratch.
	OnReset(d *Driver, r Reset)
	// OnConnect is called when a client connects.
	OnConnect(d *Driver, publicID string)
	// OnDisconnect is called when a client goes silent.
	OnDisconnect(d *Driver, publicID string)
	// OnClientEvent is called for every client event; e.Origin is the
	// sender's public id.
	OnClientEvent(d *Driver, e esclient.Event)
}

// Entity is a simulation-aware object, ticked once per tick in spawn order.
// Entities are compared with ==, so use pointers.
type Entity interface {
	SimTick(d *Driver)
}

// Reset tells OnReset which stream starts.
type Reset struct {
	// Epoch identifies the incarnation of the stream that starts: the body
	// of its "_a", from which Rand is seeded.
	Epoch string
	// Previous is the epoch this Driver ran before: "" when it starts for
	// the first time, another epoch when the server started the stream
	// anew. It differs between clients (a late joiner never saw the
	// earlier epoch): use it for what the player is told, never for
	// simulation state.
	Previous string
}

// StateHasher is a Sim that can hash its state. When the Driver records
// hashes (Config.RecordHashes), it calls StateHash after every tick, so
// that two clients, or a client and a Replay, can be compared tick by tick.
type StateHasher interface {
	StateHash(d *Driver) uint64
}

// TickHash is the state hash after a tick of an epoch.
type TickHash struct {
	Epoch string
	Tick  int64
	Hash  uint64
}

// Errors of Spawn and Destroy.
var (
	// ErrNotProcessing means Spawn or Destroy was called outside the
	// processing of a tick, where it could not be deterministic.
	ErrNotProcessing = errors.New("gamesim: entities may be spawned and destroyed only while a tick or event is processed")
	// ErrNilEntity means a nil entity was given.
	ErrNilEntity = errors.New("gamesim: nil entity")
	// ErrSpawned means the entity is already in the scene or about to be.
	ErrSpawned = errors.New("gamesim: entity already spawned")
	// ErrUnknownEntity means Destroy was given an entity not in the scene.
	ErrUnknownEntity = errors.New("gamesim: entity not in the scene")
	// ErrReplaying means SendEvent was called while the Driver re-simulated
	// ticks played before it joined, or that it already acted on; nothing
	// was sent (see Replaying).
	ErrReplaying = errors.New("gamesim: ticks already played are being re-simulated; their inputs are not sent again")
)

// Config configures a Driver. The zero Config has the defaults.
type Config struct {
	// CatchUpThreshold is how many ticks behind the last t received the
	// Driver may be before it catches up faster than the tick rate. Zero
	// means adaptive when the client pushes (esclient's Push or Auto
	// transport): the largest gap, in ticks, between the last few updates
	// that arrived, at least 1 and at most DefaultCatchUpThreshold, so the
	// simulation runs as close to the newest tick as the network's jitter
	// allows; and DefaultCatchUpThreshold (one sync) when it polls.
	CatchUpThreshold int
	// MaxTicksPerUpdate bounds the ticks one call of Update processes, so
	// that a frame never stalls. Zero means DefaultMaxTicksPerUpdate.
	MaxTicksPerUpdate int
	fixedThreshold    bool // CatchUpThreshold was given: not adaptive

	// RecordHashes makes the Driver keep the state hash of the last
	// RecordHashes ticks processed (see Hashes); the Sim must implement
	// StateHasher. Zero records none.
	RecordHashes int
}

// Defaults of Config.
const (
	DefaultCatchUpThreshold  = 4
	DefaultMaxTicksPerUpdate = 64
)

// Driver drives a Sim from a stream.
type Driver struct {
	client  *esclient.Client // nil for Replay
	sim     Sim
	cfg     Config
	hasher  StateHasher
	snapper Snapshotter // nil: no checkpoints

	// The simulation: touched only on the goroutine that processes ticks.
	next       int64 // the next tick to process
	tick       int64 // the tick being processed, or the last processed
	epoch      string
	live       int64 // ticks from live on are new to this Driver: it may send
	seed       [2]uint64
	src        *rand.PCG
	rng        *rand.Rand
	entities   []Entity
	ops        []entityOp
	processing bool
	hashes     []TickHash // a ring of opts.hashes
	hashNext   int
	replaying  atomic.Bool // a tick below live is being processed: SendEvent refuses
	last       time.Time
	acc        time.Duration
	ckpt       int64            // the checkpoint interval; 0 for none
	joined     int64            // the tick this Driver joined the epoch at: it was there from it on
	told       map[string]int64 // public id -> the tick of the "_x" that first named it
	reloadedAt int64            // the last tick played with a state a resync replaced; -1 for none
	reloading  bool             // an "_x" named this client: no reports until the reload

	toldCkpt esclient.Checkpoint // the LastCheckpoint OnCheckpoint was told last

	ckMu      sync.Mutex   // kept, shared with uploads
	kept      []checkpoint // the snapshots of the last checkpoints, oldest first
	uploading map[uploadKey]bool
	uploads   sync.WaitGroup

	// Shared with the network goroutine.
	mu          sync.Mutex
	buf         []esclient.Event // received, not yet processed, in order
	knownT      int64            // every tick below is final
	tickRate    int
	reset       bool  // the stream restarted from _a: process from tick 0 again
	liveFrom    int64 // the t of the first whole reply of the epoch; MaxInt64 before
	joinedFrom  int64 // the first liveFrom of joinedEpoch
	joinedEpoch string
	netCkpt     int64      // the checkpoint interval the server gave
	arrived     time.Time  // when the last whole update arrived
	gaps        [8]float64 // the gaps between the last updates, in ticks
	gapNext     int
	adaptive    int                // the catch-up threshold the gaps give; 0 until known
	now         func() time.Time   // tells the time of arrivals; tests set it
	restore     *esclient.Snapshot // to load before the next tick
	resync      bool               // an "_x" named this client: reload the snapshot
	resyncs     int
	netErr      error
	cancel      context.CancelFunc
	done        chan struct{}
}

type entityOp struct {
	e     Entity
	spawn bool
}

// New returns a Driver of sim fed by client. Nothing runs until Update or
// Run is called.
func New(client *esclient.Client, sim Sim, cfg Config) *Driver {
	d := newDriver(sim, cfg)
	d.client = client
	return d
}

func newDriver(sim Sim, cfg Config) *Driver {
	if cfg.CatchUpThreshold <= 0 {
		cfg.CatchUpThreshold = DefaultCatchUpThreshold
	} else {
		cfg.fixedThreshold = true
	}
	if cfg.MaxTicksPerUpdate <= 0 {
		cfg.MaxTicksPerUpdate = DefaultMaxTicksPerUpdate
	}
	cfg.RecordHashes = max(cfg.RecordHashes, 0)
	src := rand.NewPCG(0, 0)
	d := &Driver{sim: sim, cfg: cfg, src: src, rng: rand.New(src), tick: -1, tickRate: 20,
		live: math.MaxInt64, liveFrom: math.MaxInt64, joined: math.MaxInt64, joinedFrom: math.MaxInt64,
		reloadedAt: -1, now: time.Now}
	if cfg.RecordHashes > 0 {
		d.hasher, _ = sim.(StateHasher)
	}
	d.snapper, _ = sim.(Snapshotter)
	return d
}

// Replay drives sim through a recorded stream, with no network and no
// pacing: every tick below until is processed at once (give the t of the
// sync that brought the last events: every tick below it is final). It
// produces exactly the state a live Driver reaches at the same tick.
// events must start with the stream's "_a" at tick 0 and be in stream
// order, all below until; otherwise Replay returns an error and processes
// nothing. SendEvent sends nothing in a replay.
func Replay(sim Sim, events []esclient.Event, until int64, cfg Config) (*Driver, error) {
	switch {
	case len(events) == 0 || events[0].Type != esclient.TypeReset || events[0].T != 0:
		return nil, errors.New("gamesim: a replay starts with the stream's _a at tick 0, which holds its seed")
	case events[len(events)-1].T >= until:
		return nil, fmt.Errorf("gamesim: the replay runs to tick %d, but an event is at tick %d", until, events[len(events)-1].T)
	}
	for i := 1; i < len(events); i++ {
		if events[i].T < events[i-1].T {
			return nil, fmt.Errorf("gamesim: events[%d] is at tick %d, before the tick %d of the event before it", i, events[i].T, events[i-1].T)
		}
	}
	d := newDriver(sim, cfg)
	d.processUntil(until, events)
	return d, nil
}

// ReplayFrom is Replay from a snapshot a Driver made (the stream's, from
// GET /{stream}/snapshot, or a desync dump): sim, a Snapshotter, is
// restored to the end of the snapshot's tick, then every tick below until
// is processed with events, those that follow the snapshot in stream
// order. It is how a compacted stream, whose early events are gone, is
// replayed.
func ReplayFrom(sim Sim, snapshot []byte, events []esclient.Event, until int64, cfg Config) (*Driver, error) {
	d := newDriver(sim, cfg)
	if d.snapper == nil {
		return nil, errors.New("gamesim: ReplayFrom needs a Sim that implements Snapshotter")
	}
	if err := d.restoreFrom(snapshot); err != nil {
		return nil, err
	}
	for i, e := range events {
		switch {
		case e.T <= d.tick:
			return nil, fmt.Errorf("gamesim: events[%d] is at tick %d, not after the snapshot's tick %d", i, e.T, d.tick)
		case e.T >= until:
			return nil, fmt.Errorf("gamesim: the replay runs to tick %d, but events[%d] is at tick %d", until, i, e.T)
		case i > 0 && e.T < events[i-1].T:
			return nil, fmt.Errorf("gamesim: events[%d] is at tick %d, before the tick %d of the event before it", i, e.T, events[i-1].T)
		}
	}
	d.processUntil(until, events)
	return d, nil
}

// processUntil processes every tick from d.next below end; events hold the
// events of those ticks, in stream order.
func (d *Driver) processUntil(end int64, events []esclient.Event) {
	for k := d.next; k < end; k++ {
		n := 0
		for n < len(events) && events[n].T <= k {
			n++
		}
		d.process(k, events[:n])
		events = events[n:]
	}
}

// Rand returns the simulation's single source of randomness. Its sequence
// is re-derived at every tick from the stream's seed and the tick, so
// every client draws the same numbers.
func (d *Driver) Rand() *rand.Rand { return d.rng }

// Tick returns the tick being processed or, between ticks, the last tick
// processed; -1 before the first.
func (d *Driver) Tick() int64 { return d.tick }

// Epoch returns the epoch of the stream being simulated (the body of its
// last "_a"), or "" before the first tick.
func (d *Driver) Epoch() string { return d.epoch }

// Replaying reports whether the tick being processed was played before
// this Driver joined the stream, or already acted on by it: every tick of a
// Replay, and, live, the ticks below the t of the first reply that brought
// the stream up to date. SendEvent sends nothing while it is true.
func (d *Driver) Replaying() bool { return d.tick < d.live }

// PublicID returns this client's public id, or "" before the first sync
// and in a Replay. Use it for local decisions (whose input to send), never
// for simulation state: it differs on every client.
func (d *Driver) PublicID() string {
	if d.client == nil {
		return ""
	}
	return d.client.PublicID()
}

// Entities returns the entities in the scene, in spawn order.
func (d *Driver) Entities() []Entity { return slices.Clone(d.entities) }

// Spawn adds e to the scene at the end of the tick being processed.
func (d *Driver) Spawn(e Entity) error {
	switch {
	case !d.processing:
		return ErrNotProcessing
	case isNil(e):
		return ErrNilEntity
	case d.present(e):
		return ErrSpawned
	}
	d.ops = append(d.ops, entityOp{e: e, spawn: true})
	return nil
}

// Destroy removes e from the scene at the end of the tick being processed.
func (d *Driver) Destroy(e Entity) error {
	switch {
	case !d.processing:
		return ErrNotProcessing
	case isNil(e):
		return ErrNilEntity
	case !d.present(e):
		return ErrUnknownEntity
	}
	d.ops = append(d.ops, entityOp{e: e})
	return nil
}

// present reports whether e will be in the scene once the pending spawns
// and destroys take effect.
func (d *Driver) present(e Entity) bool {
	in := slices.Contains(d.entities, e)
	for _, op := range d.ops {
		if op.e == e {
			in = op.spawn
		}
	}
	return in
}

// isNil reports whether e is nil or holds a nil pointer, map, slice,
// channel or function: an entity that would panic when ticked.
func isNil(e Entity) bool {
	if e == nil {
		return true
	}
	switch v := reflect.ValueOf(e); v.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Chan, reflect.Func, reflect.Interface:
		return v.IsNil()
	}
	return false
}

// SendEvent queues an event for the next sync. The simulation must not act
// on it until it comes back in OnClientEvent, like everyone else's. While
// the Driver is Replaying, it sends nothing and returns ErrReplaying; in a
// Replay it does nothing. A spectator's Driver (its client's
// esclient.Config.Spectate: a replay viewer, a tournament screen) sends
// nothing and returns esclient.ErrSpectator; it snapshots its checkpoints
// as a player's does (a game may show their hashes), but reports no hash
// and uploads nothing. Once the stream refuses more events (stream_full),
// it returns that *esclient.Error, and the game goes on showing the stream.
func (d *Driver) SendEvent(typ, body string) error {
	switch {
	case d.client == nil:
		return nil
	case d.replaying.Load():
		return ErrReplaying
	}
	return d.client.Send(typ, body)
}

// Hashes returns the recorded state hashes, oldest first.
func (d *Driver) Hashes() []TickHash {
	if len(d.hashes) < d.cfg.RecordHashes {
		return slices.Clone(d.hashes)
	}
	return append(slices.Clone(d.hashes[d.hashNext:]), d.hashes[:d.hashNext]...)
}

// process runs tick k with its events (the events stamped k), following the
// contract in the package doc.
func (d *Driver) process(k int64, events []esclient.Event) {
	d.tick = k
	d.processing = true
	d.replaying.Store(k < d.live)
	defer d.replaying.Store(false)
	d.reseed(k)
	for _, e := range events {
		switch e.Type {
		case esclient.TypeReset:
			d.entities, d.ops = nil, nil
			if e.Body != d.epoch { // a new epoch, not a resync from tick 0
				d.told, d.reloadedAt, d.reloading = nil, -1, false
			}
			r := Reset{Epoch: e.Body, Previous: d.epoch}
			d.epoch = e.Body
			d.seed = seedOf(e.Body)
			d.reseed(k)
			d.sim.OnReset(d, r)
		case esclient.TypeConnect:
			d.sim.OnConnect(d, e.Body)
		case esclient.TypeDisconnect:
			d.sim.OnDisconnect(d, e.Body)
		case esclient.TypeDesync:
			d.onDesync(k, e)
		default:
			if !strings.HasPrefix(e.Type, esclient.ServerOrigin) {
				d.sim.OnClientEvent(d, e)
			} // a server event of a later protocol: not for this version
		}
	}
	for _, e := range d.entities {
		e.SimTick(d)
	}
	for _, op := range d.ops {
		if op.spawn {
			d.entities = append(d.entities, op.e)
		} else if i := slices.Index(d.entities, op.e); i >= 0 {
			d.entities = slices.Delete(d.entities, i, i+1)
		}
	}
	d.ops = d.ops[:0]
	d.processing = false
	d.next = k + 1
	if d.snapper != nil && d.client != nil && d.ckpt > 0 && k%d.ckpt == 0 {
		d.checkpointAt(k)
	}
	if d.hasher != nil {
		th := TickHash{Epoch: d.epoch, Tick: k, Hash: d.hasher.StateHash(d)}
		if len(d.hashes) < d.cfg.RecordHashes {
			d.hashes = append(d.hashes, th)
		} else {
			d.hashes[d.hashNext] = th
			d.hashNext = (d.hashNext + 1) % len(d.hashes)
		}
	}
}

func seedOf(epoch string) [2]uint64 {
	sum := sha256.Sum256([]byte(epoch))
	return [2]uint64{binary.LittleEndian.Uint64(sum[:8]), binary.LittleEndian.Uint64(sum[8:16])}
}

func (d *Driver) reseed(k int64) {
	d.src.Seed(d.seed[0]^splitmix64(uint64(k)), d.seed[1])
}

// splitmix64 scrambles a tick number so that neighbouring ticks seed
// unrelated sequences.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}
