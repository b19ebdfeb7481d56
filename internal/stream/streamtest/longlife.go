package streamtest

import (
	"context"
	"encoding/binary"
	"hash/crc32"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

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
	ctx := context.Background()
	moves := make([]stream.Event, 100)
	for i := range moves {
		moves[i] = stream.Event{Type: "m", Body: Body("x")}
	}
	players := []*simClient{{id: "p1"}, {id: "p2"}}
	var maxEvents, maxBytes int64
	snapshots := 0
	rounds := int(d / time.Second)
	for r := range rounds {
		e.clock.Set(Start.Add(time.Duration(r) * time.Second)) // tick 20r+1
		_, err := e.store.Sync(ctx, &stream.SyncRequest{Stream: "life", PrivateID: "poster", LastKnownTick: int64(20*r + 1),
			Events: moves})
		require.NoError(t, err, "round %d", r)
		for _, p := range players {
			if p.sync(t, e, ctx) {
				snapshots++
			}
		}
		if r%10 == 0 {
			_, err := e.store.Sweep(ctx)
			require.NoError(t, err)
		}
		if r%7 == 0 || r == rounds-1 { // not a divisor of the snapshots' period
			st := e.stats()
			require.Len(t, st.PerStream, 1)
			maxEvents, maxBytes = max(maxEvents, st.PerStream[0].Events), max(maxBytes, st.PerStream[0].Bytes)
		}
	}
	t.Logf("%v of stream time, %d events posted: at most %d events and %d bytes retained; %d snapshots stored",
		d, 100*rounds, maxEvents, maxBytes, snapshots)
	assert.LessOrEqual(t, maxEvents, int64(LongLifeMaxEvents))
	assert.LessOrEqual(t, maxBytes, int64(LongLifeMaxBytes))
	assert.Greater(t, snapshots, rounds*100/10_000-2, "a snapshot every 10 000 events")

	// A client that joins now starts from the snapshot and reaches the
	// others' state.
	late := &simClient{id: "late"}
	res, err := e.store.Sync(ctx, &stream.SyncRequest{Stream: "life", PrivateID: late.id})
	require.NoError(t, err)
	require.NotNil(t, res.Base, "the stream is compacted")
	snap, err := e.store.Snapshot(ctx, "life")
	require.NoError(t, err)
	require.Equal(t, *res.Base, snap.T)
	late.restore(snap.Data)
	late.apply(res.Events)
	require.Equal(t, players[0].lastT, res.T, "the late joiner is at the others' tick")
	assert.Equal(t, players[0].state(), late.state(), "the late joiner reached the same state")
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
func (c *simClient) sync(t *testing.T, e *env, ctx context.Context) bool {
	res, err := e.store.Sync(ctx, &stream.SyncRequest{Stream: "life", PrivateID: c.id, LastKnownTick: c.lastT, Hashes: c.pending})
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
		_, stored, err := e.store.PutSnapshot(ctx, &stream.Upload{Stream: "life", PrivateID: c.id, T: *res.Snap, Data: data})
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
