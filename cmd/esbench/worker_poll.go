package main

import (
	"context"
	"errors"
	"time"

	"github.com/goeventstream/eventstream/internal/clock"
	"github.com/goeventstream/eventstream/pkg/esclient"
)

// poll syncs on schedule, every interval from due (closed loop for 0),
// until ctx ends or the client fails; each sync is a request within
// reqCtx, so that one in flight when ctx ends is answered. A sync is timed from when it was
// due if the previous one made it late (so a slow server cannot hide the
// queueing it causes), else from when it starts (so esbench's own timer
// slack is not counted).
func (w *worker) poll(ctx, reqCtx context.Context, due time.Time, interval time.Duration) {
	var (
		joined, recordJoin bool
		joinFrom           time.Time
	)
	for w.failed == nil {
		from := time.Now()
		if interval > 0 {
			if d := due.Sub(from); d > 0 {
				if !clock.Sleep(ctx, d) {
					return
				}
				from = time.Now()
			} else {
				from = due
			}
		}
		if ctx.Err() != nil {
			return
		}
		if w.rng.Float64() < w.b.cfg.EventShare {
			w.send()
		}
		if !joined && joinFrom.IsZero() {
			joinFrom, recordJoin = from, w.b.recording.Load()
		}
		for more := true; more && ctx.Err() == nil; from = time.Now() { // a next page is due at once
			more = w.sync(reqCtx, from)
		}
		// A client has joined when it holds every page of history, after
		// as many refused syncs as it took.
		if !joined && w.caughtUp {
			joined = true
			if recordJoin {
				w.hist.mu.Lock()
				_ = w.hist.join.RecordValue(max(time.Since(joinFrom).Microseconds(), 1))
				w.hist.mu.Unlock()
			}
		}
		due = due.Add(interval)
	}
}

// sync does one sync due at due, records it, and reports whether the
// server has more.
func (w *worker) sync(ctx context.Context, due time.Time) bool {
	u, err := w.c.Sync(ctx)
	if err != nil && ctx.Err() != nil {
		return false // stopped, not failed; the client keeps its batch
	}
	recording := w.b.recording.Load()
	w.b.syncs.Add(1)
	if err != nil {
		w.b.errCount.Add(1)
		if recording {
			w.errs[errorKind(err)]++
		}
		var se *esclient.Error
		if errors.As(err, &se) && !se.Retryable() {
			w.failed = err
		}
		return false
	}
	if recording {
		w.syncs++
		w.hist.mu.Lock()
		_ = w.hist.lat.RecordValue(max(time.Since(due).Microseconds(), 1))
		w.hist.mu.Unlock()
	}
	w.receive(u, recording)
	w.caughtUp = w.caughtUp || !u.More
	return u.More
}
