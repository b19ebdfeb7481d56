package main

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/goeventstream/eventstream/internal/clock"
	"github.com/goeventstream/eventstream/internal/loadgen"
	"github.com/goeventstream/eventstream/pkg/esclient"
)

// worker is one client.
type worker struct {
	b      *bench
	stream int
	idx    int
	c      *esclient.Client
	rng    *rand.Rand

	sent   int   // events queued
	failed error // the error that stopped this client for good
	firstT int64 // the first tick this client asked for
	lastT  int64
	// caughtUp is set by the first reply that was not a page with more.
	caughtUp bool
	ckpt     int64            // the last checkpoint reported
	self     string           // public id
	seen     chunks           // every event received, in order
	hist     *histograms      // shared by a few workers
	errs     map[string]int64 // by kind
	syncs    int64
	// A pusher's largest step of t between two pushes once up to date
	// (live), and longest wait between them (observeGap).
	live     bool
	lastAt   time.Time
	gapTicks int64
	gapWait  time.Duration
}

// run runs the client: it joins when its turn comes, then polls or pushes,
// at -rate. A poller starts no sync once syncCtx ends, and its syncs are
// requests within loadCtx; a pusher's connection lasts until loadCtx ends.
func (w *worker) run(syncCtx, loadCtx context.Context, start time.Time) {
	ctx := syncCtx
	due, ok := w.joinAt(ctx, start)
	if !ok {
		return
	}
	var interval time.Duration
	if w.b.cfg.Rate > 0 {
		interval = time.Duration(float64(time.Second) / w.b.cfg.Rate)
	}
	if !clock.Sleep(ctx, time.Until(due)) {
		return
	}
	if w.b.cfg.Transport == transportPush {
		w.push(loadCtx, interval)
		return
	}
	w.poll(syncCtx, loadCtx, due, interval)
}

// joinAt returns when the client joins, the load having started at
// start: at a random moment of the first half of the warmup, or all at
// once as the measurement starts (-join burst: then a thousand joiners
// are each sent up to a thousand connect events, and that is what is
// measured). It reports false if ctx ended first.
func (w *worker) joinAt(ctx context.Context, start time.Time) (time.Time, bool) {
	switch ramp := w.b.cfg.Warmup / 2; {
	case w.b.cfg.Join == "burst":
		select {
		case <-ctx.Done():
			return time.Time{}, false
		case <-w.b.measuring:
		}
		return time.Now(), true
	case ramp > 0:
		return start.Add(time.Duration(w.rng.Int64N(int64(ramp)))), true
	}
	return start, true
}

// send queues one event whose body carries its id and the time it was sent.
func (w *worker) send() {
	if err := w.c.Send("b", loadgen.Body(w.idx, w.sent, w.b.cfg.BodySize)); err == nil {
		w.sent++
	}
}

func (w *worker) receive(u esclient.Update, recording bool) {
	if u.Reset && w.firstT != 0 {
		w.seen = chunks{} // the stream was created anew
		w.firstT = 0
	}
	now := time.Now().UnixNano()
	var delays []int64
	for _, e := range u.Events {
		w.seen.add(seenEvent{t: e.T, h: eventHash(e)})
		if recording && e.Type == "b" && e.Origin != u.PublicID {
			if sent, ok := loadgen.SentAt(e.Body); ok {
				delays = append(delays, max((now-sent)/1000, 1))
			}
		}
	}
	if len(delays) > 0 {
		w.hist.mu.Lock()
		for _, d := range delays {
			_ = w.hist.deliv.RecordValue(d)
		}
		w.hist.mu.Unlock()
	}
	w.lastT, w.self = u.T, u.PublicID
	if n := u.CheckpointEvery; w.b.cfg.Hashes && n > 0 {
		if ck := (u.T - 1) / n * n; ck > w.ckpt {
			w.ckpt = ck
			w.c.ReportHash(ck, benchHash) // every client "simulates" the same state
		}
	}
}

// benchHash is the state hash every client reports with -hashes.
var benchHash = strings.Repeat("5e", 32)

func errorKind(err error) string {
	var se *esclient.Error
	var ne net.Error
	switch {
	case errors.As(err, &se) && se.Code != "":
		return se.Code
	case errors.As(err, &se):
		return "http_" + strconv.Itoa(se.Status)
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	default:
		return "network"
	}
}
