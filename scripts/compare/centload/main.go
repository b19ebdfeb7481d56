// Command centload puts on a Centrifugo the load esbench -transport push
// puts on an eventstreamd, for the side-by-side comparison of
// scripts/compare: -streams channels of -clients subscribers each
// (centrifuge-go, recoverable, with join and leave), every client
// publishing -rate events a second into its channel. It reports what
// esbench reports for push: delivery latency (a publish to another client
// receiving it), the server's CPU per client-second (from /proc, with
// -server-pid) beside its own, and whether every client saw every
// publication of its channel since it subscribed, exactly once and in the
// channel's order (checked against the channel's history at the end).
//
//	centload -url ws://127.0.0.1:8000/connection/websocket -streams 500 -clients 4 -server-pid 1234
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/centrifugal/centrifuge-go"

	"github.com/goeventstream/eventstream/internal/clock"
	"github.com/goeventstream/eventstream/internal/loadgen"
)

type config struct {
	URL       string
	Streams   int
	Clients   int
	Rate      float64
	Duration  time.Duration
	Warmup    time.Duration
	BodySize  int
	ServerPID int
	Prefix    string
	Protobuf  bool
	JSON      bool
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "centload:", err)
		os.Exit(1)
	}
}

func parseConfig(args []string) (config, error) {
	var c config
	fs := flag.NewFlagSet("centload", flag.ContinueOnError)
	fs.StringVar(&c.URL, "url", "ws://127.0.0.1:8000/connection/websocket", "Centrifugo's WebSocket endpoint")
	fs.IntVar(&c.Streams, "streams", 10, "channels")
	fs.IntVar(&c.Clients, "clients", 4, "subscribers per channel, each publishing")
	fs.Float64Var(&c.Rate, "rate", 1, "publications per second per client")
	fs.DurationVar(&c.Duration, "duration", 10*time.Second, "how long to measure")
	fs.DurationVar(&c.Warmup, "warmup", 2*time.Second, "load before measuring, not counted (clients join over its first half)")
	fs.IntVar(&c.BodySize, "body", 64, "publication size in bytes (at least 48)")
	fs.IntVar(&c.ServerPID, "server-pid", 0, "Centrifugo's process id, on this machine: its CPU time is read from /proc/`pid`/stat")
	fs.StringVar(&c.Prefix, "prefix", "", "channel name prefix; default centload-<random>")
	fs.BoolVar(&c.Protobuf, "protobuf", false, "speak Centrifugo's protobuf protocol instead of JSON")
	fs.BoolVar(&c.JSON, "json", false, "print the report as JSON")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	switch {
	case c.Streams < 1 || c.Clients < 1:
		return c, errors.New("-streams and -clients must be at least 1")
	case c.Rate <= 0:
		return c, errors.New("-rate must be positive")
	case c.Duration <= 0 || c.Warmup < 0:
		return c, errors.New("-duration must be positive, -warmup not negative")
	case c.BodySize < 48:
		return c, errors.New("-body must be at least 48")
	}
	if c.Prefix == "" {
		c.Prefix = fmt.Sprintf("centload-%08x", rand.Uint32())
	}
	return c, nil
}

// report is what a run measured; its JSON names are esbench's.
type report struct {
	Server                   string               `json:"server"`
	Streams                  int                  `json:"streams"`
	Clients                  int                  `json:"clients_per_stream"`
	Rate                     float64              `json:"rate_per_client"`
	Duration                 float64              `json:"duration_seconds"`
	Messages                 int64                `json:"messages"` // publications, joins and leaves received while measuring
	Delivery                 loadgen.Latency      `json:"delivery_latency_ms"`
	EventsSent               int                  `json:"events_sent"`
	Errors                   map[string]int64     `json:"errors"`
	ServerCPUPerClientSecond float64              `json:"server_cpu_us_per_client_second"`
	OwnCPUPerClientSecond    float64              `json:"generator_cpu_us_per_client_second"`
	Verify                   loadgen.Verification `json:"verify"`
}

// seen is a publication as a client received it.
type seen struct {
	offset uint64
	id     string // "c<client>.<seq>"
}

