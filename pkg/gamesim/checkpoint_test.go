package gamesim_test

import (
	"context"
	"encoding/binary"
	"errors"
	"hash/fnv"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/goeventstream/eventstream/internal/apitest"
	"github.com/goeventstream/eventstream/internal/stream"
	"github.com/goeventstream/eventstream/pkg/esclient"
	"github.com/goeventstream/eventstream/pkg/gamesim"
)

// counters is a Snapshotter: one counter entity per connected client,
// bumped by its owner's events and by Rand; breakAt plants a bug.
type counters struct {
	byID    map[string]*counter
	breakAt int64
	broken  bool

	mu      sync.Mutex
	desyncs []gamesim.Desync
}

type counter struct {
	id string
	n  int64
}

func (c *counter) SimTick(d *gamesim.Driver) { c.n += d.Rand().Int64N(3) }

func (s *counters) OnReset(*gamesim.Driver, gamesim.Reset) { s.byID = map[string]*counter{} }
func (s *counters) OnConnect(d *gamesim.Driver, id string) {
	c := &counter{id: id}
	s.byID[id] = c
	_ = d.Spawn(c)
}
func (s *counters) OnDisconnect(*gamesim.Driver, string) {}
func (s *counters) OnClientEvent(d *gamesim.Driver, e esclient.Event) {
	if c := s.byID[e.Origin]; c != nil {
		c.n += 10
	}
	if s.breakAt > 0 && !s.broken && d.Tick() >= s.breakAt && !d.Replaying() {
		s.broken = true
		for _, c := range s.byID {
			c.n += 1000
		}
	}
}

func (s *counters) OnDesync(_ *gamesim.Driver, x gamesim.Desync) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.desyncs = append(s.desyncs, x)
}

func (s *counters) StateHash(d *gamesim.Driver) uint64 {
	b, _ := s.Snapshot(d, nil)
	h := fnv.New64a()
	h.Write(b)
	return h.Sum64()
}

// Snapshot writes the counters in spawn order.
func (s *counters) Snapshot(d *gamesim.Driver, b []byte) ([]byte, error) {
	for _, e := range d.Entities() {
		c := e.(*counter)
		b = binary.AppendUvarint(b, uint64(len(c.id)))
		b = append(b, c.id...)
		b = binary.AppendVarint(b, c.n)
	}
	return b, nil
}

func (s *counters) Restore(d *gamesim.Driver, data []byte) error {
	s.byID = map[string]*counter{}
	for len(data) > 0 {
		n, w := binary.Uvarint(data)
		if w <= 0 || uint64(len(data)-w) < n {
			return errors.New("cut short")
		}
		c := &counter{id: string(data[w : w+int(n)])}
		data = data[w+int(n):]
		v, w := binary.Varint(data)
		if w <= 0 {
			return errors.New("cut short")
		}
		c.n, data = v, data[w:]
		s.byID[c.id] = c
		if err := d.Spawn(c); err != nil {
			return err
		}
	}
	return nil
}

func (s *counters) seen() []gamesim.Desync {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]gamesim.Desync(nil), s.desyncs...)
}

// playCounters runs a Driver of each sim in stream "c" of a real server
// (with -snapshot-every snapshotEvery) at url, each sending an event every
// 150 ms, until stop, which waits for them.
func playCounters(t *testing.T, snapshotEvery int64, sims ...gamesim.Sim) (url string, drivers []*gamesim.Driver, stop func()) {
	t.Helper()
	cfg := stream.DefaultConfig()
	cfg.SnapshotEvery = snapshotEvery
	srv, _ := apitest.NewServer(t, cfg, nil)
	url = srv.URL
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i, sim := range sims {
		c, err := esclient.New(esclient.Config{BaseURL: url, Stream: "c", PrivateID: "p" + string(rune('a'+i)),
			HTTPClient: &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{}}})
		require.NoError(t, err)
		d := gamesim.New(c, sim, gamesim.Config{RecordHashes: 1 << 16})
		drivers = append(drivers, d)
		wg.Add(2)
		go func() { defer wg.Done(); _ = d.Run(ctx) }()
		go func() { // input
			defer wg.Done()
			for ctx.Err() == nil {
				_ = d.SendEvent("x", "")
				time.Sleep(150 * time.Millisecond)
			}
		}()
	}
	stop = func() { cancel(); wg.Wait() }
	t.Cleanup(stop)
	return url, drivers, stop
}

// TestResyncFromTickZero: with no snapshot (-snapshot-every 0), a client
// the server names in "_x" replays the stream from tick 0 and agrees again.
func TestResyncFromTickZero(t *testing.T) {
	if testing.Short() {
		t.Skip("plays for seconds of real time; skipped with -short")
	}
	sims := []*counters{{breakAt: 30}, {}, {}}
	_, drivers, stop := playCounters(t, 0, sims[0], sims[1], sims[2])
	require.Eventually(t, func() bool { return drivers[0].Resyncs() == 1 }, 15*time.Second, 20*time.Millisecond)
	time.Sleep(3 * time.Second) // plays on; nothing is timed by it
	stop()
	assert.Equal(t, 1, drivers[0].Resyncs(), "it agreed after one resync")

	for _, s := range sims {
		x := s.seen()
		require.NotEmpty(t, x)
		assert.Equal(t, []string{drivers[0].PublicID()}, x[0].IDs, "the broken client, named to all")
		assert.EqualValues(t, 40, x[0].Checkpoint)
	}
	assert.True(t, sims[0].seen()[0].Self)
	assert.False(t, sims[1].seen()[0].Self)
	// After its replay the broken client agrees with the others at every tick.
	want := map[int64]uint64{}
	for _, h := range drivers[1].Hashes() {
		want[h.Tick] = h.Hash
	}
	last := drivers[0].Hashes()[len(drivers[0].Hashes())-1].Tick
	compared := 0
	for _, h := range drivers[0].Hashes() {
		if w, ok := want[h.Tick]; ok && h.Tick > last-40 {
			assert.Equal(t, w, h.Hash, "tick %d", h.Tick)
			compared++
		}
	}
	assert.Positive(t, compared)
}

