package stream

import (
	"context"
	"time"

	"github.com/goeventstream/eventstream/internal/clock"
)

// DefaultSweepInterval is how often a Sweeper sweeps unless told otherwise;
// it bounds how late a disconnect or an expiry can be.
const DefaultSweepInterval = 250 * time.Millisecond

// Sweeper calls a Store's Sweep periodically and hands each non-empty
// result, or error, to its callbacks. It is owned by whoever calls Run.
type Sweeper struct {
	// Store is swept.
	Store Store
	// Clock drives the interval. Nil means clock.Real().
	Clock clock.Clock
	// Interval between sweeps; zero means DefaultSweepInterval.
	Interval time.Duration
	// OnSweep, if set, is called with every result that did something.
	OnSweep func(SweepResult)
	// OnError, if set, is called with every error Sweep returns.
	OnError func(error)
	// OnRecover, if set, is called at the first sweep that succeeds after
	// one or more failed.
	OnRecover func()
}

// Run sweeps until ctx is done, then returns. It is not safe to call Run
// twice at once on one Sweeper.
func (s *Sweeper) Run(ctx context.Context) {
	clk := s.Clock
	if clk == nil {
		clk = clock.Real()
	}
	interval := s.Interval
	if interval <= 0 {
		interval = DefaultSweepInterval
	}
	t := clk.NewTicker(interval)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C():
		}
		res, err := s.Store.Sweep(ctx)
		switch {
		case err != nil:
			if s.OnError != nil && ctx.Err() == nil {
				s.OnError(err)
			}
			failing = true
			continue
		case failing && s.OnRecover != nil:
			s.OnRecover()
		}
		failing = false
		if len(res.Disconnected) > 0 || len(res.Expired) > 0 || len(res.Failed) > 0 {
			if s.OnSweep != nil {
				s.OnSweep(res)
			}
		}
	}
}
