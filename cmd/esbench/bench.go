package main

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/goeventstream/eventstream/pkg/esclient"
)

// minBody is the smallest event body: it carries the event's id and the
// time it was sent.
const minBody = 48

// bench is one run.
type bench struct {
	cfg   config
	http  *http.Client
	bytes *countingTransport

	workers []*worker
	heads   []int64 // per stream: where clients start

	recording atomic.Bool
	syncs     atomic.Int64 // for the progress line
	errCount  atomic.Int64
	phase     atomic.Value // string
}

// worker is one client.
type worker struct {
	b      *bench
	stream int
	idx    int
	c      *esclient.Client
	rng    *rand.Rand

	sent   int   // events sent, all accepted once drained
	firstT int64 // the first tick this client asked for
	lastT  int64
	self   string           // public id
	seen   []seenEvent      // every event received, in order
	lat    *hdr   // sync latency, µs
	deliv  *hdr   // delivery latency, µs
	errs   map[string]int64 // by kind
	syncs  int64
}

type hdr = hdrhistogram.Histogram

type seenEvent struct {
	t int64
	h uint64
}

func newHistogram() *hdr { return hdrhistogram.New(1, 60_000_000, 3) }

func (b *bench) streamName(s int) string { return fmt.Sprintf("%s-%d", b.cfg.Prefix, s) }

func (b *bench) client(s int, id string, from int64) (*esclient.Client, error) {
	return esclient.New(esclient.Config{
		BaseURL: b.cfg.URL, Stream: b.streamName(s), PrivateID: id,
		HTTPClient: b.http, FromTick: from, MaxBackoff: time.Second,
	})
}

// setup preloads history and decides where clients start.
func (b *bench) setup(ctx context.Context) error {
	b.phase.Store("setup")
	b.heads = make([]int64, b.cfg.Streams)
	if b.cfg.Mode != "sync" {
		return nil
	}
	err := b.eachStream(func(s int) error {
		w, err := b.client(s, b.cfg.Prefix+"-writer", 0)
		if err != nil {
			return err
		}
		body := strings.Repeat("p", b.cfg.BodySize)
		for n := 0; n < b.cfg.Preload; {
			for k := 0; k < esclient.MaxEventsPerSync && n < b.cfg.Preload; k++ {
				if err := w.Send("p", body); err != nil {
					return err
				}
				n++
			}
			if _, err := w.Sync(ctx); err != nil {
				return fmt.Errorf("preloading: %w", err)
			}
		}
		u, err := w.Sync(ctx)
		if err != nil {
			return err
		}
		if b.cfg.From == "head" {
			b.heads[s] = u.T
		}
		return nil
	})
	if err != nil {
		return err
	}
	for s := range b.cfg.Streams {
		for c := range b.cfg.Clients {
			idx := s*b.cfg.Clients + c
			cl, err := b.client(s, fmt.Sprintf("%s-c%d", b.cfg.Prefix, idx), b.heads[s])
			if err != nil {
				return err
			}
			b.workers = append(b.workers, &worker{
				b: b, stream: s, idx: idx, c: cl, firstT: b.heads[s], lastT: b.heads[s],
				rng: rand.New(rand.NewPCG(uint64(idx), uint64(time.Now().UnixNano()))),
				lat: newHistogram(), deliv: newHistogram(), errs: map[string]int64{},
			})
		}
	}
	return nil
}

