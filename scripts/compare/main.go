// Command compare measures eventstreamd's push beside Centrifugo at the
// same load, in one run on one machine (make compare). It is a benchmark,
// not a test.
//
// It installs Centrifugo (go install github.com/centrifugal/centrifugo/v6
// at centrifugoVersion) into a temporary folder, with eventstreamd and
// esbench built from this tree and centload (./centload) beside them,
// and, for each load (-loads, streams×clients), runs each server in turn
// on the loopback with its load generator: Centrifugo with history,
// recovery, presence and join/leave, its clients publishing into their
// channel; eventstreamd with the memory store, its clients on push
// connections. Every client posts -rate events a second. Each row is
// one server at one load: its CPU per client-second (from
// /proc/<pid>/stat, over the measured seconds), its generator's beside it,
// delivery p50/p99 (a post to another client holding it), messages
// received per client-second, and whether every client saw its stream's
// one order with every event exactly once. The machine's load average is
// printed with each row: on a shared machine, compare ratios within a
// run, not numbers across runs. Nothing is left behind but the output.
//
// With -quiet 100ms,200ms eventstreamd runs once with each
// -ws-quiet-interval, in the same round.
//
//	cd scripts/compare && go run . -loads 500x4,1000x4 -duration 20s
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/goeventstream/eventstream/internal/clock"
)

// centrifugoVersion is the Centrifugo compared with.
const centrifugoVersion = "v6.9.1"

type config struct {
	Repo     string
	Loads    []load
	Rate     float64
	Duration time.Duration
	Warmup   time.Duration
	Runs     int
	Protobuf bool
	Pprof    string
	Keep     bool
	Quiet    []time.Duration // eventstreamd's -ws-quiet-interval, one run each
}

type load struct{ streams, clients int }

func (l load) String() string { return fmt.Sprintf("%d × %d", l.streams, l.clients) }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "compare:", err)
		os.Exit(1)
	}
}

func parseConfig(args []string, stderr io.Writer) (config, error) {
	c := config{}
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.Repo, "repo", "../..", "eventstreamd's source tree")
	loads := fs.String("loads", "500x4,1000x4", "comma-separated loads, `streams`x`clients`")
	fs.Float64Var(&c.Rate, "rate", 1, "events a second each client posts")
	fs.DurationVar(&c.Duration, "duration", 20*time.Second, "how long each run is measured")
	fs.DurationVar(&c.Warmup, "warmup", 5*time.Second, "load before measuring (clients join over its first half)")
	fs.IntVar(&c.Runs, "runs", 1, "times each load is run on each server, alternating which goes first")
	fs.BoolVar(&c.Protobuf, "protobuf", false, "Centrifugo's clients speak protobuf instead of JSON")
	fs.StringVar(&c.Pprof, "pprof", "", "write eventstreamd's CPU profile of each measurement into `dir`")
	fs.BoolVar(&c.Keep, "keep", false, "keep the temporary folder (binaries, configs, outputs) and say where")
	quiet := fs.String("quiet", "100ms", "comma-separated -ws-quiet-interval values: eventstreamd runs once with each")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	for _, s := range strings.Split(*loads, ",") {
		a, b, ok := strings.Cut(strings.TrimSpace(s), "x")
		st, err1 := strconv.Atoi(a)
		cl, err2 := strconv.Atoi(b)
		if !ok || err1 != nil || err2 != nil || st < 1 || cl < 2 {
			return c, fmt.Errorf("-loads: %q is not streams x clients (at least 2 clients, to deliver to another)", s)
		}
		c.Loads = append(c.Loads, load{st, cl})
	}
	for _, q := range strings.Split(*quiet, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(q))
		if err != nil || d <= 0 {
			return c, fmt.Errorf("-quiet: %q is not a positive duration", q)
		}
		c.Quiet = append(c.Quiet, d)
	}
	switch {
	case c.Rate <= 0:
		return c, errors.New("-rate must be positive")
	case c.Duration <= 0 || c.Warmup < 0:
		return c, errors.New("-duration must be positive, -warmup not negative")
	case c.Runs < 1:
		return c, errors.New("-runs must be at least 1")
	}
	return c, nil
}

