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
