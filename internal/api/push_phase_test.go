package api

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// phaseRun drives a tickPhase against a store whose ticks begin at
// offset(t) + k×tick, reading whenever it says, each read taking readTime.
// It returns, per tick begun in [from, to), how long after its beginning
// the first read that saw it ended, and how many reads were made then.
func phaseRun(tick time.Duration, offset func(time.Duration) time.Duration, readTime, from, to time.Duration) (delays []time.Duration, reads int) {
	base := time.Unix(1_000_000, 0)
	tickAt := func(at time.Duration) int64 { return int64((at - offset(at)) / tick) }
	p := newTickPhase(tick, base)
	prev, now := base, time.Duration(0)
	last := tickAt(0)
	for now < to {
		start := max(p.next().Sub(base), now)
		end := start + readTime
		t := tickAt(start + readTime/2) // the store looks in the middle
		p.observe(prev, base.Add(start), base.Add(end), t > last)
		if start >= from {
			reads++
			if t > last { // the tick t began at offset + t×tick
				delays = append(delays, end-(offset(start)+time.Duration(t)*tick))
			}
		}
		prev, now, last = base.Add(start), end, t
	}
	return delays, reads
}

func TestTickPhaseReadsRightAfterEachTick(t *testing.T) {
	const tick = 50 * time.Millisecond
	for _, readTime := range []time.Duration{0, 300 * time.Microsecond} {
		steady := func(time.Duration) time.Duration { return 17300 * time.Microsecond }
		delays, reads := phaseRun(tick, steady, readTime, time.Second, 11*time.Second)
		assert.InDelta(t, 200, len(delays), 1, "every tick seen once")
		assert.LessOrEqual(t, reads, 210, "about one read a tick")
		for _, d := range delays {
			assert.LessOrEqual(t, d, 2*time.Millisecond+readTime, "read right after the tick began")
		}
	}
}

// TestTickPhaseRecovers: after the store's ticks move (its clock jumped),
// the reads find them again within a few ticks, and are never later than
// half a tick meanwhile.
func TestTickPhaseRecovers(t *testing.T) {
	const tick = 50 * time.Millisecond
	jump := func(at time.Duration) time.Duration {
		if at < 5*time.Second {
			return 10 * time.Millisecond
		}
		return 41 * time.Millisecond
	}
	delays, reads := phaseRun(tick, jump, 0, 5*time.Second, 7*time.Second)
	assert.GreaterOrEqual(t, len(delays), 39)
	assert.LessOrEqual(t, reads, 100, "at most twice a tick while it learns")
	for i, d := range delays {
		assert.LessOrEqual(t, d, tick/2+time.Millisecond, "tick %d", i)
		if i >= 10 {
			assert.LessOrEqual(t, d, 2*time.Millisecond, "found again, tick %d", i)
		}
	}
}

// TestTickPhaseStoppedClock: when the store's ticks stop (a test's fake
// clock), the loop reads about twice a tick, not more.
func TestTickPhaseStoppedClock(t *testing.T) {
	const tick = 50 * time.Millisecond
	stopped := func(at time.Duration) time.Duration {
		if at < time.Second {
			return 0
		}
		return at - time.Second // the clock stands still at 1 s
	}
	delays, reads := phaseRun(tick, stopped, 0, 2*time.Second, 12*time.Second)
	assert.Empty(t, delays)
	assert.LessOrEqual(t, reads, 2*200+10)
	assert.GreaterOrEqual(t, reads, 200, "it keeps looking")
}

// TestTickPhaseLearned: a phase is learned once its window is narrower
// than tickPrecision, not before: until then a push loop reads every
// tick, to learn it, instead of letting quiet ticks pass unread.
func TestTickPhaseLearned(t *testing.T) {
	start := time.Unix(0, 0)
	tick := 50 * time.Millisecond
	p := newTickPhase(tick, start)
	require.False(t, p.learned(), "a new phase")
	boundary := start.Add(37 * time.Millisecond) // where ticks begin, unknown to p
	prev := start
	for range 20 {
		at := p.next()
		advanced := !at.Before(boundary)
		p.observe(prev, at, at, advanced)
		prev = at
		if advanced {
			boundary = boundary.Add(tick)
		}
	}
	require.True(t, p.learned(), "after twenty reads")
	require.InDelta(t, 0, p.next().Sub(boundary).Seconds(), tickPrecision.Seconds(), "it reads right after a tick begins")
}
