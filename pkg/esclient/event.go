package esclient

import "github.com/goeventstream/eventstream/internal/protocol"

// Server event types and origin. Every type starting with "_" belongs to
// the server.
const (
	// TypeReset starts a stream at tick 0; its body is the stream's epoch,
	// the seed every client derives its randomness from.
	TypeReset = protocol.TypeReset
	// TypeConnect marks a client joining; its body is the client's public id.
	TypeConnect = protocol.TypeConnect
	// TypeDisconnect marks a client gone silent; its body is its public id.
	TypeDisconnect = protocol.TypeDisconnect
	// TypeDesync names the clients whose state diverged at a checkpoint;
	// its body is the JSON text {"t":<checkpoint>,"ids":[<public ids>]}
	// (ParseDesync reads it).
	TypeDesync = protocol.TypeDesync
	// ServerOrigin is the origin of the server's events.
	ServerOrigin = protocol.ServerOrigin
)

// Limits the server applies by default, which Send checks locally.
const (
	// MaxTypeLen is the longest event type, in bytes.
	MaxTypeLen = protocol.MaxTypeLen
	// MaxBodyLen is the longest event body, in bytes as encoded in JSON
	// (without the quotes).
	MaxBodyLen = protocol.DefaultMaxEventBodyBytes
	// MaxEventsPerSync is the most events one sync carries; more wait for
	// the next sync.
	MaxEventsPerSync = protocol.DefaultMaxEventsPerSync
)

// Event is one event of a stream.
type Event struct {
	// T is the tick the event belongs to.
	T int64 `json:"t"`
	// Type is TypeReset, TypeConnect, TypeDisconnect or a client's type.
	Type string `json:"type"`
	// Origin is ServerOrigin or the public id of the client that sent it.
	Origin string `json:"origin"`
	// Body is the epoch for TypeReset, a public id for TypeConnect and
	// TypeDisconnect, and whatever the client sent otherwise.
	Body string `json:"body"`
}

// Update is what one sync brought.
type Update struct {
	// PublicID is this client's public id in the stream.
	PublicID string
	// T is the tick in progress: every tick below T is final, and Events
	// holds every event below T that this client had not yet received.
	T int64
	// Epoch identifies the incarnation of the stream.
	Epoch string
	// TickRate is the stream's ticks per second.
	TickRate int
	// Events are the new events, in stream order.
	Events []Event
	// Reset is set when Events start again from tick 0 (the first sync,
	// or the stream was created anew): throw away all state built from
	// earlier events.
	Reset bool
	// More is set when the server had more events than fit in one reply;
	// Run syncs again at once.
	More bool
	// Dropped is the number of queued events dropped because the stream
	// started anew (see Config.KeepQueueOnReset).
	Dropped int

	// CheckpointEvery is the stream's checkpoint interval in ticks: report
	// the state hash of every multiple of it (ReportHash); 0 when the
	// server has checkpoints off.
	CheckpointEvery int64
	// Base, when set, says that the ticks asked for were compacted: Events
	// start after the snapshot of tick *Base, which the client loads first
	// (Snapshot).
	Base *int64
	// Snap, when set, asks for this client's snapshot of checkpoint *Snap
	// (PutSnapshot).
	Snap *int64
	// Dump, when set, asks for this client's snapshot of checkpoint *Dump,
	// for a desync report (PutDump).
	Dump *int64
}
