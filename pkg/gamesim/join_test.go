package gamesim_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/goeventstream/eventstream/internal/protocol"
	"github.com/goeventstream/eventstream/pkg/esclient"
	"github.com/goeventstream/eventstream/pkg/gamesim"
)

// TestJoinFromASnapshotNewerThanBase: a late joiner of a compacted stream
// whose snapshot, fetched after the reply that said base, is of a later
// tick than that reply's t: the events at or below the snapshot's tick
// that come in the next replies are in the snapshot already. It reaches
// the same hashes as a replay of the whole stream (they were applied
// again at the tick after the snapshot).
func TestJoinFromASnapshotNewerThanBase(t *testing.T) {
	const epoch = "4b2a1f7e-9c3d-4e5f-8a6b-7c8d9e0f1a2b"
	events := []esclient.Event{
		{T: 0, Type: esclient.TypeReset, Origin: "_", Body: epoch},
		{T: 1, Type: esclient.TypeConnect, Origin: "_", Body: "1"},
		{T: 2, Type: esclient.TypeConnect, Origin: "_", Body: "2"},
	}
	for k := int64(3); k < 70; k += 3 {
		events = append(events, esclient.Event{T: k, Type: "x", Origin: strconv.FormatInt(1+k%2, 10)})
	}
	below := func(t int64) []esclient.Event {
		var out []esclient.Event
		for _, e := range events {
			if e.T < t {
				out = append(out, e)
			}
		}
		return out
	}
	ref, err := gamesim.Replay(&counters{}, events, 70, gamesim.Config{RecordHashes: 100})
	require.NoError(t, err)
	at60, err := gamesim.Replay(&counters{}, below(61), 61, gamesim.Config{})
	require.NoError(t, err)
	snap, err := gamesim.SnapshotOf(at60)
	require.NoError(t, err)

	at0, err := gamesim.Replay(&counters{}, below(1), 1, gamesim.Config{})
	require.NoError(t, err)
	old, err := gamesim.SnapshotOf(at0)
	require.NoError(t, err)
	for _, oldFirst := range []bool{false, true} {
		t.Run(fmt.Sprintf("older snapshot first=%t", oldFirst), func(t *testing.T) {
			joinFromSnapshot(t, events, ref, snap, old, oldFirst)
		})
	}
}

// joinFromSnapshot joins the stream of events, compacted to base 20, from
// the snapshot snap of tick 60 (after the old one of tick 0, older than
// base, when oldFirst), and checks the hashes it plays against ref's.
func joinFromSnapshot(t *testing.T, events []esclient.Event, ref *gamesim.Driver, snap, old []byte, oldFirst bool) {
	epoch := events[0].Body
	between := func(from, to int64) []protocol.Event {
		out := []protocol.Event{}
		for _, e := range events {
			if e.T >= from && e.T < to {
				out = append(out, protocol.Event{T: e.T, Type: e.Type, Origin: e.Origin, Body: e.Body})
			}
		}
		return out
	}
	base := int64(20)
	var mu sync.Mutex
	gets := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/s/snapshot" { // stored after the reply that said base 20
			mu.Lock()
			gets++
			serve, tick := snap, "60"
			if oldFirst && gets == 1 { // not the one the reply starts after: fetched again
				serve, tick = old, "0"
			}
			mu.Unlock()
			w.Header().Set("Eventstream-Tick", tick)
			w.Header().Set("Eventstream-Hash", esclient.HashOf(serve))
			w.Header().Set("Eventstream-Epoch", epoch)
			_, _ = w.Write(serve)
			return
		}
		from, err := strconv.ParseInt(r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:], 10, 64)
		if err != nil {
			http.NotFound(w, r)
			return
		}
		reply := protocol.SyncReply{ID: "3", Epoch: epoch, TPS: 20, Ckpt: 20, T: 70, Events: between(max(from, 45), 70)}
		if from < 45 { // compacted: from the snapshot of tick 20
			reply.T, reply.Base, reply.Events = 45, &base, between(21, 45)
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(reply)
	}))
	t.Cleanup(srv.Close)

	c, err := esclient.New(esclient.Config{BaseURL: srv.URL, Stream: "s", PrivateID: "p",
		Transport: esclient.Poll, SyncInterval: 5 * time.Millisecond})
	require.NoError(t, err)
	sim := &toldCheckpoints{counters: &counters{}}
	d := gamesim.New(c, sim, gamesim.Config{RecordHashes: 100})
	t.Cleanup(func() { _ = d.Close() })
	now := time.Unix(0, 0)
	require.Eventually(t, func() bool {
		now = now.Add(time.Second)
		d.Update(now)
		return d.Tick() == 69
	}, 10*time.Second, time.Millisecond)
	require.NoError(t, d.Err())

	want := map[int64]uint64{}
	for _, h := range ref.Hashes() {
		want[h.Tick] = h.Hash
	}
	got := d.Hashes()
	require.NotEmpty(t, got)
	assert.EqualValues(t, 61, got[0].Tick, "played from the tick after the snapshot")
	for _, h := range got {
		assert.Equal(t, want[h.Tick], h.Hash, "tick %d", h.Tick)
	}
	if oldFirst {
		mu.Lock()
		assert.Equal(t, 2, gets, "the older snapshot was not used")
		mu.Unlock()
	}

	// The snapshot it joined from is the stream's verified state: the
	// Driver says so, and told the Sim, between ticks, once per checkpoint.
	verified := esclient.Checkpoint{T: 60, Hash: esclient.HashOf(snap), Epoch: epoch}
	last, ok := d.LastCheckpoint()
	require.True(t, ok)
	assert.Equal(t, verified, last)
	told, inTick := sim.checkpoints()
	require.NotEmpty(t, told)
	assert.Equal(t, verified, told[len(told)-1])
	assert.False(t, inTick, "told while a tick was processed")
	for i := 1; i < len(told); i++ {
		assert.Greater(t, told[i].T, told[i-1].T, "told of %v after %v", told[i], told[i-1])
	}
	_, ok = ref.LastCheckpoint()
	assert.False(t, ok, "a Replay hears from no server")
}

// toldCheckpoints is counters that keeps what OnCheckpoint was told
// (gamesim.CheckpointHandler).
type toldCheckpoints struct {
	*counters
	mu     sync.Mutex
	told   []esclient.Checkpoint
	inTick bool // told while a tick was processed
}

func (s *toldCheckpoints) OnCheckpoint(d *gamesim.Driver, c esclient.Checkpoint) {
	inTick := !errors.Is(d.Spawn(nil), gamesim.ErrNotProcessing)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.told = append(s.told, c)
	s.inTick = s.inTick || inTick
}

// checkpoints returns what OnCheckpoint was told, and whether it was told
// while a tick was processed.
func (s *toldCheckpoints) checkpoints() ([]esclient.Checkpoint, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]esclient.Checkpoint(nil), s.told...), s.inTick
}
