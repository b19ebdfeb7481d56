// Package stream is the domain of eventstreamd: streams, their tick clocks,
// their append-only event logs and their private-id → public-id mappings.
//
// A Store holds the streams. One call to Store.Sync applies one client
// request atomically and returns the reply, so that a backend such as Redis
// can implement it as one server-side script; presence sweeping and
// statistics are calls of their own. The package knows nothing of HTTP:
// internal/api parses and validates requests into SyncRequest values and
// maps this package's errors to statuses.
//
// Two backends implement Store, and the conformance suite in streamtest
// holds them to the same behaviour:
//
//   - MemoryStore (store_memory*.go), the embedded default and the
//     reference: one process, nothing survives it.
//   - RedisStore (store_redis*.go), shared by any number of replicas: each
//     sync and sweep is one Lua script under lua/, each starting with
//     lua/prelude.lua, the rules the scripts share.
//
// Each rule of the protocol is written once per language and found by its
// name: the tick formula in tick.go (tickAt), the event's JSON in
// event_json.go (appendEvent), the batch memory in protocol.BatchMemory.
// Where the Redis scripts need a rule, prelude.lua mirrors it and says so.
//
// Every Store is safe for concurrent use.
package stream

import (
	"cmp"
	"context"
	"encoding/json"
	"slices"

	"github.com/goeventstream/eventstream/internal/protocol"
)

// A Watcher is a Store that can tell, cheaply and without locking the
// stream for long, where a stream's newest event is, and when it gains
// one: a push loop then reads a stream only when it has events its last
// read did not return, or when its quiet interval is due, and sleeps
// through the ticks between. The memory store is one: every event of its
// streams is added in this process.
type Watcher interface {
	// Watch returns the stream's epoch ("" while it does not exist), the
	// tick of its newest event, and a channel closed once the stream gains
	// an event after the call or is deleted (nil while it does not exist);
	// ok is false when the store cannot tell.
	Watch(stream string) (epoch string, newest int64, changed <-chan struct{}, ok bool)
}

// WatchOf returns s's Watch of stream, with ok false when s is no Watcher:
// a store that wraps another forwards it with this.
func WatchOf(s Store, stream string) (epoch string, newest int64, changed <-chan struct{}, ok bool) {
	if w, is := s.(Watcher); is {
		return w.Watch(stream)
	}
	return "", 0, nil, false
}

// Store holds streams. Implementations must be safe for concurrent use and
// must behave as the conformance suite in package streamtest requires.
type Store interface {
	// Sync applies one validated client request to its stream atomically,
	// creating the stream if it does not exist, and returns the reply. A
	// request that fails has no effect at all.
	Sync(ctx context.Context, req *SyncRequest) (*SyncResult, error)

	// Read returns what a sync of req would return, without a client: it
	// touches no presence, appends nothing and creates no stream (an
	// unknown stream is ErrNotFound). req's PrivateID, Events, Batch and
	// Hashes are ignored. A push server reads a stream's new ticks with it
	// once for all its connections. The tick it reports is issued as a
	// sync's is: no later sync stamps an event below it, however the clock
	// moves.
	Read(ctx context.Context, req *SyncRequest) (*SyncResult, error)

	// Sweep appends a disconnect event for each connected client that has
	// been silent for longer than the client timeout, and deletes each
	// stream that has had no connected client for longer than the stream
	// TTL. It is called periodically by a Sweeper.
	Sweep(ctx context.Context) (SweepResult, error)

	// Stats reports the number of streams and connected clients, and the
	// tick and client count of at most limit streams, the most crowded first.
	Stats(ctx context.Context, limit int) (Stats, error)

	// Ping reports whether the store can serve requests.
	Ping(ctx context.Context) error

	// PutSnapshot stores up as the stream's snapshot if its SHA-256 is the
	// canonical hash of checkpoint up.T and the stream holds no later
	// snapshot; otherwise it returns ErrSnapshotMismatch (no canonical hash
	// or another one) or stores nothing (one of that tick or a later one is
	// kept). Only the client last asked for that snapshot may upload it,
	// or the one whose snapshot of up.T is kept (a retry); any other is
	// ErrForbidden. It returns the tick of the stream's snapshot after the
	// call and whether up is it now. An unknown stream or client is
	// ErrNotFound.
	PutSnapshot(ctx context.Context, up *Upload) (t int64, stored bool, err error)

	// Snapshot returns the stream's snapshot, or ErrNotFound.
	Snapshot(ctx context.Context, stream string) (*Snapshot, error)

	// PutDump stores up as the client's desync dump of checkpoint up.T, if
	// a desync report of that checkpoint asked the client for one. It
	// returns ErrForbidden when the report did not ask the client, and
	// ErrNotFound when the stream, the client or the report does not exist.
	PutDump(ctx context.Context, up *Upload) error

	// Desyncs returns the stream's desync reports, oldest first, or
	// ErrNotFound for an unknown stream.
	Desyncs(ctx context.Context, stream string) ([]DesyncReport, error)

	// Dump returns a client's desync dump of checkpoint t, or ErrNotFound.
	Dump(ctx context.Context, stream string, t int64, publicID string) ([]byte, error)
}

