package main

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/goeventstream/eventstream/internal/clock"
	"github.com/goeventstream/eventstream/internal/loadgen"
)

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
		t := &directTransport{addr: b.addr, timeout: b.cfg.Timeout, bytes: &b.bytes}
		b.transports = append(b.transports, t)
		httpc := &http.Client{Transport: t}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for loadCtx.Err() == nil {
				t0 := time.Now()
				req, _ := http.NewRequestWithContext(loadCtx, http.MethodGet, url, nil)
				resp, err := httpc.Do(req)
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
	clock.Sleep(ctx, b.cfg.Warmup)
	b.phase.Store("measure")
	b.recording.Store(true)
	start := time.Now()
	clock.Sleep(ctx, b.cfg.Duration)
	b.recording.Store(false)
	elapsed := time.Since(start)
	stopLoad()
	wg.Wait()
	rep := &report{Mode: string(b.cfg.Mode), URL: b.cfg.URL, Streams: b.cfg.Streams, Clients: b.cfg.Clients,
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
	rep.Latency = loadgen.Latencies(all)
	return rep, nil
}