// worker is one client.
type worker struct {
	l      *load
	idx    int
	stream int
	c      *centrifuge.Client
	sub    *centrifuge.Subscription

	mu     sync.Mutex
	seen   []seen
	from   uint64 // the channel's offset when this client subscribed
	subbed bool
	failed error

	sent  int          // publications attempted (the publishing goroutine's)
	acked map[int]bool // publications the server confirmed, by seq (under mu)
}

type load struct {
	cfg       config
	recording atomic.Bool
	messages  atomic.Int64
	hmu       sync.Mutex
	deliv     *hdrhistogram.Histogram
	errMu     sync.Mutex
	errs      map[string]int64
	workers   []*worker
}

func (l *load) channel(s int) string { return fmt.Sprintf("%s-%d", l.cfg.Prefix, s) }

// received counts a message received during the measurement.
func (l *load) received() {
	if l.recording.Load() {
		l.messages.Add(1)
	}
}

func (l *load) countError(kind string) {
	if !l.recording.Load() {
		return
	}
	l.errMu.Lock()
	l.errs[kind]++
	l.errMu.Unlock()
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	cfg, err := parseConfig(args)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	debug.SetGCPercent(400) // as esbench: memory for fewer collections
	l := &load{cfg: cfg, deliv: hdrhistogram.New(1, 60_000_000, 3), errs: map[string]int64{}}
	for s := range cfg.Streams {
		for c := range cfg.Clients {
			l.workers = append(l.workers, l.newWorker(s, s*cfg.Clients+c))
		}
	}
	defer func() {
		for _, w := range l.workers {
			w.c.Close()
		}
	}()

	pubCtx, stopPub := context.WithCancel(ctx)
	defer stopPub()
	var wg sync.WaitGroup
	start := time.Now()
	for _, w := range l.workers {
		wg.Add(1)
		go func() { defer wg.Done(); w.run(pubCtx, start) }()
	}
	if !clock.Sleep(ctx, cfg.Warmup) {
		return ctx.Err()
	}
	srv0, srvErr := serverCPU(cfg.ServerPID)
	own0 := loadgen.OwnCPU()
	l.recording.Store(true)
	t0 := time.Now()
	if !clock.Sleep(ctx, cfg.Duration) {
		return ctx.Err()
	}
	l.recording.Store(false)
	elapsed := time.Since(t0)
	own1 := loadgen.OwnCPU()
	srv1, err := serverCPU(cfg.ServerPID)
	stopPub()
	wg.Wait()

	clientSeconds := float64(len(l.workers)) * elapsed.Seconds()
	rep := &report{Server: "centrifugo", Streams: cfg.Streams, Clients: cfg.Clients, Rate: cfg.Rate,
		Duration: elapsed.Seconds(), Messages: l.messages.Load(), Errors: l.errs,
		OwnCPUPerClientSecond: (own1 - own0).Seconds() * 1e6 / clientSeconds}
	if srvErr == nil && err == nil && cfg.ServerPID > 0 {
		rep.ServerCPUPerClientSecond = (srv1 - srv0).Seconds() * 1e6 / clientSeconds
	}
	rep.Delivery = loadgen.Latencies(l.deliv)
	for _, w := range l.workers {
		rep.EventsSent += w.sent
	}
	rep.Verify = l.verify(ctx)

	return loadgen.Output(stdout, cfg.JSON, rep, rep.print, rep.Verify)
}

func serverCPU(pid int) (time.Duration, error) {
	if pid <= 0 {
		return 0, errors.New("no -server-pid")
	}
	return loadgen.ProcessCPU(pid)
}

