// Package clock gives eventstreamd an injectable source of time.
//
// Production code takes a Clock and uses Real(); tests use a Fake and move
// time with Advance, which fires due tickers synchronously, so no test of
// tick, presence or expiry logic ever sleeps.
//
// All implementations are safe for concurrent use.
package clock

import "time"

// Clock tells the time and makes tickers.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// NewTicker returns a ticker that delivers the time on its channel
	// every d. d must be positive.
	NewTicker(d time.Duration) Ticker
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

type realTicker struct{ t *time.Ticker }

func (r realTicker) C() <-chan time.Time { return r.t.C }
func (r realTicker) Stop()               { r.t.Stop() }
