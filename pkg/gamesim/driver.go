// Package gamesim drives a deterministic game simulation from an
// eventstreamd stream: it is the SimDriver of the original design.
//
// A game implements Sim (and usually spawns Entity values); a Driver feeds
// it the stream's events tick by tick, at the server's tick rate, about
// 200 ms behind the server, so that every client runs the same simulation.
//
// # The contract for processing tick k
//
//  1. Rand is re-derived from (seed, k), where the seed comes from the body
//     of the last "_a" event (the stream's epoch).
//  2. The events stamped k are dispatched in stream order: "_a" clears every
//     entity, reseeds Rand from its body and calls OnReset; "_c" calls
//     OnConnect; "_d" calls OnDisconnect; anything else calls OnClientEvent.
//  3. Every entity's SimTick runs, in spawn order.
//  4. The spawns and destroys requested during 2 and 3 take effect, in the
//     order they were requested, so a spawned entity first ticks at k+1.
//
// Nothing else may influence the simulation: not wall time, not map
// iteration order, not goroutines, not the global math/rand, not the
// client's own public id. docs/determinism.md says how to keep it so.
//
// # Pacing
//
// A Driver never processes a tick at or after the last t the server sent
// (it is not final yet). It processes ticks at the stream's tick rate as
// time passes and, when more than CatchUpThreshold ticks behind the last t
// received, processes extra ticks to catch up, at most MaxTicksPerUpdate
// per call so that a frame never stalls. The simulation runs about 200 ms
// behind the server and smooths over network jitter.
//
// # Concurrency
//
// Network I/O runs on a goroutine of its own. Every callback runs on the
// goroutine that calls Update or Run, never concurrently. Spawn, Destroy,
// Rand, Tick and Entities may be called only from callbacks or from that
// goroutine; SendEvent and PublicID from any goroutine.
package gamesim

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/goeventstream/eventstream/pkg/esclient"
)

// Sim is a game simulation. Its methods are called while a tick is being
// processed (see the package doc for the order).
type Sim interface {
	// OnReset is called for "_a", after every entity was cleared and Rand
	// reseeded: start the scene from scratch.
	OnReset(d *Driver)
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

// StateHasher is a Sim that can hash its state. When the Driver records
// hashes (RecordHashes), it calls StateHash after every tick, so that two
// clients, or a client and a Replay, can be compared tick by tick.
type StateHasher interface {
	StateHash() uint64
}

// TickHash is the state hash after a tick.
type TickHash struct {
	Tick int64
	Hash uint64
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
)

// Option configures a Driver.
type Option func(*options)

type options struct {
	catchUp    int
	maxPerCall int
	hashes     int
	until      int64
}

// CatchUpThreshold sets how many ticks behind the last t received the
// Driver may be before it catches up faster than the tick rate. Default 4
// (one sync).
func CatchUpThreshold(ticks int) Option { return func(o *options) { o.catchUp = max(ticks, 0) } }

// MaxTicksPerUpdate bounds the ticks one call of Update processes.
// Default 64.
func MaxTicksPerUpdate(n int) Option { return func(o *options) { o.maxPerCall = max(n, 1) } }

// RecordHashes makes the Driver keep the state hash of the last n ticks
// processed; the Sim must implement StateHasher.
func RecordHashes(n int) Option { return func(o *options) { o.hashes = max(n, 0) } }

// ReplayUntil makes Replay process every tick below t, rather than up to
// the tick of the last event.
func ReplayUntil(t int64) Option { return func(o *options) { o.until = t } }

// Driver drives a Sim from a stream.
type Driver struct {
	client *esclient.Client // nil for Replay
	sim    Sim
	opts   options
	hasher StateHasher

	// The simulation: touched only on the goroutine that processes ticks.
	next       int64 // the next tick to process
	tick       int64 // the tick being processed, or the last processed
	seed       [2]uint64
	src        *rand.PCG
	rng        *rand.Rand
	entities   []Entity
	ops        []entityOp
	processing bool
	hashes     []TickHash // a ring of opts.hashes
	hashNext   int
	last       time.Time
	acc        time.Duration

	// Shared with the network goroutine.
	mu       sync.Mutex
	buf      []esclient.Event // received, not yet processed, in order
	knownT   int64            // every tick below is final
	tickRate int
	reset    bool // the stream restarted from _a: process from tick 0 again
	netErr   error
	cancel   context.CancelFunc
	done     chan struct{}
}

type entityOp struct {
	e     Entity
	spawn bool
}

// New returns a Driver of sim fed by client. Nothing runs until Update or
// Run is called.
func New(client *esclient.Client, sim Sim, opts ...Option) *Driver {
	d := newDriver(sim, opts)
	d.client = client
	return d
}

func newDriver(sim Sim, opts []Option) *Driver {
	o := options{catchUp: 4, maxPerCall: 64}
	for _, opt := range opts {
		opt(&o)
	}
	src := rand.NewPCG(0, 0)
	d := &Driver{sim: sim, opts: o, src: src, rng: rand.New(src), tick: -1, tickRate: 20}
	if o.hashes > 0 {
		d.hasher, _ = sim.(StateHasher)
	}
	return d
}

// Replay drives sim through a recorded list of events, with no network
// and no pacing: every tick from 0 through the tick of the last event (or
// below ReplayUntil) is processed at once. It produces exactly the state a
// live Driver reaches at the same tick. SendEvent does nothing in a replay.
func Replay(events []esclient.Event, sim Sim, opts ...Option) *Driver {
	d := newDriver(sim, opts)
	end := d.opts.until
	if end == 0 && len(events) > 0 {
		end = events[len(events)-1].T + 1
	}
	d.processUntil(end, events)
	return d
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
	case e == nil:
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
	case e == nil:
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

// SendEvent queues an event for the next sync. The simulation must not act
// on it until it comes back in OnClientEvent, like everyone else's.
func (d *Driver) SendEvent(typ, body string) error {
	if d.client == nil {
		return nil
	}
	return d.client.Send(typ, body)
}

// Hashes returns the recorded state hashes, oldest first.
func (d *Driver) Hashes() []TickHash {
	if len(d.hashes) < d.opts.hashes {
		return slices.Clone(d.hashes)
	}
	return append(slices.Clone(d.hashes[d.hashNext:]), d.hashes[:d.hashNext]...)
}

// process runs tick k with its events (the events stamped k), following the
// contract in the package doc.
func (d *Driver) process(k int64, events []esclient.Event) {
	d.tick = k
	d.processing = true
	d.reseed(k)
	for _, e := range events {
		switch e.Type {
		case esclient.TypeReset:
			d.entities, d.ops = nil, nil
			d.seed = seedOf(e.Body)
			d.reseed(k)
			d.sim.OnReset(d)
		case esclient.TypeConnect:
			d.sim.OnConnect(d, e.Body)
		case esclient.TypeDisconnect:
			d.sim.OnDisconnect(d, e.Body)
		default:
			d.sim.OnClientEvent(d, e)
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
	if d.hasher != nil {
		th := TickHash{Tick: k, Hash: d.hasher.StateHash()}
		if len(d.hashes) < d.opts.hashes {
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