func (l *load) newWorker(s, idx int) *worker {
	w := &worker{l: l, idx: idx, stream: s, acked: map[int]bool{}}
	// esbench's -timeout, 10 s, for the handshake as for a sync.
	ccfg := centrifuge.Config{Name: "centload", HandshakeTimeout: 10 * time.Second}
	if l.cfg.Protobuf {
		w.c = centrifuge.NewProtobufClient(l.cfg.URL, ccfg)
	} else {
		w.c = centrifuge.NewJsonClient(l.cfg.URL, ccfg)
	}
	w.c.OnError(func(e centrifuge.ErrorEvent) { l.countError("client") })
	w.c.OnDisconnected(func(e centrifuge.DisconnectedEvent) { l.countError("disconnected") })
	sub, err := w.c.NewSubscription(l.channel(s), centrifuge.SubscriptionConfig{Recoverable: true, JoinLeave: true})
	if err != nil {
		panic(err) // only for a channel subscribed twice by one client
	}
	w.sub = sub
	sub.OnSubscribed(func(e centrifuge.SubscribedEvent) {
		w.mu.Lock()
		defer w.mu.Unlock()
		if !w.subbed && e.StreamPosition != nil {
			w.subbed, w.from = true, e.StreamPosition.Offset
		}
	})
	sub.OnUnsubscribed(func(e centrifuge.UnsubscribedEvent) {
		if e.Code != 0 { // 0: centload's own unsubscribe, at the end
			w.fail(fmt.Errorf("unsubscribed: %d %s", e.Code, e.Reason))
		}
	})
	sub.OnError(func(e centrifuge.SubscriptionErrorEvent) { l.countError("subscription") })
	sub.OnJoin(func(centrifuge.JoinEvent) { l.received() })
	sub.OnLeave(func(centrifuge.LeaveEvent) { l.received() })
	sub.OnPublication(w.receive)
	return w
}

// run subscribes the client when its turn comes and publishes at -rate
// until ctx ends.
func (w *worker) run(ctx context.Context, start time.Time) {
	cfg := w.l.cfg
	rng := rand.New(rand.NewPCG(uint64(w.idx), uint64(time.Now().UnixNano())))
	if ramp := cfg.Warmup / 2; ramp > 0 {
		if !clock.Sleep(ctx, time.Until(start.Add(time.Duration(rng.Int64N(int64(ramp)))))) {
			return
		}
	}
	if err := w.sub.Subscribe(); err != nil {
		w.fail(err)
		return
	}
	if err := w.c.Connect(); err != nil {
		// A dial that failed: the client retries on its own, and
		// recovers what it missed (the verification says if not).
		w.l.countError("connect")
	}
	// A publication waits for its reply (centrifuge-go: many in flight on
	// one subscription stalled it), and a tick missed meanwhile is
	// skipped: a saturated Centrifugo is offered less load than -rate,
	// which esbench, queueing its events, does not do. The events sent
	// of each row say so.
	t := time.NewTicker(time.Duration(float64(time.Second) / cfg.Rate))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		seq := w.sent
		w.sent++
		data, _ := json.Marshal(loadgen.Body(w.idx, seq, cfg.BodySize-2)) // a JSON string, for either protocol
		pctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := w.sub.Publish(pctx, data)
		cancel()
		if err != nil {
			w.l.countError("publish")
			continue
		}
		w.mu.Lock()
		w.acked[seq] = true
		w.mu.Unlock()
	}
}

func (w *worker) fail(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.failed == nil {
		w.failed = err
	}
}

func (w *worker) receive(e centrifuge.PublicationEvent) {
	now := time.Now().UnixNano()
	w.l.received()
	var body string
	if err := json.Unmarshal(e.Data, &body); err != nil {
		w.fail(fmt.Errorf("publication %d: %w", e.Offset, err))
		return
	}
	id := loadgen.EventID(body)
	w.mu.Lock()
	w.seen = append(w.seen, seen{offset: e.Offset, id: id})
	w.mu.Unlock()
	own := strings.HasPrefix(id, "c"+strconv.Itoa(w.idx)+".")
	if sent, ok := loadgen.SentAt(body); ok && !own && w.l.recording.Load() {
		w.l.hmu.Lock()
		_ = w.l.deliv.RecordValue(max((now-sent)/1000, 1))
		w.l.hmu.Unlock()
	}
}

// verify reads each channel's history, checks that it holds every
// confirmed publication exactly once and nothing never sent, waits for
// every client to reach its top, and checks that each client saw the
// history from where it subscribed, in order, each publication once.
func (l *load) verify(ctx context.Context) loadgen.Verification {
	v := loadgen.Verification{Checked: true}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for s := range l.cfg.Streams {
		members := l.workers[s*l.cfg.Clients : (s+1)*l.cfg.Clients]
		hist, err := members[0].sub.History(ctx, centrifuge.WithHistoryLimit(-1))
		if err != nil {
			v.Problem("channel %d: history: %v", s, err)
			continue
		}
		ref := make([]seen, len(hist.Publications))
		for i, p := range hist.Publications {
			var body string
			_ = json.Unmarshal(p.Data, &body)
			ref[i] = seen{offset: p.Offset, id: loadgen.EventID(body)}
		}
		v.Events += l.checkHistory(&v, s, members, ref, hist.Offset)
		for _, w := range members {
			v.Clients++
			w.check(ctx, &v, ref, hist.Offset)
		}
	}
	return v
}

