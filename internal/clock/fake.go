package clock

import (
	"sync"
	"time"
)

// Fake is a Clock for tests. Its time moves only when Advance or Set is
// called, and tickers fire as time passes their period.
type Fake struct {
	mu      sync.Mutex
	now     time.Time
	tickers []*fakeTicker
}

var _ Clock = (*Fake)(nil)

// NewFake returns a Fake clock that reads start.
func NewFake(start time.Time) *Fake { return &Fake{now: start} }

// Now returns the fake time.
func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// NewTicker returns a ticker that fires each time the fake time passes a
// multiple of d after now. It panics if d is not positive, as time.NewTicker does.
func (f *Fake) NewTicker(d time.Duration) Ticker {
	if d <= 0 {
		panic("clock: non-positive interval for NewTicker")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	t := &fakeTicker{clock: f, period: d, next: f.now.Add(d), c: make(chan time.Time, 1)}
	f.tickers = append(f.tickers, t)
	return t
}

// Advance moves the fake time forward by d and fires every ticker whose
// period has passed. A ticker whose receiver has not taken the previous tick
// drops the new one, as a time.Ticker does.
func (f *Fake) Advance(d time.Duration) {
	if d < 0 {
		panic("clock: Advance with a negative duration")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
	for _, t := range f.tickers {
		if t.next.After(f.now) {
			continue
		}
		select {
		case t.c <- f.now:
		default:
		}
		for !t.next.After(f.now) {
			t.next = t.next.Add(t.period)
		}
	}
}

// Set moves the fake time to t, which may be in the past: tests use it to
// play a wall clock that steps back. Tickers fire only when time moves
// forward past their next tick.
func (f *Fake) Set(t time.Time) {
	f.mu.Lock()
	d := t.Sub(f.now)
	if d < 0 {
		f.now = t
		f.mu.Unlock()
		return
	}
	f.mu.Unlock()
	f.Advance(d)
}

// Tickers returns how many tickers are running. Tests use it to wait until
// the code under test has started its ticker before advancing time.
func (f *Fake) Tickers() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.tickers)
}

func (f *Fake) remove(t *fakeTicker) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, x := range f.tickers {
		if x == t {
			f.tickers = append(f.tickers[:i], f.tickers[i+1:]...)
			return
		}
	}
}

type fakeTicker struct {
	clock  *Fake
	period time.Duration
	next   time.Time // guarded by clock.mu
	c      chan time.Time
}

func (t *fakeTicker) C() <-chan time.Time { return t.c }
func (t *fakeTicker) Stop()               { t.clock.remove(t) }
