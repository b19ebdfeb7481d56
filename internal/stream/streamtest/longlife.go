package streamtest

import (
	"context"
	"encoding/binary"
	"hash/crc32"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/goeventstream/eventstream/internal/clock"
	"github.com/goeventstream/eventstream/internal/protocol"
	"github.com/goeventstream/eventstream/internal/stream"
)

// LongLife bounds, for the defaults of -snapshot-every (10 000 events) and
// -history-retain (60 s) at 100 events a second: a stream retains at most
// the events since its last snapshot was asked for, those of the history
// retained, and those of the few seconds a snapshot takes to be judged and
// stored. docs/performance.md states them.
const (
	LongLifeMaxEvents = 10_000 + 100*(60+5)
	LongLifeMaxBytes  = LongLifeMaxEvents * 64 // an event of this test is at most 64 bytes
)

// LongLife runs one stream for the given stream time on the fake clock: a
// client posts 100 events a second, two clients simulate them (their state
// folds every event's bytes) and report the hash of every checkpoint,
// uploading their snapshot when asked. The stream's event cap is far
// below the events posted, so only compaction keeps it from filling: no
// request may fail, and the events and bytes it retains stay under
// LongLifeMaxEvents and LongLifeMaxBytes. At the end a client joins,
// loads the snapshot, and reaches the state of the others.
func LongLife(t *testing.T, newStore Factory, d time.Duration) {
	e := newEnv(t, newStore, func(c *stream.Config) {
		c.MaxEventsPerStream = 4 * LongLifeMaxEvents
		c.MaxStreamBytes = 4 * LongLifeMaxBytes
	})
	life := NewLife(t, e.store, e.clock)
	var maxEvents, maxBytes int64
	rounds := int(d / time.Second)
	for r := range rounds {
		life.Round()
		if r%7 == 0 || r == rounds-1 { // not a divisor of the snapshots' period
			st := e.stats()
			require.Len(t, st.PerStream, 1)
			maxEvents, maxBytes = max(maxEvents, st.PerStream[0].Events), max(maxBytes, st.PerStream[0].Bytes)
		}
	}
	t.Logf("%v of stream time, %d events posted: at most %d events and %d bytes retained; %d snapshots stored",
		d, 100*rounds, maxEvents, maxBytes, life.Snapshots)
	assert.LessOrEqual(t, maxEvents, int64(LongLifeMaxEvents))
	assert.LessOrEqual(t, maxBytes, int64(LongLifeMaxBytes))
	assert.Greater(t, life.Snapshots, rounds*100/10_000-2, "a snapshot every 10 000 events")

	// A client that joins now starts from the snapshot and reaches the
	// others' state.
	ctx := context.Background()
	late := &simClient{id: "late"}
	res, err := e.store.Sync(ctx, &stream.SyncRequest{Stream: LifeStream, PrivateID: late.id})
	require.NoError(t, err)
	require.NotNil(t, res.Base, "the stream is compacted")
	snap, err := e.store.Snapshot(ctx, LifeStream)
	require.NoError(t, err)
	require.Equal(t, *res.Base, snap.T)
	late.restore(snap.Data)
	late.apply(res.Events)
	require.Equal(t, life.players[0].lastT, res.T, "the late joiner is at the others' tick")
	assert.Equal(t, life.State(), late.state(), "the late joiner reached the same state")
}

// LifeStream is the stream a Life plays.
const LifeStream = "life"

// Life plays LifeStream on store, one second of the fake clock per Round:
// a client posts 100 events, and two clients simulate them, report the
// hash of each checkpoint and upload their snapshot when asked. The
// stream is created at Start.
type Life struct {
	tb      testing.TB
	store   stream.Store
	clock   *clock.Fake
	moves   []stream.Event
	players []*simClient
	round   int
	// Snapshots counts the snapshots stored.
	Snapshots int
}

