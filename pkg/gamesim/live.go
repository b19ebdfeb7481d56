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
	replaced := d.tick // the last tick played with the state a reload replaces
	if snap := d.restore; snap != nil {
		d.restore = nil
		d.mu.Unlock()
		err := d.restoreFrom(snap.Data)
		d.mu.Lock()
		if err != nil { // start again from tick 0
			d.netErr = err
			d.client.Rewind(0)
			d.buf, d.reset, d.knownT, d.liveFrom = nil, true, 0, math.MaxInt64
		}
		d.reloaded(replaced)
	}
	if d.reset {
		d.reset = false
		d.next = 0
		d.reloaded(replaced)
	}
	// Events of ticks already played are in the state: those at or below
	// a snapshot's tick, which may come in any update after the one that
	// brought base (the snapshot fetched then can be newer than its t).
	drop := 0
	for drop < len(d.buf) && d.buf[drop].T < d.next {
		drop++
	}
	d.buf = d.buf[drop:]
	d.live, d.joined = d.liveFrom, d.joinedFrom
	d.ckpt = d.netCkpt
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
	d.tellCheckpoint()
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
	threshold := d.cfg.CatchUpThreshold
	if d.adaptive > 0 {
		threshold = d.adaptive
	}
	if behind := available - n; behind > threshold {
		n += behind - threshold // catch up to within the threshold
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
	d.uploads.Wait()
	return nil
}

// Err returns the error that stopped the network goroutine, if any: an
// *esclient.Error the server will answer to every retry (a bad stream name,
// or a stream with no room for another client, say). A stream that is full
// of events stops only the posting: the Driver plays on, and SendEvent
// returns the server's stream_full error.
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
		err := d.client.Run(ctx, func(u esclient.Update) { d.receive(ctx, u) })
		if err != nil && !errors.Is(err, context.Canceled) && ctx.Err() == nil {
			d.mu.Lock()
			d.netErr = err
			d.mu.Unlock()
		}
	}()
}

// receive takes an update from the network goroutine.
func (d *Driver) receive(ctx context.Context, u esclient.Update) {
	d.mu.Lock()
	resync := d.resync
	d.mu.Unlock()
	var snap *esclient.Snapshot
	if d.snapper != nil && (u.Base != nil || resync) {
		var err error
		snap, err = d.loadSnapshot(ctx)
		if err == nil && u.Base != nil && snap != nil && (snap.T < *u.Base || snap.Epoch != u.Epoch) {
			err = errors.New("gamesim: the snapshot is older than the reply's base, or of another epoch")
		}
		if err != nil {
			if u.Base != nil {
				d.client.Rewind(0) // it cannot be played without the snapshot: ask again
				return
			}
			resync = false // try again after the next sync
		}
	}

	d.mu.Lock()
	defer d.mu.Unlock()
	d.netCkpt = u.CheckpointEvery
	d.upload(ctx, u)
	if resync { // re-simulate from the snapshot, or from tick 0
		d.resync = false
		d.resyncs++
		d.buf, d.liveFrom = nil, math.MaxInt64
		if snap != nil {
			d.restore, d.knownT = snap, snap.T+1
			d.client.Rewind(snap.T + 1)
		} else {
			d.reset, d.knownT = true, 0
			d.client.Rewind(0)
		}
		return // this update's events come again
	}
	if u.Base != nil {
		if snap == nil {
			d.netErr = errors.New("gamesim: the stream was compacted: its Sim must implement Snapshotter to join it")
			return
		}
		d.buf, d.restore = nil, snap // Update drops the events it holds
	}
	if u.Reset {
		d.buf = nil // the old incarnation's events are moot
		d.reset = true
		d.liveFrom = math.MaxInt64
	}
	if !u.More && d.liveFrom == math.MaxInt64 {
		d.liveFrom = u.T // up to date: the ticks from here on are new
		if d.joinedEpoch != u.Epoch {
			d.joinedFrom, d.joinedEpoch = u.T, u.Epoch // a resync does not move it
		}
	}
	d.buf = append(d.buf, u.Events...)
	d.knownT = u.T
	if u.TickRate > 0 {
		d.tickRate = u.TickRate
	}
	d.measureJitter(u)
}

// measureJitter keeps the gaps between the updates that arrive, and sets
// the adaptive catch-up threshold from the largest: updates pushed every
// tick give 1, every 100 ms 2, polls every 200 ms 4. d.mu must be held.
func (d *Driver) measureJitter(u esclient.Update) {
	if d.cfg.fixedThreshold || d.client == nil || d.client.Transport() == esclient.Poll || u.More {
		return
	}
	now := d.now()
	if !d.arrived.IsZero() {
		tick := time.Second / time.Duration(d.tickRate)
		d.gaps[d.gapNext] = float64(now.Sub(d.arrived)) / float64(tick)
		d.gapNext = (d.gapNext + 1) % len(d.gaps)
		worst := 0.0
		for _, g := range d.gaps {
			worst = max(worst, g)
		}
		d.adaptive = min(max(int(math.Ceil(worst)), 1), DefaultCatchUpThreshold)
	}
	d.arrived = now
}