// result is what both generators report, by esbench's JSON names.
type result struct {
	Duration                 float64 `json:"duration_seconds"`
	Syncs                    int64   `json:"syncs"`    // esbench: pushes received
	Messages                 int64   `json:"messages"` // centload: messages received
	ServerCPUPerClientSecond float64 `json:"server_cpu_us_per_client_second"`
	OwnCPUPerClientSecond    float64 `json:"generator_cpu_us_per_client_second"`
	Delivery                 struct {
		P50 float64 `json:"p50"`
		P99 float64 `json:"p99"`
		N   int64   `json:"count"`
	} `json:"delivery_latency_ms"`
	Errors   map[string]int64 `json:"errors"`
	PushGaps *struct {
		Ticks  int64   `json:"largest_t_step"`
		WaitMs float64 `json:"longest_wait_ms"`
	} `json:"push_gaps"` // esbench: the bound on t, as kept
	Verify struct {
		Clients  int      `json:"clients"`
		Events   int      `json:"events"`
		Problems []string `json:"problems"`
	} `json:"verify"`
}

// server is one of the servers compared: Centrifugo, or eventstreamd with
// a quiet interval.
type server struct {
	name  string
	quiet time.Duration
}

func (s server) String() string {
	if s.name == "eventstreamd" && s.quiet != 100*time.Millisecond {
		return fmt.Sprintf("eventstreamd, quiet %v", s.quiet)
	}
	return s.name
}

// row is one server at one load.
type row struct {
	run     int
	server  string
	load    load
	loadavg string
	res     result
	err     error
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseConfig(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	if cfg.Repo, err = filepath.Abs(cfg.Repo); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "eventstreamd-compare-")
	if err != nil {
		return err
	}
	if cfg.Keep {
		fmt.Fprintln(stderr, "compare: keeping", tmp)
	} else {
		defer os.RemoveAll(tmp)
	}
	bin := filepath.Join(tmp, "bin")
	if err := build(ctx, cfg, bin, stderr); err != nil {
		return err
	}

	var rows []row
	for n := range cfg.Runs {
		for _, l := range cfg.Loads {
			servers := []server{{name: "centrifugo"}}
			for _, q := range cfg.Quiet {
				servers = append(servers, server{name: "eventstreamd", quiet: q})
			}
			if n%2 == 1 {
				slices.Reverse(servers)
			}
			for _, s := range servers {
				fmt.Fprintf(stderr, "compare: run %d, %s, %s …\n", n+1, s, l)
				r := measure(ctx, cfg, tmp, bin, s, l, n)
				if r.err != nil {
					fmt.Fprintf(stderr, "compare: %s at %s: %v\n", s, l, r.err)
				}
				rows = append(rows, r)
				if ctx.Err() != nil {
					return ctx.Err()
				}
			}
		}
	}
	printTable(stdout, cfg, rows)
	for _, r := range rows {
		if r.err != nil {
			return errors.New("a run failed (see above)")
		}
	}
	return nil
}

// build installs Centrifugo and builds eventstreamd, esbench and
// centload into bin.
func build(ctx context.Context, cfg config, bin string, stderr io.Writer) error {
	steps := []struct {
		dir  string
		args []string
	}{
		{"", []string{"install", "github.com/centrifugal/centrifugo/v6@" + centrifugoVersion}},
		{cfg.Repo, []string{"build", "-o", bin, "./cmd/eventstreamd", "./cmd/esbench"}},
		{".", []string{"build", "-o", bin, "./centload"}},
	}
	for _, s := range steps {
		fmt.Fprintf(stderr, "compare: go %s\n", strings.Join(s.args, " "))
		cmd := exec.CommandContext(ctx, "go", s.args...)
		cmd.Dir = s.dir
		if s.dir == "" {
			cmd.Dir = filepath.Dir(bin) // outside any module: go install of a version
		}
		cmd.Env = append(os.Environ(), "GOBIN="+bin)
		cmd.Stdout, cmd.Stderr = stderr, stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("go %s: %w", strings.Join(s.args, " "), err)
		}
	}
	return nil
}

