package main

import (
	"context"
	"errors"
	"time"

	"github.com/goeventstream/eventstream/pkg/esclient"
)

// push runs the client on a push connection, queueing its events at its
// pace; every push received counts as a sync.
func (w *worker) push(ctx context.Context, interval time.Duration) {
	done := make(chan error, 1)
	go func() {
		done <- w.c.Run(ctx, func(u esclient.Update) {
			recording := w.b.recording.Load()
			w.observeGap(u, recording)
			w.b.syncs.Add(1)
			if recording {
				w.syncs++
			}
			w.receive(u, recording)
		})
	}()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
				w.failed = err
			}
			return
		case <-t.C:
			if w.rng.Float64() < w.b.cfg.EventShare {
				w.send()
			}
		}
	}
}

// observeGap keeps the largest step of t between two pushes, and the
// longest wait between them, once the client is up to date: with every
// tick that has events pushed, and quiet ticks at least every
// -ws-quiet-interval, a server that keeps up steps t by at most the quiet
// interval's ticks.
func (w *worker) observeGap(u esclient.Update, recording bool) {
	now := time.Now()
	if recording && w.live && !u.Reset {
		w.gapTicks = max(w.gapTicks, u.T-w.lastT)
		w.gapWait = max(w.gapWait, now.Sub(w.lastAt))
	}
	w.live, w.lastAt = !u.More, now
}