// TestLastCheckpointIsTheVerifiedState: on a real server that asks for
// snapshots, the Driver asked uploads its checkpoint's snapshot; from then
// on its LastCheckpoint, told to its Sim, is a checkpoint whose hash is
// that of a Replay of the stream to that tick.
func TestLastCheckpointIsTheVerifiedState(t *testing.T) {
	if testing.Short() {
		t.Skip("plays for a second or two of real time; skipped with -short")
	}
	sims := []*toldCheckpoints{{counters: &counters{}}, {counters: &counters{}}}
	url, drivers, stop := playCounters(t, 1, sims[0], sims[1])
	var told []esclient.Checkpoint
	var who int
	require.Eventually(t, func() bool {
		for i, sim := range sims {
			if told, _ = sim.checkpoints(); len(told) > 0 {
				who = i
				return true
			}
		}
		return false
	}, 15*time.Second, 10*time.Millisecond, "no Driver was told of a checkpoint")
	stop()
	cp, ok := drivers[who].LastCheckpoint()
	require.True(t, ok)
	assert.GreaterOrEqual(t, cp.T, told[0].T)
	assert.Zero(t, cp.T%20, "a checkpoint tick")

	reader, err := esclient.New(esclient.Config{BaseURL: url, Stream: "c", Spectate: true,
		HTTPClient: &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}})
	require.NoError(t, err)
	var upTo []esclient.Event
	for {
		u, err := reader.Sync(context.Background())
		require.NoError(t, err)
		for _, e := range u.Events {
			if e.T <= cp.T {
				upTo = append(upTo, e)
			}
		}
		if !u.More {
			require.Greater(t, u.T, cp.T)
			break
		}
	}
	assert.Equal(t, upTo[0].Body, cp.Epoch)
	replay, err := gamesim.Replay(&counters{}, upTo, cp.T+1, gamesim.Config{})
	require.NoError(t, err)
	snap, err := gamesim.SnapshotOf(replay)
	require.NoError(t, err)
	assert.Equal(t, esclient.HashOf(snap), cp.Hash, "the hash of the state after tick %d", cp.T)
}

// TestReplayFromASnapshot: a snapshot taken at a tick of a Replay, restored
// and played on with the events after it, reaches the state of the Replay
// that ran from tick 0, entities in the same order.
func TestReplayFromASnapshot(t *testing.T) {
	events := []esclient.Event{
		{T: 0, Type: esclient.TypeReset, Origin: "_", Body: "epoch-1"},
		{T: 1, Type: esclient.TypeConnect, Origin: "_", Body: "1"},
		{T: 2, Type: esclient.TypeConnect, Origin: "_", Body: "2"},
		{T: 5, Type: "x", Origin: "2"},
		{T: 9, Type: esclient.TypeConnect, Origin: "_", Body: "3"},
		{T: 12, Type: "x", Origin: "3"},
		{T: 30, Type: "x", Origin: "1"},
	}
	full, err := gamesim.Replay(&counters{}, events, 40, gamesim.Config{RecordHashes: 64})
	require.NoError(t, err)
	half, err := gamesim.Replay(&counters{}, events[:6], 20, gamesim.Config{})
	require.NoError(t, err)
	snap, err := gamesim.SnapshotOf(half)
	require.NoError(t, err)

	from, err := gamesim.ReplayFrom(&counters{}, snap, events[6:], 40, gamesim.Config{RecordHashes: 64})
	require.NoError(t, err)
	assert.Equal(t, full.Hashes()[len(full.Hashes())-20:], from.Hashes(), "ticks 20 to 39 alike")
	assert.Len(t, from.Entities(), 3)

	_, err = gamesim.ReplayFrom(&counters{}, snap, events[5:], 40, gamesim.Config{})
	assert.ErrorContains(t, err, "tick 12, not after the snapshot's tick 19")
	_, err = gamesim.ReplayFrom(&counters{}, []byte("nope"), nil, 40, gamesim.Config{})
	assert.Error(t, err)
	_, err = gamesim.ReplayFrom(&nopSimExt{}, snap, nil, 40, gamesim.Config{})
	assert.ErrorContains(t, err, "Snapshotter")
}

type nopSimExt struct{}

func (nopSimExt) OnReset(*gamesim.Driver, gamesim.Reset)        {}
func (nopSimExt) OnConnect(*gamesim.Driver, string)             {}
func (nopSimExt) OnDisconnect(*gamesim.Driver, string)          {}
func (nopSimExt) OnClientEvent(*gamesim.Driver, esclient.Event) {}