// SyncRequest is one validated client request.
type SyncRequest struct {
	// Stream names the stream; it is created if it does not exist.
	Stream string
	// PrivateID is the client's secret id.
	PrivateID string
	// LastKnownTick is the first tick the client has not seen.
	LastKnownTick int64
	// Epoch is the epoch the client last saw, or "" if it did not say. A
	// request that posts events to another epoch applies nothing
	// (ErrEpochMismatch); one that posts none is sent the stream from "_a".
	Epoch string
	// Batch is the request's idempotency key, or "" for none.
	Batch string
	// Events are the events to append, in order.
	Events []Event
	// Hashes are the client's state hashes of checkpoint ticks, each a
	// multiple of the checkpoint interval below LastKnownTick.
	Hashes []protocol.HashReport
	// KnownOnly applies the request only if the stream knows PrivateID: a
	// request from an id it does not know (or that would create the
	// stream) applies nothing and returns ErrNewClient, so that the caller
	// can count the new id against its source's rate and send the request
	// again without KnownOnly.
	KnownOnly bool
	// Buf, if not nil, is scratch space the caller owns: the store may
	// append the reply's events to Buf[:0] instead of allocating, so
	// SyncResult.Events may share Buf's memory.
	Buf []byte
}

// misdirected reports whether the request posts events to an epoch that is
// not epoch, the stream's: the events were meant for a stream that is gone
// (a retry after the stream expired or Redis lost it), and the request
// applies nothing, not even creating the stream. Mirrored in lua/sync.lua.
func (r *SyncRequest) misdirected(epoch string) bool {
	return len(r.Events) > 0 && r.Epoch != "" && r.Epoch != epoch
}

// Event is a client event to append.
type Event struct {
	// Type is the event type; it does not start with "_".
	Type string
	// Body is a JSON string literal, quotes included. It is stored and
	// returned exactly as given.
	Body json.RawMessage
}

// SyncResult is the reply to a sync and what the sync did.
type SyncResult struct {
	// PublicID is the client's public id in the stream.
	PublicID string
	// T is the tick in progress, or the first tick not sent when More is set.
	T int64
	// Epoch identifies this incarnation of the stream.
	Epoch string
	// TickRate is the stream's ticks per second.
	TickRate int
	// Events holds the events of the reply as JSON objects separated by
	// commas, without the enclosing brackets; empty for none.
	Events []byte
	// More is set when the reply was cut short; the client should sync
	// again at once from T.
	More bool
	// Checkpoint is the checkpoint interval in ticks; 0 when off.
	Checkpoint int64
	// Base, when set, is the tick of the stream's snapshot: the events
	// the client asked for were compacted, and Events start after Base.
	Base *int64
	// Snap, when set, asks the client for its snapshot of that checkpoint.
	Snap *int64
	// Dump, when set, asks the client for its desync dump of that
	// checkpoint.
	Dump *int64

	// Created is set when this sync created the stream (and appended "_a").
	Created bool
	// Connected is set when this sync appended a connect event.
	Connected bool
	// Appended is the number of client events appended; 0 for a repeated batch.
	Appended int
	// Judged is the number of checkpoints judged, Diverged the clients
	// named in the "_x" events appended, and Compacted the events dropped.
	Judged, Diverged, Compacted int
}

// SweepResult says what a Sweep did.
type SweepResult struct {
	// Disconnected lists the disconnect events appended.
	Disconnected []Disconnect
	// Expired lists the names of the streams deleted.
	Expired []string
	// Failed lists the streams that could not be swept, each to be tried
	// again; the others were swept.
	Failed []SweepFailure
}

// SweepFailure is a stream a Sweep could not sweep, and why.
type SweepFailure struct {
	Stream string
	Err    error
}

// Disconnect is a disconnect event appended by a Sweep.
type Disconnect struct {
	Stream   string
	PublicID string
	T        int64
}

// Stats describes the streams of a store at one moment.
type Stats struct {
	// Streams is the number of streams.
	Streams int
	// Clients is the number of connected clients in all streams.
	Clients int
	// CheckpointBytes is the bytes of the snapshots and desync dumps held
	// (Config.MaxCheckpointBytes).
	CheckpointBytes int64
	// PerStream describes at most the requested number of streams, those
	// with the most connected clients first, then by name.
	PerStream []StreamStats
}

// StreamStats describes one stream.
type StreamStats struct {
	Stream  string
	T       int64
	Clients int
	// Events and Bytes are the events the stream retains and their size.
	Events, Bytes int64
}

// rank orders st.PerStream, the most connected clients first, then by
// name, and keeps at most limit of them.
func (st *Stats) rank(limit int) {
	slices.SortFunc(st.PerStream, func(a, b StreamStats) int {
		if c := cmp.Compare(b.Clients, a.Clients); c != 0 {
			return c
		}
		return cmp.Compare(a.Stream, b.Stream)
	})
	if len(st.PerStream) > limit {
		st.PerStream = st.PerStream[:max(limit, 0)]
	}
}
