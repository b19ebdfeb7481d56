package gamesim

import (
	"context"
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
