package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"time"

	"github.com/goeventstream/eventstream/internal/loadgen"
)

// report is what a run measured.
type report struct {
	Mode        string           `json:"mode"`
	Transport   string           `json:"transport"`
	URL         string           `json:"url"`
	Streams     int              `json:"streams"`
	Clients     int              `json:"clients_per_stream"`
	Rate        float64          `json:"rate_per_client"`
	Duration    float64          `json:"duration_seconds"`
	Syncs       int64            `json:"syncs"`
	SyncsPerSec float64          `json:"syncs_per_second"`
	Errors      map[string]int64 `json:"errors"`
	Latency     loadgen.Latency  `json:"sync_latency_ms"`
	Delivery    loadgen.Latency  `json:"delivery_latency_ms"`
	// Join is from each client's first sync to the last page of the
	// history it was sent, for the clients whose first sync was measured.
	Join          loadgen.Latency      `json:"join_latency_ms"`
	BytesPerReply float64              `json:"bytes_per_reply"`
	EventsSent    int                  `json:"events_sent"`
	Verify        loadgen.Verification `json:"verify"`
	// ServerCPUPerSync is the server's CPU time per sync, in µs, from its
	// process_cpu_seconds_total; 0 when it could not be read.
	ServerCPUPerSync float64 `json:"server_cpu_us_per_sync"`
	// ServerCPUPerClientSecond is the server's CPU time per client and
	// second measured, in µs; 0 when it could not be read.
	ServerCPUPerClientSecond float64 `json:"server_cpu_us_per_client_second"`
	// OwnCPUPerClientSecond is esbench's own CPU time per client and
	// second measured, in µs: what generating the load cost.
	OwnCPUPerClientSecond float64 `json:"generator_cpu_us_per_client_second"`
	// ServerLatency is the server's own time for the syncs it answered
	// during the measurement (its request duration histogram: each
	// quantile is the upper bound of its bucket; esbench's own queueing
	// and parsing are not in it).
	ServerLatency loadgen.Latency `json:"server_sync_latency_ms"`
	// PushGaps is, over the push clients once up to date, the largest step
	// of t from one push to the next, in ticks, and the longest wait
	// between two pushes, in ms: the bound on t of quiet ticks, as kept.
	PushGaps *pushGaps `json:"push_gaps,omitempty"`
}

type pushGaps struct {
	Ticks  int64   `json:"largest_t_step"`
	WaitMs float64 `json:"longest_wait_ms"`
}

func (b *bench) report(elapsed time.Duration, bytes int64) *report {
	rep := &report{Mode: string(b.cfg.Mode), Transport: string(b.cfg.Transport), URL: b.cfg.URL, Streams: b.cfg.Streams, Clients: b.cfg.Clients,
		Rate: b.cfg.Rate, Duration: elapsed.Seconds(), Errors: map[string]int64{}}
	lat, deliv, join := newHistogram(), newHistogram(), newHistogram()
	for _, h := range b.hists {
		lat.Merge(h.lat)
		deliv.Merge(h.deliv)
		join.Merge(h.join)
	}
	var errs int64
	if transport(b.cfg.Transport) == transportPush {
		rep.PushGaps = &pushGaps{}
	}
	for _, w := range b.workers {
		if g := rep.PushGaps; g != nil {
			g.Ticks = max(g.Ticks, w.gapTicks)
			g.WaitMs = max(g.WaitMs, float64(w.gapWait)/float64(time.Millisecond))
		}
		rep.Syncs += w.syncs
		rep.EventsSent += w.sent
		for k, v := range w.errs {
			rep.Errors[k] += v
			errs += v
		}
	}
	rep.SyncsPerSec = float64(rep.Syncs) / elapsed.Seconds()
	rep.Latency, rep.Delivery, rep.Join = loadgen.Latencies(lat), loadgen.Latencies(deliv), loadgen.Latencies(join)
	if n := rep.Syncs + errs; n > 0 {
		rep.BytesPerReply = float64(bytes) / float64(n)
	}
	return rep
}

