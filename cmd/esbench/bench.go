package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"maps"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
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

type seenEvent struct {
	t int64
	h uint64
}

// chunks is an append-only list that never copies what it holds, so that
// thousands of clients each recording every event stay cheap.
type chunks struct{ c [][]seenEvent }

const chunkLen = 4096

func (l *chunks) add(e seenEvent) {
	if n := len(l.c); n == 0 || len(l.c[n-1]) == chunkLen {
		l.c = append(l.c, make([]seenEvent, 0, chunkLen))
	}
	last := &l.c[len(l.c)-1]
	*last = append(*last, e)
}

func (l *chunks) all() []seenEvent {
	var out []seenEvent
	for _, c := range l.c {
		out = append(out, c...)
	}
	return out
}

func newHistogram() *hdr { return hdrhistogram.New(1, 60_000_000, 3) }

// seed keys the event hashes of one run.
var seed = maphash.MakeSeed()

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
	base := b.cfg.URL
	if b.cfg.Mode == "floor" {
		base = strings.TrimSuffix(base, "/") + "/_floor"
	}
	cfg := esclient.Config{
		BaseURL: base, Stream: b.streamName(s), PrivateID: id,
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
	if b.cfg.Mode == "healthz" {
		return nil
	}
	err := b.eachStream(func(s int) error {
		if b.cfg.Mode == "floor" {
			return nil // no stream behind it
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
					sleep(ctx, se.RetryAfter) // the server's fair use: -max-events-per-client-per-second
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
			cl, err := b.client(s, b.privateID(idx), b.heads[s], b.cfg.Transport == "push")
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
	bytes0 := b.bytes.Load()
	smp0, smpErr := b.serverSample(ctx)
	b.recording.Store(true)
	close(b.measuring)
	measureStart := time.Now()
	sleep(ctx, b.cfg.Duration)
	b.recording.Store(false)
	elapsed := time.Since(measureStart)
	smp1, err := b.serverSample(ctx)
	bytes := b.bytes.Load() - bytes0
	stopLoad()
	wg.Wait()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}

	b.phase.Store("verify")
	rep := b.report(elapsed, bytes)
	if smpErr == nil && err == nil && rep.Syncs > 0 {
		rep.ServerCPUPerSync = (smp1.cpu - smp0.cpu) / float64(rep.Syncs) * 1e6
		rep.ServerLatency = serverLatency(smp0, smp1)
	}
	if b.cfg.Mode == "floor" {
		return rep, nil // nothing to verify: no stream behind it
	}
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

// loop syncs on schedule until ctx ends. A sync is timed from when it was
// due if the previous one made it late (so a slow server cannot hide the
// queueing it causes), else from when it starts (so esbench's own timer
// slack is not counted).
func (w *worker) loop(ctx context.Context, start time.Time) {
	// Clients join over the first half of the warmup, or all at once as
	// the measurement starts: then a thousand joiners are each sent up to
	// a thousand connect events, and that is what is measured.
	var interval time.Duration
	due := start
	switch ramp := w.b.cfg.Warmup / 2; {
	case w.b.cfg.Join == "burst":
		select {
		case <-ctx.Done():
			return
		case <-w.b.measuring:
		}
		due = time.Now()
	case ramp > 0:
		due = start.Add(time.Duration(w.rng.Int64N(int64(ramp))))
	}
	if w.b.cfg.Rate > 0 {
		interval = time.Duration(float64(time.Second) / w.b.cfg.Rate)
	}
	if !sleep(ctx, time.Until(due)) {
		return
	}
	if w.b.cfg.Transport == "push" {
		w.push(ctx, interval)
		return
	}
	var (
		joined, recordJoin bool
		joinFrom           time.Time
	)
	for w.failed == nil {
		from := time.Now()
		if interval > 0 {
			if d := due.Sub(from); d > 0 {
				if !sleep(ctx, d) {
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
			more = w.sync(ctx, from)
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
			if sent, ok := sentAt(e.Body); ok {
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
	if n := u.Checkpoint; w.b.cfg.Hashes && n > 0 {
		if ck := (u.T - 1) / n * n; ck > w.ckpt {
			w.ckpt = ck
			w.c.ReportHash(ck, benchHash) // every client "simulates" the same state
		}
	}
}

// benchHash is the state hash every client reports with -hashes.
var benchHash = strings.Repeat("5e", 32)

// sentAt reads the send time, in Unix nanoseconds, from a body
// "c<client>.<seq>.<nanoseconds>.…".
func sentAt(body string) (int64, bool) {
	_, rest, ok := strings.Cut(body, ".")
	if !ok {
		return 0, false
	}
	_, rest, ok = strings.Cut(rest, ".")
	if !ok {
		return 0, false
	}
	digits, _, _ := strings.Cut(rest, ".")
	ns, err := strconv.ParseInt(digits, 10, 64)
	return ns, err == nil
}

func eventHash(e esclient.Event) uint64 {
	var h maphash.Hash
	h.SetSeed(seed)
	var buf [20]byte
	_, _ = h.Write(strconv.AppendInt(buf[:0], e.T, 10))
	_, _ = h.WriteString("\x00" + e.Type + "\x00" + e.Origin + "\x00")
	_, _ = h.WriteString(e.Body)
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

// serverSample is what esbench reads from the server's /metrics: its
// CPU time, user and system (process_cpu_seconds_total), and how long its
// handler took over the syncs it answered, by histogram bucket.
type serverSample struct {
	cpu     float64
	buckets map[float64]float64 // upper bound in seconds → syncs at most that long
}

// syncBucket is the prefix of the server's duration buckets of syncs.
const syncBucket = `eventstreamd_http_request_duration_seconds_bucket{method="`

func (b *bench) serverSample(ctx context.Context) (serverSample, error) {
	smp := serverSample{buckets: map[float64]float64{}}
	if b.cfg.MetricsURL == "off" {
		return smp, errors.New("off")
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.cfg.MetricsURL, nil)
	if err != nil {
		return smp, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return smp, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	found := false
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "process_cpu_seconds_total "); ok {
			if smp.cpu, err = strconv.ParseFloat(v, 64); err != nil {
				return smp, err
			}
			found = true
			continue
		}
		// …{method="POST",route="/{stream}/{client}/{tick}",le="0.005"} 123
		if !strings.HasPrefix(line, syncBucket) || !strings.Contains(line, `route="/{stream}/{client}/{tick}"`) {
			continue
		}
		_, le, _ := strings.Cut(line, `le="`)
		le, count, _ := strings.Cut(le, `"} `)
		bound, err1 := strconv.ParseFloat(le, 64)
		n, err2 := strconv.ParseFloat(count, 64)
		if err1 == nil && err2 == nil {
			smp.buckets[bound] += n
		}
	}
	if !found {
		return smp, errors.New("no process_cpu_seconds_total")
	}
	return smp, sc.Err()
}

// serverLatency is the server's own time for the syncs answered between
// two samples, each quantile the upper bound of its histogram bucket.
func serverLatency(from, to serverSample) latency {
	bounds := slices.Sorted(maps.Keys(to.buckets))
	var total float64
	if len(bounds) > 0 {
		total = to.buckets[bounds[len(bounds)-1]] - from.buckets[bounds[len(bounds)-1]] // +Inf
	}
	if total <= 0 {
		return latency{}
	}
	at := func(q float64) float64 {
		for _, le := range bounds {
			if to.buckets[le]-from.buckets[le] >= q*total {
				return le * 1000
			}
		}
		return math.Inf(1)
	}
	return latency{P50: at(0.5), P90: at(0.9), P99: at(0.99), Max: at(1), N: int64(total)}
}
