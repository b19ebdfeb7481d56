package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"golang.org/x/term"

	"github.com/goeventstream/eventstream/internal/loadgen"
)

// config is what esbench is told.
type config struct {
	URL        string
	Mode       mode
	Streams    int
	Clients    int
	Rate       float64 // syncs per second per client; 0 is closed loop
	Duration   time.Duration
	Warmup     time.Duration
	EventShare float64
	BodySize   int
	Preload    int
	From       string // zero or head
	Prefix     string
	JSON       bool
	Timeout    time.Duration
	CPUProfile string
	Hashes     bool // clients report a state hash at every checkpoint
	Transport  transport
	MetricsURL string // the server's /metrics, for its CPU time
	ServerPID  int    // the server's process, for its CPU time from /proc
	Join       string // ramp or burst
}

func parseConfig(args []string, stderr io.Writer) (config, error) {
	c := config{}
	fs := flag.NewFlagSet("esbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.URL, "url", "http://127.0.0.1:9922", "eventstreamd's address")
	fs.StringVar((*string)(&c.Mode), "mode", string(modeSync), "what to load: sync; floor, the same requests to a server's bare handler (eventstreamd -bench-floor); or healthz, closed loop, for the HTTP stack")
	fs.IntVar(&c.Streams, "streams", 10, "streams")
	fs.IntVar(&c.Clients, "clients", 4, "clients per stream")
	fs.Float64Var(&c.Rate, "rate", 5, "syncs per second per client; 0 syncs as fast as the server answers (closed loop)")
	fs.DurationVar(&c.Duration, "duration", 10*time.Second, "how long to measure")
	fs.DurationVar(&c.Warmup, "warmup", 2*time.Second, "load before measuring, not counted")
	fs.Float64Var(&c.EventShare, "event-share", 0.05, "share of syncs that carry an event, 0 to 1")
	fs.IntVar(&c.BodySize, "body", 64, "event body size in bytes (at least 48)")
	fs.IntVar(&c.Preload, "preload", 0, "events appended to each stream before measuring")
	fs.StringVar(&c.From, "from", "zero", "where clients start: zero (replay the stream) or head")
	fs.StringVar(&c.Prefix, "prefix", "", "stream name prefix; default esbench-<random>")
	fs.BoolVar(&c.JSON, "json", false, "print the report as JSON")
	fs.DurationVar(&c.Timeout, "timeout", 10*time.Second, "HTTP timeout of one sync")
	fs.StringVar(&c.CPUProfile, "cpuprofile", "", "write esbench's own CPU profile of the measurement to `file`")
	fs.StringVar((*string)(&c.Transport), "transport", string(transportPoll), "how clients exchange: poll (a sync every 1/-rate s) or push (a WebSocket each; -rate paces their events)")
	fs.BoolVar(&c.Hashes, "hashes", false, "clients report a state hash at every checkpoint, as gamesim does (all the same: no desync)")
	fs.StringVar(&c.Join, "join", "ramp", "when clients join: ramp (over the first half of the warmup) or burst (all at once as the measurement starts, their first syncs measured)")
	fs.StringVar(&c.MetricsURL, "metrics-url", "", "the server's /metrics (default -url/metrics), read for its CPU time per sync; \"off\" reads none")
	fs.IntVar(&c.ServerPID, "server-pid", 0, "the server's process id, on this machine: its CPU time is read from /proc/`pid`/stat instead of its /metrics")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	switch {
	case !c.Mode.valid():
		return c, errors.New("-mode must be sync, floor or healthz")
	case c.Mode == modeFloor && c.Transport != transportPoll:
		return c, errors.New("-mode floor polls")
	case c.Streams < 1 || c.Clients < 1:
		return c, errors.New("-streams and -clients must be at least 1")
	case c.Rate < 0:
		return c, errors.New("-rate must not be negative")
	case c.Duration <= 0:
		return c, errors.New("-duration must be positive")
	case c.EventShare < 0 || c.EventShare > 1:
		return c, errors.New("-event-share must be between 0 and 1")
	case c.BodySize < minBody || c.BodySize > 16<<10:
		return c, fmt.Errorf("-body must be between %d and 16384", minBody)
	case c.From != "zero" && c.From != "head":
		return c, errors.New("-from must be zero or head")
	case c.ServerPID < 0:
		return c, errors.New("-server-pid must not be negative")
	case c.Preload < 0:
		return c, errors.New("-preload must not be negative")
	case c.Transport != transportPoll && c.Transport != transportPush:
		return c, errors.New("-transport must be poll or push")
	case c.Join != "ramp" && c.Join != "burst":
		return c, errors.New("-join must be ramp or burst")
	case c.Transport == transportPush && c.Rate <= 0:
		return c, errors.New("-transport push needs a -rate: it paces the clients' events")
	}
	if c.Prefix == "" {
		c.Prefix = "esbench-" + uuid.NewString()[:8]
	}
	if c.MetricsURL == "" {
		c.MetricsURL = strings.TrimSuffix(c.URL, "/") + "/metrics"
	}
	return c, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseConfig(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	// esbench shares the machine with the server it measures: trade
	// memory for fewer garbage collections.
	debug.SetGCPercent(400)
	u, err := url.Parse(cfg.URL)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return fmt.Errorf("-url %q must be an http URL such as http://127.0.0.1:9922", cfg.URL)
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "80")
	}
	b := &bench{cfg: cfg, addr: addr}
	defer b.closeTransports()
	if err := b.setup(ctx); err != nil {
		return err
	}
	if cfg.CPUProfile != "" {
		f, err := os.Create(cfg.CPUProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	progress := newProgress(stderr, b)
	rep, err := b.load(ctx)
	progress.stop()
	if err != nil {
		return err
	}
	return loadgen.Output(stdout, cfg.JSON, rep, rep.print, rep.Verify)
}

// progress prints a live line on a terminal.
type progress struct {
	w    io.Writer
	done chan struct{}
	wg   sync.WaitGroup
}

func newProgress(w io.Writer, b *bench) *progress {
	p := &progress{w: w, done: make(chan struct{})}
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return p
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		t := time.NewTicker(time.Second)
		defer t.Stop()
		var last int64
		for {
			select {
			case <-p.done:
				fmt.Fprint(w, "\r\033[K")
				return
			case <-t.C:
				n := b.syncs.Load()
				fmt.Fprintf(w, "\r\033[K%s  %6d syncs/s  %d errors", b.phase.Load(), n-last, b.errCount.Load())
				last = n
			}
		}
	}()
	return p
}

func (p *progress) stop() {
	close(p.done)
	p.wg.Wait()
}
