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
	timers  []*fakeTimer // armed
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
	armed := f.timers[:0]
	for _, t := range f.timers {
		if t.at.After(f.now) {
			armed = append(armed, t)
			continue
		}
		t.fire(f.now)
	}
	clear(f.timers[len(armed):])
	f.timers = armed
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

// NewTimer returns a timer that fires once the fake time reaches d from
// now; a d of 0 or less fires at once.
func (f *Fake) NewTimer(d time.Duration) Timer {
	t := &fakeTimer{clock: f, c: make(chan time.Time, 1)}
	t.Reset(d)
	return t
}

// Timers returns how many timers are waiting to fire. Tests use it to
// wait until the code under test has set its timer before advancing time.
func (f *Fake) Timers() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.timers)
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

type fakeTimer struct {
	clock *Fake
	at    time.Time // guarded by clock.mu, while armed
	c     chan time.Time
}

func (t *fakeTimer) C() <-chan time.Time { return t.c }

func (t *fakeTimer) Reset(d time.Duration) {
	f := t.clock
	f.mu.Lock()
	defer f.mu.Unlock()
	t.disarm()
	if d <= 0 {
		t.fire(f.now)
		return
	}
	t.at = f.now.Add(d)
	f.timers = append(f.timers, t)
}

func (t *fakeTimer) Stop() {
	t.clock.mu.Lock()
	defer t.clock.mu.Unlock()
	t.disarm()
}

// disarm takes t off its clock and drops a time not received; the
// clock's lock is held.
func (t *fakeTimer) disarm() {
	f := t.clock
	for i, x := range f.timers {
		if x == t {
			f.timers = append(f.timers[:i], f.timers[i+1:]...)
			break
		}
	}
	select {
	case <-t.c:
	default:
	}
}

// fire delivers now, unless a time not received is waiting.
func (t *fakeTimer) fire(now time.Time) {
	select {
	case t.c <- now:
	default:
	}
}