// checkHistory checks one channel's history: whole (offsets 1 to top),
// every confirmed publication once, nothing never sent. It returns the
// publications in it.
func (l *load) checkHistory(v *loadgen.Verification, s int, members []*worker, ref []seen, top uint64) int {
	if uint64(len(ref)) != top || (len(ref) > 0 && ref[0].offset != 1) {
		v.Problem("channel %d: history holds %d publications to offset %d (history too short?)", s, len(ref), top)
		return len(ref)
	}
	count := map[string]int{}
	for i, p := range ref {
		if p.offset != uint64(i+1) {
			v.Problem("channel %d: offset %d at position %d", s, p.offset, i)
		}
		count[p.id]++
	}
	sent := map[string]int{}
	for _, w := range members {
		sent["c"+strconv.Itoa(w.idx)] = w.sent
		for seq := range w.acked {
			if count[fmt.Sprintf("c%d.%d", w.idx, seq)] == 0 {
				v.Problem("channel %d: publication c%d.%d was confirmed and lost", s, w.idx, seq)
			}
		}
	}
	v.CheckOnce(fmt.Sprintf("channel %d", s), count, sent)
	return len(ref)
}

// check waits for w to reach the channel's top, then checks that it saw
// ref from where it subscribed, in order, each publication once.
func (w *worker) check(ctx context.Context, v *loadgen.Verification, ref []seen, top uint64) {
	for {
		w.mu.Lock()
		n := len(w.seen)
		done := n > 0 && w.seen[n-1].offset >= top || w.subbed && w.from >= top
		w.mu.Unlock()
		if done || !clock.Sleep(ctx, 10*time.Millisecond) {
			break
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.failed != nil {
		v.Problem("client %d of channel %d stopped: %v", w.idx, w.stream, w.failed)
		return
	}
	if !w.subbed {
		v.Problem("client %d of channel %d never subscribed", w.idx, w.stream)
		return
	}
	if w.from > uint64(len(ref)) {
		v.Problem("client %d of channel %d subscribed at offset %d, past the history's %d", w.idx, w.stream, w.from, len(ref))
		return
	}
	want := ref[w.from:]
	if len(w.seen) != len(want) {
		v.Problem("client %d of channel %d saw %d publications where the channel has %d since it subscribed", w.idx, w.stream, len(w.seen), len(want))
		return
	}
	for i := range want {
		if w.seen[i] != want[i] {
			v.Problem("client %d of channel %d: publication %d is %v, the channel's %v", w.idx, w.stream, i, w.seen[i], want[i])
			return
		}
	}
}

func (r *report) print(w io.Writer) {
	fmt.Fprintf(w, "centload: %d channels × %d clients, %g publications a second each, %.1fs measured\n", r.Streams, r.Clients, r.Rate, r.Duration)
	fmt.Fprintf(w, "  delivery ms  p50 %.2f  p99 %.2f  (%d deliveries)\n", r.Delivery.P50, r.Delivery.P99, r.Delivery.N)
	fmt.Fprintf(w, "  messages     %d received (publications, joins, leaves)\n", r.Messages)
	if r.ServerCPUPerClientSecond > 0 {
		fmt.Fprintf(w, "  server CPU   %.1f µs per client-second (centload's own: %.1f)\n", r.ServerCPUPerClientSecond, r.OwnCPUPerClientSecond)
	}
	fmt.Fprintf(w, "  errors       %v\n", r.Errors)
	if len(r.Verify.Problems) == 0 {
		fmt.Fprintf(w, "  verified     %d clients saw their channel's order; %d publications each exactly once\n", r.Verify.Clients, r.Verify.Events)
	}
	for _, p := range r.Verify.Problems {
		fmt.Fprintf(w, "  PROBLEM      %s\n", p)
	}
}
