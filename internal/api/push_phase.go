package api

import "time"

// tickPhase learns where a stream's ticks begin, from the reads of its
// push loop alone, so that the loop reads each tick right after it is
// sealed, once, instead of polling: a read that sees the tick in progress
// advance says a tick began since the read before it; one that does not
// says none has yet. It keeps the window (lo, hi] that the next tick
// begins in, halves it with each read, and once it is narrower than
// tickPrecision reads just after its end. A read that contradicts it (the
// store's clock jumped, or is a test's fake clock) widens it again, up to
// a whole tick, which is reading twice a tick: the loop is never slower
// than that.
type tickPhase struct {
	tick   time.Duration
	lo, hi time.Time // the next tick begins after lo, at or before hi
	miss   time.Duration
}

// tickPrecision is how close after a tick's start the loop aims to read.
const tickPrecision = time.Millisecond

func newTickPhase(tick time.Duration, now time.Time) *tickPhase {
	return &tickPhase{tick: tick, lo: now, hi: now.Add(tick)}
}

// next returns when to read next.
func (p *tickPhase) next() time.Time {
	if p.learned() {
		return p.hi.Add(tickPrecision / 2)
	}
	return p.lo.Add(p.hi.Sub(p.lo) / 2)
}

// learned reports whether the window is narrow enough to read right after
// a tick begins: until it is, the loop reads to learn it (a loop that let
// ticks pass unread before read at the middle of the window, half a tick
// late).
func (p *tickPhase) learned() bool { return p.hi.Sub(p.lo) <= tickPrecision }

// skip moves the window on a tick without a read: the loop let a tick
// pass unread (nothing changed in the stream).
func (p *tickPhase) skip() {
	p.lo, p.hi = p.lo.Add(p.tick), p.hi.Add(p.tick)
}

// observe takes a read that began at start and ended at end, after one
// that began at prev, and saw the tick in progress advance, or not. The
// store looked at its clock somewhere between start and end.
func (p *tickPhase) observe(prev, start, end time.Time, advanced bool) {
	if advanced {
		// The newest tick began after the read before looked, at most a
		// tick before this one did, and in the window if it was right.
		lo, hi := later(prev, end.Add(-p.tick)), end
		if l, h := later(lo, p.lo), earlier(hi, p.hi); l.Before(h) {
			lo, hi = l, h
		}
		p.lo, p.hi = lo.Add(p.tick), hi.Add(p.tick)
		p.miss = 0
		return
	}
	switch {
	case p.miss >= p.tick: // lost: twice a tick until a tick is seen
		p.lo, p.hi = start, start.Add(p.tick)
	case start.Before(p.hi):
		p.lo = later(p.lo, start) // it begins after start
	default:
		// Past the window, and no tick yet: it was wrong. Look again a
		// little later, then further each time, up to a tick.
		p.miss = min(max(2*p.miss, 2*tickPrecision), p.tick)
		p.lo, p.hi = start, start.Add(p.miss)
	}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
