package gamesim

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/goeventstream/eventstream/pkg/esclient"
)

type nopSim struct{ resets int }

func (s *nopSim) OnReset(*Driver, Reset)              { s.resets++ }
func (*nopSim) OnConnect(*Driver, string)             {}
func (*nopSim) OnDisconnect(*Driver, string)          {}
func (*nopSim) OnClientEvent(*Driver, esclient.Event) {}
func update(t int64, events ...esclient.Event) esclient.Update {
	return esclient.Update{T: t, TickRate: 20, Events: events, Reset: len(events) > 0 && events[0].Type == esclient.TypeReset}
}

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

const tick = 50 * time.Millisecond

func TestPacingFollowsTheTickRate(t *testing.T) {
	d := newDriver(&nopSim{}, Config{})
	d.receive(context.Background(), update(5, esclient.Event{T: 0, Type: esclient.TypeReset, Origin: "_", Body: "e"}))

	assert.Equal(t, 1, d.Update(t0), "5 available: 1 to come within 4 of t")
	assert.Equal(t, 0, d.Update(t0.Add(tick/2)))
	assert.Equal(t, 1, d.Update(t0.Add(tick)), "one tick per 50 ms")
	assert.Equal(t, 2, d.Update(t0.Add(3*tick)))
	assert.Equal(t, 1, d.Update(t0.Add(10*tick)), "never at or past the last t received")
	assert.Equal(t, int64(4), d.Tick())
	assert.Equal(t, 0, d.Update(t0.Add(20*tick)))

	// Waiting for the server banked no time: new ticks play at the rate.
	d.receive(context.Background(), update(9))
	assert.Equal(t, 1, d.Update(t0.Add(20*tick+tick/2)), "not a burst of 4")
	assert.Equal(t, 1, d.Update(t0.Add(21*tick+tick/2)))
}

func TestPacingCatchesUpWhenBehind(t *testing.T) {
	d := newDriver(&nopSim{}, Config{MaxTicksPerUpdate: 10})
	d.receive(context.Background(), update(30, esclient.Event{T: 0, Type: esclient.TypeReset, Origin: "_", Body: "e"}))

	assert.Equal(t, 10, d.Update(t0), "bounded work per call")
	assert.Equal(t, 10, d.Update(t0.Add(time.Millisecond)))
	assert.Equal(t, 6, d.Update(t0.Add(2*time.Millisecond)), "catch up to within 4 ticks of t")
	assert.Equal(t, int64(25), d.Tick())
	assert.Equal(t, 0, d.Update(t0.Add(3*time.Millisecond)))
	assert.Equal(t, 1, d.Update(t0.Add(tick+3*time.Millisecond)))
}

func TestPacingRestartsOnReset(t *testing.T) {
	sim := &nopSim{}
	d := newDriver(sim, Config{})
	d.receive(context.Background(), update(3, esclient.Event{T: 0, Type: esclient.TypeReset, Origin: "_", Body: "old"}))
	for i := range 10 {
		d.Update(t0.Add(time.Duration(i) * tick))
	}
	require.Equal(t, int64(2), d.Tick())

	d.receive(context.Background(), update(2, esclient.Event{T: 0, Type: esclient.TypeReset, Origin: "_", Body: "new"}))
	d.Update(t0.Add(20 * tick))
	d.Update(t0.Add(21 * tick))
	assert.Equal(t, int64(1), d.Tick(), "the new stream is processed from tick 0")
	assert.Equal(t, 2, sim.resets)
}

// TestPushedUpdatesRunCloser: a Driver fed by a push client keeps only as
// many ticks in hand as the gaps between updates need (1 when they come
// every tick), where a polling one keeps DefaultCatchUpThreshold.
func TestPushedUpdatesRunCloser(t *testing.T) {
	for _, tt := range []struct {
		transport esclient.Transport
		gap       time.Duration
		want      int64 // ticks the Driver stays behind the last t
	}{
		{esclient.Push, tick, 1},
		{esclient.Auto, 2 * tick, 2},
		{esclient.Push, 200 * time.Millisecond, DefaultCatchUpThreshold},
		{esclient.Poll, tick, DefaultCatchUpThreshold},
	} {
		t.Run(fmt.Sprintf("%v every %v", tt.transport, tt.gap), func(t *testing.T) {
			c, err := esclient.New(esclient.Config{BaseURL: "http://x", Stream: "s", PrivateID: "p", Transport: tt.transport})
			require.NoError(t, err)
			d := newDriver(&nopSim{}, Config{})
			d.client = c
			now := t0
			d.now = func() time.Time { return now }
			d.receive(context.Background(), update(1, esclient.Event{T: 0, Type: esclient.TypeReset, Origin: "_", Body: "e"}))
			ticks := int64(tt.gap / tick)
			for k := int64(1); k <= 10; k++ {
				now = now.Add(tt.gap)
				d.receive(context.Background(), update(1+k*ticks))
			}
			d.mu.Lock()
			n := d.due(now, tick) // the first frame: no time has passed, only catching up
			d.mu.Unlock()
			assert.Equal(t, tt.want, d.knownT-d.next-int64(n), "ticks in hand")
		})
	}
}