// measure starts server, waits for it, runs its generator at l, and stops it.
func measure(ctx context.Context, cfg config, tmp, bin string, sv server, l load, n int) row {
	server := sv.String()
	r := row{run: n, server: server, load: l}
	port, err := freePort()
	if err != nil {
		r.err = err
		return r
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	base := filepath.Join(tmp, fmt.Sprintf("%s-%v-%d-%dx%d", sv.name, sv.quiet, n, l.streams, l.clients))
	var srv *exec.Cmd
	var ready string
	switch sv.name {
	case "centrifugo":
		conf := base + ".json"
		if err := os.WriteFile(conf, centrifugoConfig(port), 0o600); err != nil {
			r.err = err
			return r
		}
		srv = exec.Command(filepath.Join(bin, "centrifugo"), "--config", conf)
		ready = "http://" + addr + "/health"
	default:
		args := []string{"-addr", addr, "-log-level", "warn", "-drain-delay", "0", "-ws-quiet-interval", sv.quiet.String()}
		if cfg.Pprof != "" {
			dport, err := freePort()
			if err != nil {
				r.err = err
				return r
			}
			args = append(args, "-debug-addr", "127.0.0.1:"+strconv.Itoa(dport))
			defer profile(ctx, cfg, dport, l, n)()
		}
		srv = exec.Command(filepath.Join(bin, "eventstreamd"), args...)
		ready = "http://" + addr + "/readyz"
	}
	logf, err := os.Create(base + ".log")
	if err != nil {
		r.err = err
		return r
	}
	defer logf.Close()
	srv.Stdout, srv.Stderr = logf, logf
	if err := srv.Start(); err != nil {
		r.err = err
		return r
	}
	defer func() {
		_ = srv.Process.Signal(syscall.SIGTERM)
		_ = srv.Wait()
	}()
	if err := waitReady(ctx, ready); err != nil {
		r.err = fmt.Errorf("%s not ready: %w (its log: %s)", server, err, base+".log")
		return r
	}

	common := []string{"-streams", strconv.Itoa(l.streams), "-clients", strconv.Itoa(l.clients),
		"-duration", cfg.Duration.String(), "-warmup", cfg.Warmup.String(),
		"-server-pid", strconv.Itoa(srv.Process.Pid), "-json"}
	var gen *exec.Cmd
	if server == "centrifugo" {
		args := append(common, "-url", "ws://"+addr+"/connection/websocket", "-rate", fmt.Sprint(cfg.Rate))
		if cfg.Protobuf {
			args = append(args, "-protobuf")
		}
		gen = exec.CommandContext(ctx, filepath.Join(bin, "centload"), args...)
	} else {
		// A tick at every 1/rate s, each with an event: -rate events a second.
		args := append(common, "-url", "http://"+addr, "-transport", "push", "-rate", fmt.Sprint(cfg.Rate), "-event-share", "1")
		gen = exec.CommandContext(ctx, filepath.Join(bin, "esbench"), args...)
	}
	var out, errOut bytes.Buffer
	gen.Stdout, gen.Stderr = &out, &errOut
	runErr := gen.Run()
	r.loadavg = loadavg()
	if err := json.Unmarshal(out.Bytes(), &r.res); err != nil {
		r.err = fmt.Errorf("%v: %v\n%s", runErr, err, strings.TrimSpace(errOut.String()))
		return r
	}
	if runErr != nil {
		r.err = fmt.Errorf("%v: %s", runErr, strings.TrimSpace(errOut.String()))
	}
	return r
}

// centrifugoConfig is the configuration of the Centrifugo compared with:
// the loopback only, anonymous clients, and for every channel what an
// eventstreamd stream has: history (kept whole for the verification),
// recovery of missed publications, presence, join and leave, and
// publishing by its subscribers.
func centrifugoConfig(port int) []byte {
	c := map[string]any{
		"http_server": map[string]any{"address": "127.0.0.1", "port": port},
		"log":         map[string]any{"level": "error"},
		"health":      map[string]any{"enabled": true},
		"client": map[string]any{
			"allow_anonymous_connect_without_token": true,
			"history_max_publication_limit":         100_000,
		},
		"channel": map[string]any{
			"without_namespace": map[string]any{
				"allow_subscribe_for_client":    true,
				"allow_subscribe_for_anonymous": true,
				"allow_publish_for_subscriber":  true,
				"allow_publish_for_anonymous":   true,
				"allow_history_for_subscriber":  true,
				"allow_history_for_anonymous":   true,
				"allow_presence_for_subscriber": true,
				"presence":                      true,
				"join_leave":                    true,
				"force_push_join_leave":         true,
				"history_size":                  100_000,
				"history_ttl":                   "600s",
				"force_recovery":                true,
			},
		},
	}
	b, _ := json.MarshalIndent(c, "", "  ")
	return b
}

// profile starts eventstreamd's CPU profile for the measurement (after
// the warmup) and returns a function that waits for it.
func profile(ctx context.Context, cfg config, port int, l load, n int) func() {
	done := make(chan struct{})
	go func() {
		defer close(done)
		if !clock.Sleep(ctx, cfg.Warmup+time.Second) {
			return
		}
		secs := int(cfg.Duration.Seconds()) - 2
		url := fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/profile?seconds=%d", port, max(secs, 1))
		resp, err := http.Get(url)
		if err != nil {
			return
		}
		defer resp.Body.Close()
		_ = os.MkdirAll(cfg.Pprof, 0o755)
		f, err := os.Create(filepath.Join(cfg.Pprof, fmt.Sprintf("eventstreamd-%dx%d-%d.prof", l.streams, l.clients, n)))
		if err != nil {
			return
		}
		defer f.Close()
		_, _ = io.Copy(f, resp.Body)
	}()
	return func() { <-done }
}

func printTable(w io.Writer, cfg config, rows []row) {
	fmt.Fprintf(w, "\n%g event a second per client, %s measured after %s of warmup; CPU in µs per client-second, latency in ms\n\n",
		cfg.Rate, cfg.Duration, cfg.Warmup)
	fmt.Fprintln(w, "| load | server | server CPU | generator CPU | delivery p50 / p99 | messages per client-second | verified | load average |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|")
	for _, r := range rows {
		res := r.res
		clients := float64(r.load.streams * r.load.clients)
		msgs := float64(res.Syncs + res.Messages)
		if res.Duration > 0 {
			msgs /= clients * res.Duration
		}
		verified := fmt.Sprintf("%d clients, %d events exactly once", res.Verify.Clients, res.Verify.Events)
		if g := res.PushGaps; g != nil {
			verified += fmt.Sprintf("; t steps ≤ %d ticks, waits ≤ %.0f ms", g.Ticks, g.WaitMs)
		}
		switch {
		case r.err != nil && res.Verify.Clients == 0:
			verified = "FAILED: " + firstLine(r.err.Error())
		case len(res.Verify.Problems) > 0:
			verified = fmt.Sprintf("FAILED: %d problems, first: %s", len(res.Verify.Problems), res.Verify.Problems[0])
		}
		fmt.Fprintf(w, "| %s | %s | %.0f | %.0f | %.1f / %.1f | %.1f | %s | %s |\n", r.load, r.server,
			res.ServerCPUPerClientSecond, res.OwnCPUPerClientSecond, res.Delivery.P50, res.Delivery.P99, msgs, verified, r.loadavg)
	}
	// The ratio of server CPU, eventstreamd to Centrifugo, per load and run.
	fmt.Fprintln(w)
	for i, a := range rows {
		for _, b := range rows[i+1:] {
			if a.run == b.run && a.load == b.load && (a.server == "centrifugo") != (b.server == "centrifugo") &&
				a.res.ServerCPUPerClientSecond > 0 && b.res.ServerCPUPerClientSecond > 0 {
				es, ce := a, b
				if es.server == "centrifugo" {
					es, ce = b, a
				}
				fmt.Fprintf(w, "run %d, %s: %s's CPU per client-second is %.2f× Centrifugo's\n", a.run+1, a.load, es.server,
					es.res.ServerCPUPerClientSecond/ce.res.ServerCPUPerClientSecond)
			}
		}
	}
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

// loadavg returns the machine's load averages, over 1, 5 and 15 minutes.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func waitReady(ctx context.Context, url string) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("%s: %s", url, resp.Status)
		}
		if time.Now().After(deadline) {
			return err
		}
		if !clock.Sleep(ctx, 100*time.Millisecond) {
			return ctx.Err()
		}
	}
}
