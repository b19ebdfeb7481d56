package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/goeventstream/eventstream/internal/clock"
	"github.com/goeventstream/eventstream/internal/loadgen"
	"github.com/goeventstream/eventstream/pkg/esclient"
)

// A run (bench) sets its clients up, runs them through the warmup and the
// measurement, and verifies what they saw: here. What one client does is
// in worker*.go, the healthz mode in healthz.go, what is read from the
// server's /metrics in scrape.go, the report in report.go and the checks
// in verify.go.

// minBody is the smallest event body: it carries the event's id and the
// time it was sent.
const minBody = 48

// bench is one run.
type bench struct {
	cfg   config
	addr  string       // host:port of the server
	bytes atomic.Int64 // reply bytes read

	tmu        sync.Mutex
	transports []*directTransport

	workers []*worker
	heads   []int64 // per stream: where clients start
	hists   []*histograms

	recording atomic.Bool
	measuring chan struct{} // closed when recording starts
	syncs     atomic.Int64  // for the progress line
	errCount  atomic.Int64
	phase     atomic.Value // string
}

// histograms record latencies for a shard of the workers: one set per
// worker would cost more to allocate and merge than the load itself.
type histograms struct {
	mu    sync.Mutex
	lat   *hdr // sync latency, µs
	deliv *hdr // delivery latency, µs
	join  *hdr // from a client's first sync to its last page of history, µs
}

const shards = 16

type hdr = hdrhistogram.Histogram

func newHistogram() *hdr { return hdrhistogram.New(1, 60_000_000, 3) }

func (b *bench) streamName(s int) string { return fmt.Sprintf("%s-%d", b.cfg.Prefix, s) }

// privateID returns the private id of client idx. The preloading writer
// and the verifying reader of a stream speak as its first client, so that
// esbench adds no client beyond -clients to a stream.
func (b *bench) privateID(idx int) string { return fmt.Sprintf("%s-c%d", b.cfg.Prefix, idx) }

// client returns a client of stream s with a connection of its own; with
// push, a push connection.
func (b *bench) client(s int, id string, from int64, push bool) (*esclient.Client, error) {
	t := &directTransport{addr: b.addr, timeout: b.cfg.Timeout, bytes: &b.bytes}
	b.tmu.Lock()
	b.transports = append(b.transports, t)
	b.tmu.Unlock()
	cfg := esclient.Config{
		BaseURL: b.cfg.Mode.baseURL(b.cfg.URL), Stream: b.streamName(s), PrivateID: id,
		// No http.Client.Timeout: it costs a timer per request; the
		// transport sets the connection's deadline instead.
		HTTPClient: &http.Client{Transport: t}, FromTick: from, MaxBackoff: time.Second,
		Transport: esclient.Poll,
	}
	if push {
		cfg.Transport = esclient.Push
		cfg.HTTPClient = &http.Client{} // a WebSocket: net/http's own transport
	}
	return esclient.New(cfg)
}

func (b *bench) closeTransports() {
	b.tmu.Lock()
	defer b.tmu.Unlock()
	for _, t := range b.transports {
		t.close()
	}
}

// setup preloads history and decides where clients start.
func (b *bench) setup(ctx context.Context) error {
	b.phase.Store("setup")
	b.measuring = make(chan struct{})
	b.heads = make([]int64, b.cfg.Streams)
	for range shards {
		b.hists = append(b.hists, &histograms{lat: newHistogram(), deliv: newHistogram(), join: newHistogram()})
	}
	if b.cfg.Mode == modeHealthz {
		return nil
	}
	err := b.eachStream(func(s int) error {
		if !b.cfg.Mode.hasStreams() {
			return nil // nothing to preload
		}
		w, err := b.client(s, b.privateID(s*b.cfg.Clients), 0, false)
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
			for {
				_, err := w.Sync(ctx)
				var se *esclient.Error
				if errors.As(err, &se) && se.Status == http.StatusTooManyRequests {
					clock.Sleep(ctx, se.RetryAfter) // the server's fair use: -max-events-per-client-per-second
					continue
				}
				if err != nil {
					return fmt.Errorf("preloading: %w", err)
				}
				break
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
			cl, err := b.client(s, b.privateID(idx), b.heads[s], b.cfg.Transport == transportPush)
			if err != nil {
				return err
			}
			b.workers = append(b.workers, &worker{
				b: b, stream: s, idx: idx, c: cl, firstT: b.heads[s], lastT: b.heads[s],
				rng:  rand.New(rand.NewPCG(uint64(idx), uint64(time.Now().UnixNano()))),
				hist: b.hists[idx%shards], errs: map[string]int64{},
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
func (b *bench) load(ctx context.Context) (*report, error) {
	if b.cfg.Mode == modeHealthz {
		return b.loadHealthz(ctx)
	}
	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	syncCtx, stopSyncs := context.WithCancel(loadCtx)
	defer stopSyncs()
	var wg sync.WaitGroup
	start := time.Now()
	for _, w := range b.workers {
		wg.Add(1)
		go func() { defer wg.Done(); w.run(syncCtx, loadCtx, start) }()
	}
	b.phase.Store("warmup")
	if !clock.Sleep(ctx, b.cfg.Warmup) {
		return nil, ctx.Err()
	}
	b.phase.Store("measure")
	bytes0 := b.bytes.Load()
	smp0, smpErr := b.serverSample(ctx)
	own0 := loadgen.OwnCPU()
	b.recording.Store(true)
	close(b.measuring)
	measureStart := time.Now()
	clock.Sleep(ctx, b.cfg.Duration)
	stopSyncs()
	if b.cfg.Transport == transportPoll {
		// The syncs in flight are answered and counted, so that the
		// server's count between its two samples is esbench's.
		wg.Wait()
	}
	b.recording.Store(false)
	elapsed := time.Since(measureStart)
	own1 := loadgen.OwnCPU()
	smp1, err := b.serverSample(ctx)
	bytes := b.bytes.Load() - bytes0
	stopLoad()
	wg.Wait()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}

	b.phase.Store("verify")
	rep := b.report(elapsed, bytes)
	clientSeconds := float64(len(b.workers)) * elapsed.Seconds()
	rep.OwnCPUPerClientSecond = (own1 - own0).Seconds() * 1e6 / clientSeconds
	if smpErr == nil && err == nil && rep.Syncs > 0 {
		rep.ServerCPUPerSync = (smp1.cpu - smp0.cpu) / float64(rep.Syncs) * 1e6
		rep.ServerCPUPerClientSecond = (smp1.cpu - smp0.cpu) * 1e6 / clientSeconds
		rep.ServerLatency = serverLatency(smp0, smp1)
	}
	if !b.cfg.Mode.hasStreams() {
		return rep, nil // nothing to verify
	}
	rep.Verify = b.verify(ctx)
	return rep, nil
}
