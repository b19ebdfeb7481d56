package clock_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/goeventstream/eventstream/internal/clock"
)

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func TestFakeNowMovesOnlyOnAdvance(t *testing.T) {
	f := clock.NewFake(epoch)
	require.Equal(t, epoch, f.Now())
	f.Advance(1500 * time.Millisecond)
	assert.Equal(t, epoch.Add(1500*time.Millisecond), f.Now())
}

func TestFakeTickerFiresWhenPeriodPasses(t *testing.T) {
	f := clock.NewFake(epoch)
	tk := f.NewTicker(time.Second)
	defer tk.Stop()

	f.Advance(999 * time.Millisecond)
	assertNoTick(t, tk)

	f.Advance(time.Millisecond)
	assert.Equal(t, epoch.Add(time.Second), <-tk.C())

	// Passing several periods at once delivers one tick, as time.Ticker does.
	f.Advance(3 * time.Second)
	assert.Equal(t, epoch.Add(4*time.Second), <-tk.C())
	assertNoTick(t, tk)

	// The schedule stays on multiples of the period.
	f.Advance(999 * time.Millisecond)
	assertNoTick(t, tk)
	f.Advance(time.Millisecond)
	assert.Equal(t, epoch.Add(5*time.Second), <-tk.C())
}

func TestFakeStoppedTickerIsSilent(t *testing.T) {
	f := clock.NewFake(epoch)
	tk := f.NewTicker(time.Second)
	require.Equal(t, 1, f.Tickers())
	tk.Stop()
	require.Equal(t, 0, f.Tickers())
	f.Advance(2 * time.Second)
	assertNoTick(t, tk)
}

func TestRealClockTicks(t *testing.T) {
	c := clock.Real()
	before := time.Now()
	require.False(t, c.Now().Before(before))
	tk := c.NewTicker(time.Millisecond)
	defer tk.Stop()
	<-tk.C() // a real ticker must fire; the test's deadline bounds the wait
}

func assertNoTick(t *testing.T, tk clock.Ticker) {
	t.Helper()
	select {
	case got := <-tk.C():
		t.Fatalf("unexpected tick at %v", got)
	default:
	}
}

func TestFakeSetMovesBothWays(t *testing.T) {
	f := clock.NewFake(epoch)
	tk := f.NewTicker(time.Second)
	defer tk.Stop()

	f.Set(epoch.Add(-time.Hour))
	assert.Equal(t, epoch.Add(-time.Hour), f.Now())
	assertNoTick(t, tk)

	f.Set(epoch.Add(time.Second))
	assert.Equal(t, epoch.Add(time.Second), <-tk.C())
}

func TestFakeTimerFiresOnce(t *testing.T) {
	f := clock.NewFake(epoch)
	tm := f.NewTimer(time.Second)
	require.Equal(t, 1, f.Timers())
	f.Advance(999 * time.Millisecond)
	select {
	case got := <-tm.C():
		t.Fatalf("early at %v", got)
	default:
	}
	f.Advance(time.Millisecond)
	assert.Equal(t, epoch.Add(time.Second), <-tm.C())
	assert.Zero(t, f.Timers())
	f.Advance(time.Hour)
	select {
	case got := <-tm.C():
		t.Fatalf("fired twice, at %v", got)
	default:
	}

	tm.Reset(0) // at once
	assert.Equal(t, epoch.Add(time.Hour+time.Second), <-tm.C())
	tm.Reset(time.Second)
	f.Advance(time.Second)
	tm.Reset(time.Second) // the time not received is dropped
	select {
	case got := <-tm.C():
		t.Fatalf("a dropped time came, %v", got)
	default:
	}
	tm.Stop()
	f.Advance(time.Hour)
	assert.Zero(t, f.Timers())
	select {
	case got := <-tm.C():
		t.Fatalf("a stopped timer fired at %v", got)
	default:
	}
}

func TestRealClockTimer(t *testing.T) {
	tm := clock.Real().NewTimer(time.Millisecond)
	<-tm.C() // a real timer must fire; the test's deadline bounds the wait
	tm.Reset(0)
	<-tm.C()
	tm.Stop()
}
