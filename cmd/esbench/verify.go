package main

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/goeventstream/eventstream/internal/clock"
	"github.com/goeventstream/eventstream/internal/loadgen"
	"github.com/goeventstream/eventstream/pkg/esclient"
)

// verify checks a run's one promise: every client saw the same order and
// every accepted event exactly once. It drains every client's queue, reads
// each stream whole as the reference, then checks the reference for
// exactly-once delivery and every client against it.
func (b *bench) verify(ctx context.Context) loadgen.Verification {
	v := loadgen.Verification{Checked: true}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()

	b.drain(ctx)
	refs, refT, err := b.readStreams(ctx)
	if err != nil {
		v.Problem("reading the streams: %v", err)
		return v
	}
	b.catchUp(ctx, refT)
	for _, w := range b.workers {
		if w.failed != nil {
			v.Problem("client %d of stream %d stopped: %v", w.idx, w.stream, w.failed)
		}
	}
	for s, ref := range refs {
		v.Events += b.checkExactlyOnce(&v, s, ref)
	}
	for _, w := range b.workers {
		v.Clients++
		checkOrder(&v, w, refs[w.stream], refT[w.stream])
	}
	return v
}

// drain sends every queued event; a batch whose reply was lost is sent
// again under its id, so it cannot be appended twice.
func (b *bench) drain(ctx context.Context) {
	_ = b.eachWorker(func(w *worker) error {
		for w.c.Pending() > 0 && w.failed == nil && ctx.Err() == nil {
			w.sync(ctx, time.Now())
		}
		return nil
	})
}

// readStreams reads each stream from tick 0 as its first client, until t
// has moved past the tick in progress at the first read: the drained
// events may be in it, and a tick is sent only once it is over. It returns
// each stream's events below refT, the tick the reference reaches.
func (b *bench) readStreams(ctx context.Context) (refs [][]esclient.Event, refT []int64, err error) {
	refs = make([][]esclient.Event, b.cfg.Streams)
	refT = make([]int64, b.cfg.Streams)
	err = b.eachStream(func(s int) error {
		r, err := b.client(s, b.privateID(s*b.cfg.Clients), 0, false)
		if err != nil {
			return err
		}
		var first int64 = -1
		for {
			u, err := r.Sync(ctx)
			if err != nil {
				return err
			}
			refs[s] = append(refs[s], u.Events...)
			switch {
			case u.More:
			case first < 0:
				first = u.T
			case u.T > first:
				refT[s] = u.T
				return nil
			default:
				clock.Sleep(ctx, 10*time.Millisecond)
			}
		}
	})
	return refs, refT, err
}

// catchUp has every client sync until it has seen every tick below its
// stream's refT.
func (b *bench) catchUp(ctx context.Context, refT []int64) {
	_ = b.eachWorker(func(w *worker) error {
		for (w.lastT < refT[w.stream] || w.c.Pending() > 0) && w.failed == nil && ctx.Err() == nil {
			w.sync(ctx, time.Now())
		}
		return nil
	})
}

// checkExactlyOnce checks that the stream s holds every event its clients
// had accepted exactly once, and nothing they never sent. It returns the
// number of client events in the stream.
func (b *bench) checkExactlyOnce(v *loadgen.Verification, s int, ref []esclient.Event) int {
	sent := map[string]int{} // client tag → events sent, accepted or not
	for _, w := range b.workers {
		sent["c"+strconv.Itoa(w.idx)] = w.sent
	}
	count := map[string]int{}
	for _, e := range ref {
		if e.Type == "b" {
			count[loadgen.EventID(e.Body)]++
		}
	}
	v.CheckOnce(fmt.Sprintf("stream %d", s), count, sent)
	for _, w := range b.workers {
		if w.stream != s {
			continue
		}
		for k := range w.sent - w.c.Pending() { // every event whose batch was answered
			if count[fmt.Sprintf("c%d.%d", w.idx, k)] == 0 {
				v.Problem("stream %d: event c%d.%d was accepted and lost", s, w.idx, k)
			}
		}
	}
	return len(count)
}

// checkOrder checks that w saw the events of its stream's reference from
// the tick it joined to refT, in the same order.
func checkOrder(v *loadgen.Verification, w *worker, ref []esclient.Event, refT int64) {
	var want []seenEvent
	for _, e := range ref {
		if e.T >= w.firstT && e.T < refT {
			want = append(want, seenEvent{t: e.T, h: eventHash(e)})
		}
	}
	var got []seenEvent
	for _, e := range w.seen.all() {
		if e.t < refT {
			got = append(got, e)
		}
	}
	if w.failed == nil && !slices.Equal(got, want) {
		v.Problem("client %d of stream %d saw %d events where the stream has %d, or in another order", w.idx, w.stream, len(got), len(want))
	}
}
