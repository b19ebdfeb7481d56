package stream

import (
	"errors"
	"fmt"
	"time"

	"github.com/goeventstream/eventstream/internal/clock"
	"github.com/goeventstream/eventstream/internal/protocol"
)

// Config configures a store. Start from DefaultConfig.
type Config struct {
	// TickRate is the number of ticks per second of new streams.
	TickRate int
	// ClientTimeout is how long a connected client may stay silent before
	// it is disconnected.
	ClientTimeout time.Duration
	// StreamTTL is how long a stream with no connected client is kept.
	StreamTTL time.Duration
	// MaxStreams caps the number of streams.
	MaxStreams int
	// MaxClientsPerStream caps the number of distinct clients of a stream.
	MaxClientsPerStream int
	// MaxEventsPerStream caps the number of events a stream accepts from
	// clients' requests (server events included in the count).
	MaxEventsPerStream int
	// MaxStreamBytes caps the bytes of a stream's events, as encoded in
	// replies, that clients' requests may take it to.
	MaxStreamBytes int64
	// PageEvents caps the number of events in one reply, except that a
	// single tick is never split.
	PageEvents int
	// PageBytes caps the bytes of a reply's events (their JSON, with a
	// comma between each), except that a single tick is never split: a
	// page ends before the tick that would take it past PageBytes, and a
	// first tick larger than PageBytes is sent whole.
	PageBytes int
	// MaxSyncsPerSecond is the rate at which each client of a stream may
	// sync, with a burst of as many; 0 means no limit.
	MaxSyncsPerSecond float64
	// MaxEventsPerSecond is the rate at which each client of a stream may
	// post events, with a burst of EventBurst, so that no client can fill
	// a stream shared with others; 0 means no limit.
	MaxEventsPerSecond float64
	// EventBurst is the most events a client may post at once; it must
	// hold the largest request.
	EventBurst int
	// MaxStreamBytesPerSecond is the rate at which all the clients of a
	// stream together may post bytes of events (as stored), with a burst
	// of a second's worth and at least PageBytes, so that many ids cannot
	// fill a stream faster than one; 0 means no limit.
	MaxStreamBytesPerSecond float64
	// MaxJoinsPerSecond is the rate at which a stream takes private ids it
	// has not seen, with a burst of a second's worth and at least
	// MaxClientsPerStream; 0 means no limit.
	MaxJoinsPerSecond float64
	// CheckpointInterval is the number of ticks between checkpoints: the
	// ticks clients report state hashes for are its multiples. Zero turns
	// checkpoints, desync detection, snapshots and compaction off.
	CheckpointInterval int64
	// VoterTenure is how long a client must have been connected (since
	// its latest "_c") before it votes on a checkpoint, except the
	// stream's founders: clients that connected within the stream's first
	// VoterTenure vote from the start (Config.voter). Zero: every client
	// connected at a checkpoint's tick votes on it.
	VoterTenure time.Duration
	// CheckpointQuorum is the fewest clients that must agree on a hash for
	// it to be canonical; when fewer clients are connected, all of them.
	CheckpointQuorum int
	// SnapshotEvery is the number of events appended since the last
	// snapshot after which the server asks a client for one. Zero asks
	// for none and compacts nothing: the stream keeps its full history.
	SnapshotEvery int64
	// MaxSnapshotBytes caps a snapshot and a desync dump.
	MaxSnapshotBytes int64
	// MaxCheckpointBytes caps the bytes of the snapshots and desync dumps
	// of all streams together (checkpoint_budget.go); 0 means no limit.
	MaxCheckpointBytes int64
	// HistoryRetain is how long events at or below the snapshot's tick
	// are kept before they are dropped.
	HistoryRetain time.Duration
	// Clock tells the time. Nil means the backend's own: the process's
	// clock for the memory store, Redis's TIME for the Redis store (so
	// that replicas' clock skew cannot reorder or reopen a tick). Tests set
	// a *clock.Fake.
	Clock clock.Clock
}

