// Package clock gives eventstreamd an injectable source of time.
//
// Production code takes a Clock and uses Real(); tests use a Fake and move
// time with Advance, which fires due tickers synchronously, so no test of
// tick, presence or expiry logic ever sleeps.
//
// All implementations are safe for concurrent use.
package clock

import (
	"context"
	"time"
)

// Clock tells the time and makes tickers.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// NewTicker returns a ticker that delivers the time on its channel
	// every d. d must be positive.
	NewTicker(d time.Duration) Ticker
	// NewTimer returns a timer that delivers the time on its channel once,
	// d from now; a d of 0 or less fires at once.
	NewTimer(d time.Duration) Timer
}

// Timer delivers the time on a channel once, when its duration has
// passed, as time.Timer does.
type Timer interface {
	// C returns the channel on which the time is delivered.
	C() <-chan time.Time
	// Reset makes the timer fire d from now (at once for a d of 0 or
	// less), dropping a time it delivered that was not received.
	Reset(d time.Duration)
	// Stop turns the timer off, dropping a time not received.
	Stop()
}

// Ticker delivers ticks on a channel until it is stopped. Like time.Ticker,
// it drops ticks for a slow receiver rather than queueing them.
type Ticker interface {
	// C returns the channel on which ticks are delivered.
	C() <-chan time.Time
	// Stop turns the ticker off. It does not close the channel.
	Stop()
}

// Real returns the Clock of the operating system.
func Real() Clock { return realClock{} }

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) NewTicker(d time.Duration) Ticker { return realTicker{time.NewTicker(d)} }

func (realClock) NewTimer(d time.Duration) Timer { return realTimer{time.NewTimer(d)} }

type realTicker struct{ t *time.Ticker }

func (r realTicker) C() <-chan time.Time { return r.t.C }
func (r realTicker) Stop()               { r.t.Stop() }

// realTimer relies on Go 1.23's timers: Reset and Stop drop a time that
// was not received.
type realTimer struct{ t *time.Timer }

func (r realTimer) C() <-chan time.Time   { return r.t.C }
func (r realTimer) Reset(d time.Duration) { r.t.Reset(d) }
func (r realTimer) Stop()                 { r.t.Stop() }

// Sleep waits for d of real time, and reports false if ctx ended first.
// It is for clients and tools that pace themselves in real time; code
// that a test must drive takes a Clock instead.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
