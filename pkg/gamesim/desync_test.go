package gamesim_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/goeventstream/eventstream/pkg/esclient"
	"github.com/goeventstream/eventstream/pkg/gamesim"
)

func connect(t int64, id string) esclient.Event {
	return esclient.Event{T: t, Type: esclient.TypeConnect, Origin: "_", Body: id}
}

// TestDesyncToldOnceToThoseThere: the server names a broken client at the
// checkpoints it played before it could reload (a verdict waits 2 s when a
// client reports nothing): the others are told once. A Driver that joins
// later is not told of the desyncs before it joined, neither while it
// replays their "_x" nor of a checkpoint before its join.
func TestDesyncToldOnceToThoseThere(t *testing.T) {
	s := newScripted(t, connect(1, "1"), connect(2, "2"))
	s.seal(10)
	a := &counters{}
	da := s.driver(t, "2", a)
	playTo(t, da, 9)

	s.add(desyncEvent(41, 20, "1"), desyncEvent(61, 40, "1")) // 40: the same divergence
	s.seal(70)
	playTo(t, da, 69)

	b := &counters{}
	db := s.driver(t, "3", b) // joins at 70
	playTo(t, db, 69)
	s.add(desyncEvent(75, 60, "4"), desyncEvent(121, 100, "1")) // 60: before b joined; 100: a new one
	s.seal(130)
	playTo(t, da, 129)
	playTo(t, db, 129)

	assert.Equal(t, []gamesim.Desync{
		{Checkpoint: 20, IDs: []string{"1"}},
		{Checkpoint: 60, IDs: []string{"4"}},
		{Checkpoint: 100, IDs: []string{"1"}},
	}, a.seen())
	assert.Equal(t, []gamesim.Desync{{Checkpoint: 100, IDs: []string{"1"}}}, b.seen())
}

// TestDesyncReloadsOnce: a client named at three checkpoints it played
// before it could reload reloads once, and is told once: not again while
// it re-simulates the "_x", nor when one of the repeats comes after its
// reload.
func TestDesyncReloadsOnce(t *testing.T) {
	s := newScripted(t, connect(1, "1"), connect(2, "2"))
	s.seal(10)
	p := &counters{}
	d := s.driver(t, "1", p)
	playTo(t, d, 9)
	s.seal(70)
	playTo(t, d, 69)

	s.add(desyncEvent(71, 20, "1"), desyncEvent(81, 40, "1"))
	s.seal(100)
	require.Eventually(t, func() bool { playTo(t, d, 71); return d.Resyncs() == 1 }, 10*time.Second, time.Millisecond)
	playTo(t, d, 99)
	s.add(desyncEvent(101, 60, "1")) // comes after the reload
	s.seal(110)
	playTo(t, d, 109)

	assert.Equal(t, 1, d.Resyncs())
	assert.Equal(t, []gamesim.Desync{{Checkpoint: 20, IDs: []string{"1"}, Self: true}}, p.seen())
}

// TestDesyncDumpIsTheReportedState: the dump a broken client uploads is
// the state whose hash it reported, not the state it re-simulated after
// its reload; an upload that fails is retried, and the server gets it.
func TestDesyncDumpIsTheReportedState(t *testing.T) {
	s := newScripted(t, connect(1, "1"), connect(2, "2"), esclient.Event{T: 32, Type: "x", Origin: "2"})
	s.failPuts = 1
	s.seal(10)
	p := &counters{breakAt: 30}
	d := s.driver(t, "1", p)
	playTo(t, d, 9)
	s.seal(50)
	playTo(t, d, 49)
	require.True(t, p.broken)
	ref, err := gamesim.Replay(&counters{}, []esclient.Event{
		{T: 0, Type: esclient.TypeReset, Origin: "_", Body: scriptedEpoch},
		connect(1, "1"), connect(2, "2"), {T: 32, Type: "x", Origin: "2"},
	}, 41, gamesim.Config{})
	require.NoError(t, err)
	good, err := gamesim.SnapshotOf(ref)
	require.NoError(t, err)

	s.add(desyncEvent(51, 40, "1"))
	s.seal(60)
	require.Eventually(t, func() bool { playTo(t, d, 51); return d.Resyncs() == 1 }, 10*time.Second, time.Millisecond)
	now := time.Unix(0, 0)
	require.Eventually(t, func() bool { // tick 40 re-simulated
		now = now.Add(time.Second)
		d.Update(now)
		n := 0
		for _, h := range d.Hashes() {
			if h.Tick == 40 {
				n++
			}
		}
		return n == 2
	}, 10*time.Second, time.Millisecond)
	dump := int64(40)
	s.mu.Lock()
	s.dump = &dump // asked once, after the reload
	s.mu.Unlock()
	require.Eventually(t, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.dumps["1/40"] != nil
	}, 10*time.Second, time.Millisecond)

	s.mu.Lock()
	defer s.mu.Unlock()
	assert.Equal(t, s.reports["1/40"], esclient.HashOf(s.dumps["1/40"]), "the state it reported")
	assert.NotEqual(t, esclient.HashOf(good), s.reports["1/40"], "a broken one")
	assert.Equal(t, 2, s.puts, "refused once, then sent again")
}