// NewLife returns a Life that has not played yet.
func NewLife(tb testing.TB, store stream.Store, clk *clock.Fake) *Life {
	moves := make([]stream.Event, 100)
	for i := range moves {
		moves[i] = stream.Event{Type: "m", Body: Body("x")}
	}
	return &Life{tb: tb, store: store, clock: clk, moves: moves, players: []*simClient{{id: "p1"}, {id: "p2"}}}
}

// Round plays one second.
func (l *Life) Round() {
	ctx := context.Background()
	r := l.round
	l.round++
	l.clock.Set(Start.Add(time.Duration(r) * time.Second)) // tick 20r+1
	_, err := l.store.Sync(ctx, &stream.SyncRequest{Stream: LifeStream, PrivateID: "poster", LastKnownTick: int64(20*r + 1),
		Events: l.moves})
	require.NoError(l.tb, err, "round %d", r)
	for _, p := range l.players {
		if p.sync(ctx, l.tb, l.store) {
			l.Snapshots++
		}
	}
	if r%10 == 0 {
		_, err := l.store.Sweep(ctx)
		require.NoError(l.tb, err)
	}
}

// State returns the state the clients reached: what a client that joins
// must reach.
func (l *Life) State() []byte { return l.players[0].state() }

// StateOf returns the state of a snapshot of the Life's clients with the
// events that follow it: what a client that joins reaches.
func StateOf(snapshot []byte, events ...[]byte) []byte {
	c := &simClient{}
	c.restore(snapshot)
	for _, e := range events {
		c.apply(e)
	}
	return c.state()
}

// simClient simulates a stream: its state is a CRC of every event's bytes
// (each followed by a comma, so that how replies cut the stream does not
// matter) and their count.
type simClient struct {
	id      string
	lastT   int64
	crc     uint32
	n       uint64
	pending []protocol.HashReport
	kept    map[int64][]byte // snapshots by checkpoint tick
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func (c *simClient) apply(events []byte) {
	if len(events) == 0 {
		return
	}
	c.crc = crc32.Update(c.crc, castagnoli, events)
	c.crc = crc32.Update(c.crc, castagnoli, []byte{','})
	c.n += uint64(countEvents(events))
}

func (c *simClient) state() []byte {
	return binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint32(nil, c.crc), c.n)
}

func (c *simClient) restore(b []byte) {
	c.crc, c.n = binary.BigEndian.Uint32(b), binary.BigEndian.Uint64(b[4:])
}

// sync polls, reporting the hash of the last checkpoint reached, applies
// the reply and uploads a snapshot when asked. It reports whether one was
// stored.
func (c *simClient) sync(ctx context.Context, t testing.TB, store stream.Store) bool {
	res, err := store.Sync(ctx, &stream.SyncRequest{Stream: LifeStream, PrivateID: c.id, LastKnownTick: c.lastT, Hashes: c.pending})
	require.NoError(t, err)
	require.Nil(t, res.Base, "%s keeps up: it never needs the snapshot", c.id)
	require.False(t, res.More)
	c.apply(res.Events)
	c.lastT = res.T
	c.pending = nil
	ck := res.T - 1 // a checkpoint: the client is now at its end
	if ck%20 == 0 {
		st := c.state()
		if c.kept == nil {
			c.kept = map[int64][]byte{}
		}
		c.kept[ck] = st
		delete(c.kept, ck-20*10)
		c.pending = []protocol.HashReport{{T: ck, H: sha256Hex(st)}}
	}
	if res.Snap != nil {
		data := c.kept[*res.Snap]
		require.NotNil(t, data, "%s keeps the snapshot asked for", c.id)
		_, stored, err := store.PutSnapshot(ctx, &stream.Upload{Stream: LifeStream, PrivateID: c.id, T: *res.Snap, Data: data})
		require.NoError(t, err)
		return stored
	}
	return false
}

// countEvents counts the events of a reply: each starts with {"t":, which
// no body can hold unescaped.
func countEvents(events []byte) int {
	n := 0
	for i := 0; i+5 <= len(events); i++ {
		if events[i] == '{' && string(events[i:i+5]) == `{"t":` {
			n++
		}
	}
	return n
}