// eachStream runs fn for every stream, a few at a time.
func (b *bench) eachStream(fn func(s int) error) error {
	sem := make(chan struct{}, 16)
	errs := make(chan error, b.cfg.Streams)
	var wg sync.WaitGroup
	for s := range b.cfg.Streams {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			errs <- fn(s)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// load runs the warmup and the measurement, then drains and verifies.
func (b *bench) load(ctx context.Context, _ *progress) (*report, error) {
	if b.cfg.Mode == "healthz" {
		return b.loadHealthz(ctx)
	}
	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	var wg sync.WaitGroup
	start := time.Now()
	for _, w := range b.workers {
		wg.Add(1)
		go func() { defer wg.Done(); w.loop(loadCtx, start) }()
	}
	b.phase.Store("warmup")
	if !sleep(ctx, b.cfg.Warmup) {
		return nil, ctx.Err()
	}
	b.phase.Store("measure")
	bytes0 := b.bytes.bytes.Load()
	b.recording.Store(true)
	measureStart := time.Now()
	sleep(ctx, b.cfg.Duration)
	b.recording.Store(false)
	elapsed := time.Since(measureStart)
	bytes := b.bytes.bytes.Load() - bytes0
	stopLoad()
	wg.Wait()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}

	b.phase.Store("verify")
	rep := b.report(elapsed, bytes)
	rep.Verify = b.verify(ctx)
	return rep, nil
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// loop syncs on schedule until ctx ends.
func (w *worker) loop(ctx context.Context, start time.Time) {
	var interval time.Duration
	next := start
	if w.b.cfg.Rate > 0 {
		interval = time.Duration(float64(time.Second) / w.b.cfg.Rate)
		next = start.Add(time.Duration(w.rng.Int64N(int64(interval)))) // spread the clients
	}
	for {
		if interval > 0 {
			if d := time.Until(next); d > 0 && !sleep(ctx, d) {
				return
			}
		} else {
			next = time.Now()
		}
		if ctx.Err() != nil {
			return
		}
		if w.rng.Float64() < w.b.cfg.EventShare {
			w.send()
		}
		for more := true; more && ctx.Err() == nil; {
			more = w.sync(ctx, next)
			next = time.Now() // a follow-up page is due at once
		}
		if interval > 0 {
			next = next.Add(interval)
		}
	}
}

// send queues one event whose body carries its id and the time it was sent.
func (w *worker) send() {
	body := fmt.Sprintf("c%d.%d.%d.", w.idx, w.sent, time.Now().UnixNano())
	body += strings.Repeat(".", max(w.b.cfg.BodySize-len(body), 0))
	if err := w.c.Send("b", body); err == nil {
		w.sent++
	}
}

// sync does one sync due at due, records it, and reports whether the
// server has more.
func (w *worker) sync(ctx context.Context, due time.Time) bool {
	u, err := w.c.Sync(ctx)
	if ctx.Err() != nil {
		return false
	}
	recording := w.b.recording.Load()
	w.b.syncs.Add(1)
	if err != nil {
		w.b.errCount.Add(1)
		if recording {
			w.errs[errorKind(err)]++
		}
		return false
	}
	if recording {
		w.syncs++
		_ = w.lat.RecordValue(max(time.Since(due).Microseconds(), 1))
	}
	w.receive(u, recording)
	return u.More
}

func (w *worker) receive(u esclient.Update, recording bool) {
	if u.Reset && w.firstT != 0 {
		w.seen = w.seen[:0] // the stream was created anew
		w.firstT = 0
	}
	now := time.Now()
	for _, e := range u.Events {
		w.seen = append(w.seen, seenEvent{t: e.T, h: eventHash(e)})
		if recording && e.Type == "b" && e.Origin != u.PublicID {
			if sent, ok := sentAt(e.Body); ok {
				_ = w.deliv.RecordValue(max(now.Sub(sent).Microseconds(), 1))
			}
		}
	}
	w.lastT, w.self = u.T, u.PublicID
}

func sentAt(body string) (time.Time, bool) {
	parts := strings.SplitN(body, ".", 4)
	if len(parts) < 3 {
		return time.Time{}, false
	}
	ns, err := strconv.ParseInt(parts[2], 10, 64)
	return time.Unix(0, ns), err == nil
}

func eventHash(e esclient.Event) uint64 {
	h := fnv.New64a()
	fmt.Fprintf(h, "%d\x00%s\x00%s\x00", e.T, e.Type, e.Origin)
	_, _ = io.WriteString(h, e.Body)
	return h.Sum64()
}

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

// loadHealthz measures GET /healthz under the same concurrency, the
// baseline of what the HTTP stack alone can do.
func (b *bench) loadHealthz(ctx context.Context) (*report, error) {
	n := b.cfg.Streams * b.cfg.Clients
	hists := make([]*hdr, n)
	counts := make([]int64, n)
	errs := make([]int64, n)
	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	var wg sync.WaitGroup
	url := strings.TrimSuffix(b.cfg.URL, "/") + "/healthz"
	for i := range n {
		hists[i] = newHistogram()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for loadCtx.Err() == nil {
				t0 := time.Now()
				req, _ := http.NewRequestWithContext(loadCtx, http.MethodGet, url, nil)
				resp, err := b.http.Do(req)
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				if loadCtx.Err() != nil || !b.recording.Load() {
					continue
				}
				b.syncs.Add(1)
				if err != nil || resp.StatusCode != http.StatusOK {
					errs[i]++
					continue
				}
				counts[i]++
				_ = hists[i].RecordValue(max(time.Since(t0).Microseconds(), 1))
			}
		}()
	}
	b.phase.Store("warmup")
	sleep(ctx, b.cfg.Warmup)
	b.phase.Store("measure")
	b.recording.Store(true)
	start := time.Now()
	sleep(ctx, b.cfg.Duration)
	b.recording.Store(false)
	elapsed := time.Since(start)
	stopLoad()
	wg.Wait()
	rep := &report{Mode: b.cfg.Mode, URL: b.cfg.URL, Streams: b.cfg.Streams, Clients: b.cfg.Clients,
		Duration: elapsed.Seconds(), Errors: map[string]int64{}}
	all := newHistogram()
	for i := range n {
		all.Merge(hists[i])
		rep.Syncs += counts[i]
		if errs[i] > 0 {
			rep.Errors["failed"] += errs[i]
		}
	}
	rep.SyncsPerSec = float64(rep.Syncs) / elapsed.Seconds()
	rep.Latency = latencies(all)
	return rep, nil
}