// DefaultConfig returns the configuration of the protocol's defaults.
func DefaultConfig() Config {
	return Config{
		TickRate:            protocol.DefaultTickRate,
		ClientTimeout:       10 * time.Second,
		StreamTTL:           60 * time.Second,
		MaxStreams:          100_000,
		MaxClientsPerStream: protocol.DefaultMaxClientsPerStream,
		MaxEventsPerStream:  1_000_000,
		MaxStreamBytes:      64 << 20,
		PageEvents:          protocol.DefaultPageEvents,
		PageBytes:           1 << 20,
		MaxSyncsPerSecond:   50,
		MaxEventsPerSecond:  100,
		EventBurst:          protocol.DefaultMaxEventsPerSync,
		// At 512 KiB a second, a stream that takes snapshots holds at most
		// about 30 MiB of history retained (60 s), half its 64 MiB: one
		// that checkpoints never fills, however many ids post to it.
		MaxStreamBytesPerSecond: 512 << 10,
		MaxJoinsPerSecond:       20,
		CheckpointInterval:      20,
		CheckpointQuorum:        2,
		VoterTenure:             30 * time.Second,
		SnapshotEvery:           10_000,
		MaxSnapshotBytes:        4 << 20,
		MaxCheckpointBytes:      1 << 30,
		HistoryRetain:           60 * time.Second,
	}
}

// Validate reports the first invalid field, if any.
func (c Config) Validate() error {
	switch {
	case c.TickRate < 1 || c.TickRate > 1000:
		return fmt.Errorf("tick rate must be between 1 and 1000 ticks per second, not %d", c.TickRate)
	case c.ClientTimeout <= 0:
		return errors.New("client timeout must be positive")
	case c.StreamTTL <= 0:
		return errors.New("stream TTL must be positive")
	case c.MaxStreams < 1:
		return errors.New("max streams must be at least 1")
	case c.MaxClientsPerStream < 1:
		return errors.New("max clients per stream must be at least 1")
	case c.MaxEventsPerStream < 2:
		return errors.New("max events per stream must be at least 2 (the reset and one connect)")
	case c.MaxStreamBytes < MinStreamBytes:
		return fmt.Errorf("max stream bytes must be at least %d (the reset and one connect)", MinStreamBytes)
	case c.PageEvents < 1:
		return errors.New("page events must be at least 1")
	case c.PageBytes < 1:
		return errors.New("page bytes must be at least 1")
	case c.MaxSyncsPerSecond < 0 || c.MaxEventsPerSecond < 0:
		return errors.New("the rates of syncs and events must not be negative")
	case c.MaxStreamBytesPerSecond < 0 || c.MaxJoinsPerSecond < 0:
		return errors.New("the rates of a stream's bytes and joins must not be negative")
	case c.MaxEventsPerSecond > 0 && c.EventBurst < 1:
		return errors.New("the event burst must be at least 1")
	case c.CheckpointInterval < 0:
		return errors.New("the checkpoint interval must not be negative")
	case c.VoterTenure < 0:
		return errors.New("the checkpoint voter tenure must not be negative")
	case c.CheckpointInterval > 0 && c.CheckpointQuorum < 1:
		return errors.New("the checkpoint quorum must be at least 1")
	case c.SnapshotEvery < 0:
		return errors.New("snapshot every must not be negative")
	case c.CheckpointInterval > 0 && c.MaxSnapshotBytes < 1:
		return errors.New("max snapshot bytes must be at least 1")
	case c.MaxCheckpointBytes != 0 && c.MaxCheckpointBytes < c.MaxSnapshotBytes:
		return errors.New("max checkpoint bytes must hold one snapshot (max snapshot bytes), or be 0 for no limit")
	case c.HistoryRetain < 0:
		return errors.New("the history retain must not be negative")
	}
	return nil
}

// MinStreamBytes is the least Config.MaxStreamBytes: room for a stream's
// "_a" and a first "_c".
const MinStreamBytes = 1 << 10

// TickDuration returns the length of one tick.
func (c Config) TickDuration() time.Duration { return time.Second / time.Duration(c.TickRate) }
