package gamesim

import (
	"context"
	"errors"
	"math"
	"time"

	"github.com/goeventstream/eventstream/pkg/esclient"
)

// Update processes the ticks due at now and returns how many it processed.
// Call it once per frame of a game loop, always from the same goroutine;
// every callback runs inside it. The first call starts the network
// goroutine; Close stops it.
func (d *Driver) Update(now time.Time) int {
	d.start(context.Background())

	d.mu.Lock()
	if d.reset {
		d.reset = false
		d.next = 0
	}
	d.live = d.liveFrom
	tickDur := time.Second / time.Duration(d.tickRate)
	n := d.due(now, tickDur)
	end := d.next + int64(n)
	k := 0
	for k < len(d.buf) && d.buf[k].T < end {
		k++
	}
	events := d.buf[:k:k]
	d.buf = d.buf[k:]
	d.mu.Unlock()

	d.processUntil(end, events)
	return n
}

// due returns how many ticks to process at now, and moves the pacing
// clock on. d.mu must be held.
func (d *Driver) due(now time.Time, tickDur time.Duration) int {
	if d.last.IsZero() {
		d.last = now
	}
	if elapsed := now.Sub(d.last); elapsed > 0 {
		d.acc += elapsed
	}
	d.last = now

	available := int(max(d.knownT-d.next, 0)) // ticks below the last t received
	byClock := int(d.acc / tickDur)
	n := min(byClock, available)
	if behind := available - n; behind > d.cfg.CatchUpThreshold {
		n += behind - d.cfg.CatchUpThreshold // catch up to within the threshold
	}
	n = min(n, d.cfg.MaxTicksPerUpdate)

	d.acc -= time.Duration(min(n, byClock)) * tickDur
	if n == available {
		// Caught up with the server: bank no time while waiting for it,
		// or the ticks it sends next would be played in a burst.
		d.acc = min(d.acc, tickDur)
	}
	return n
}

// Run drives the simulation in real time until ctx ends, for programs with
// no game loop of their own. It returns ctx's error, or the error that
// stopped the network (an *esclient.Error the server will keep answering).
func (d *Driver) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	d.start(ctx)
	defer d.Close()
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			if err := d.Err(); err != nil {
				return err
			}
			return ctx.Err()
		case <-d.done:
			if err := d.Err(); err != nil {
				return err
			}
			return ctx.Err()
		case now := <-t.C:
			d.Update(now)
		}
	}
}

// Close stops the network goroutine and waits for it. The simulation's
// state stays readable.
func (d *Driver) Close() error {
	d.mu.Lock()
	cancel, done := d.cancel, d.done
	d.mu.Unlock()
	if cancel == nil {
		return nil
	}
	cancel()
	<-done
	return nil
}

// Err returns the error that stopped the network goroutine, if any: an
// *esclient.Error the server will answer to every retry (a bad stream name
// or a full stream, say).
func (d *Driver) Err() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.netErr
}

// start starts the network goroutine once.
func (d *Driver) start(ctx context.Context) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cancel != nil || d.client == nil {
		return
	}
	ctx, d.cancel = context.WithCancel(ctx)
	d.done = make(chan struct{})
	go func() {
		defer close(d.done)
		err := d.client.Run(ctx, d.receive)
		if err != nil && !errors.Is(err, context.Canceled) && ctx.Err() == nil {
			d.mu.Lock()
			d.netErr = err
			d.mu.Unlock()
		}
	}()
}

// receive takes an update from the network goroutine.
func (d *Driver) receive(u esclient.Update) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if u.Reset {
		d.buf = nil // the old incarnation's events are moot
		d.reset = true
		d.liveFrom = math.MaxInt64
	}
	if !u.More && d.liveFrom == math.MaxInt64 {
		d.liveFrom = u.T // up to date: the ticks from here on are new
	}
	d.buf = append(d.buf, u.Events...)
	d.knownT = u.T
	if u.TickRate > 0 {
		d.tickRate = u.TickRate
	}
}