func (b *bench) eachWorker(fn func(w *worker) error) error {
	errs := make(chan error, len(b.workers))
	for _, w := range b.workers {
		go func() { errs <- fn(w) }()
	}
	var first error
	for range b.workers {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

func (r *report) print(w io.Writer) {
	fmt.Fprintf(w, "esbench: %s mode, %d streams × %d clients", r.Mode, r.Streams, r.Clients)
	switch {
	case mode(r.Mode) == modeHealthz:
	case transport(r.Transport) == transportPush:
		fmt.Fprintf(w, " on push connections, each with %g chances a second to post", r.Rate)
	case r.Rate > 0:
		fmt.Fprintf(w, " at %g syncs/s each", r.Rate)
	default:
		fmt.Fprint(w, ", closed loop")
	}
	fmt.Fprintf(w, ", %.1fs measured\n", r.Duration)
	what, one := "requests", "request"
	if transport(r.Transport) == transportPush {
		what, one = "pushes", "push"
	}
	fmt.Fprintf(w, "  throughput   %10.0f %s/s (%d)\n", r.SyncsPerSec, what, r.Syncs)
	if r.Latency.N > 0 { // a push has no request to time
		fmt.Fprintf(w, "  latency ms   p50 %.2f  p90 %.2f  p99 %.2f  max %.2f\n", r.Latency.P50, r.Latency.P90, r.Latency.P99, r.Latency.Max)
	}
	if r.Join.N > 0 {
		fmt.Fprintf(w, "  join ms      p50 %.2f  p99 %.2f  max %.2f  (%d clients joined, with every page of history)\n", r.Join.P50, r.Join.P99, r.Join.Max, r.Join.N)
	}
	if mode(r.Mode).hasStreams() {
		fmt.Fprintf(w, "  delivery ms  p50 %.2f  p99 %.2f  (%d deliveries)\n", r.Delivery.P50, r.Delivery.P99, r.Delivery.N)
		if r.BytesPerReply > 0 {
			fmt.Fprintf(w, "  reply        %.0f bytes on average\n", r.BytesPerReply)
		}
		fmt.Fprintf(w, "  events       %d sent\n", r.EventsSent)
	}
	if g := r.PushGaps; g != nil {
		fmt.Fprintf(w, "  push gaps    t stepped by at most %d ticks from one push to the next; the longest wait %.0f ms\n", g.Ticks, g.WaitMs)
	}
	if r.ServerCPUPerSync > 0 {
		fmt.Fprintf(w, "  server CPU   %.1f µs per %s, %.1f µs per client-second (esbench's own: %.1f)\n",
			r.ServerCPUPerSync, one, r.ServerCPUPerClientSecond, r.OwnCPUPerClientSecond)
	}
	if l := r.ServerLatency; l.N > 0 {
		bound := func(ms float64) string {
			if ms == pastBuckets {
				return "> the largest bucket"
			}
			return fmt.Sprintf("≤ %g", ms)
		}
		fmt.Fprintf(w, "  server ms    p50 %s  p99 %s  max %s  (its handler's time, by histogram bucket; %d syncs)\n",
			bound(l.P50), bound(l.P99), bound(l.Max), l.N)
	}
	if len(r.Errors) == 0 {
		fmt.Fprintln(w, "  errors       none")
	} else {
		for _, k := range slices.Sorted(maps.Keys(r.Errors)) {
			fmt.Fprintf(w, "  errors       %s: %d\n", k, r.Errors[k])
		}
	}
	if r.Verify.Checked {
		if len(r.Verify.Problems) == 0 {
			fmt.Fprintf(w, "  verified     %d clients saw one order; %d events each exactly once\n", r.Verify.Clients, r.Verify.Events)
		} else {
			for _, p := range r.Verify.Problems {
				fmt.Fprintf(w, "  PROBLEM      %s\n", p)
			}
		}
	}
}
