package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/goeventstream/eventstream/internal/api"
	"github.com/goeventstream/eventstream/internal/auth"
	"github.com/goeventstream/eventstream/internal/metrics"
	"github.com/goeventstream/eventstream/internal/stream"
)

// run is the whole program: it serves until ctx is done, then drains and
// returns. Its dependencies on the process (arguments, environment, output)
// are parameters so that tests can run it in-process.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	check := len(args) > 0 && args[0] == "healthcheck"
	if check {
		args = args[1:]
	}
	cfg, err := parseConfig(args, getenv, stdout)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	if cfg.Version {
		_, err := fmt.Fprintln(stdout, "eventstreamd", version)
		return err
	}
	if check {
		return healthcheck(ctx, cfg)
	}
	log := newLogger(cfg, stderr)
	defer func() { _ = log.Sync() }()
	if cfg.redis() && cfg.Stream.Secret == developmentSecret {
		log.Warn("the store's secret is the development secret, which anyone can read: for a local Redis only")
	}

	a, err := newApp(cfg, log)
	if err != nil {
		return err
	}
	return a.serve(ctx)
}

// app is eventstreamd built from its config: the store (opened when it
// answers), the metrics, the HTTP servers and the sweeper, ready to serve.
type app struct {
	cfg     config
	log     *zap.Logger
	store   *lateStore
	api     *api.Server
	http    *http.Server
	metrics http.Handler // served on -metrics-addr, when it is set
	sweeper *stream.Sweeper
	auth    *auth.Verifier // nil: auth off
}

// newApp builds the app of cfg.
func newApp(cfg config, log *zap.Logger) (*app, error) {
	late := &lateStore{}
	reg := prometheus.NewRegistry()
	streamSeries := cfg.MetricsMaxStreams
	if cfg.authOn() && !cfg.MetricsStreamLabels {
		streamSeries = 0 // no stream names in the metrics
	}
	m, err := metrics.New(metrics.Config{
		Registerer:      reg,
		Streams:         late,
		MaxStreamSeries: streamSeries,
		Version:         version,
		MaxStreams:      cfg.Stream.MaxStreams,
		StatsMaxAge:     cfg.MetricsStatsInterval,
	})
	if err != nil {
		return nil, err
	}
	store := m.InstrumentStore(late)
	metricsHandler := promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
	acfg := api.Config{
		Store:       store,
		Metrics:     m,
		Logger:      log.Named("api"),
		Limits:      cfg.Limits,
		CORSOrigins: cfg.CORSOrigins,
		Push:        cfg.Push,
		Admission:   cfg.Admission,
	}
	var verifier *auth.Verifier
	if cfg.authOn() {
		if verifier, err = auth.New(cfg.auth()); err != nil {
			return nil, err
		}
		acfg.Auth, acfg.OpenPrefix = verifier, cfg.AuthOpenPrefix
	}
	if cfg.MetricsAddr == "" && (!cfg.authOn() || cfg.MetricsPublic) {
		acfg.MetricsHandler = metricsHandler // on the public port
	}
	srv, err := api.New(acfg)
	if err != nil {
		return nil, err
	}
	return &app{
		cfg:     cfg,
		log:     log,
		store:   late,
		api:     srv,
		http:    newHTTPServer(withFloor(srv, cfg.BenchFloor), srv.ConnContext, log),
		metrics: metricsHandler,
		sweeper: &stream.Sweeper{
			Store:     store,
			Interval:  cfg.SweepInterval,
			OnSweep:   srv.ObserveSweep,
			OnError:   srv.SweepFailed,
			OnRecover: srv.SweepRecovered,
		},
		auth: verifier,
	}, nil
}

// reloadKeys re-reads the public keys of stream tokens (SIGHUP). A file
// that cannot be read leaves the keys in use.
func (a *app) reloadKeys() {
	if a.cfg.AuthPublicKeys == "" {
		a.log.Warn("SIGHUP: no -auth-public-keys to reload")
		return
	}
	n, err := a.auth.Reload()
	if err != nil {
		a.log.Error("auth public keys not reloaded; the keys in use stay", zap.Error(err))
		return
	}
	a.log.Info("auth public keys reloaded", zap.Int("keys", n))
}

// withFloor serves /_floor/ with floorHandler when on, before everything
// else: no router, no middleware, no metrics.
func withFloor(h http.Handler, on bool) http.Handler {
	if !on {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/_floor/") {
			floorHandler(w, r)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// floorReply is a sync reply of a typical size, with no events.
var floorReply = []byte(`{"id":"1","t":1,"epoch":"00000000-0000-4000-8000-000000000000","tps":20,"ckpt":20,"events":[]}` + "\n")

// floorHandler is the least a sync could cost over HTTP: it reads the body
// and writes a fixed reply.
func floorHandler(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	h := w.Header()
	h["Content-Type"] = []string{"application/json"}
	h["Content-Length"] = []string{strconv.Itoa(len(floorReply))}
	_, _ = w.Write(floorReply)
}

func newHTTPServer(h http.Handler, connContext func(context.Context, net.Conn) context.Context, log *zap.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ConnContext:       connContext,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      15 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          zap.NewStdLog(log.Named("http")),
	}
}

// serve listens on the configured addresses at once and serves until ctx
// is done; the store is opened meanwhile (until it is, /readyz answers 503
// and syncs store_unavailable), and the sweeper starts once it is. Then it
// drains: /readyz turns 503 while requests are still served for the drain
// delay, so that load balancers stop sending any, and in-flight requests
// get the shutdown timeout to finish.
func (a *app) serve(ctx context.Context) error {
	storeCtx, stopStore := context.WithCancel(ctx)
	defer stopStore()
	opened := make(chan error, 1)
	closeStore := func() {}
	openStore := func() {
		release, err := a.store.open(storeCtx, a.cfg, a.log)
		if err == nil {
			closeStore = release
			a.log.Info("store open", zap.String("store", storeName(a.cfg.Stream.URL)))
		}
		opened <- err
	}
	if !a.cfg.redis() {
		openStore() // memory: at once, so that the first request finds it
	}

	ln, err := net.Listen("tcp", a.cfg.Addr)
	if err != nil {
		return err
	}
	a.log.Info("listening", zap.String("addr", ln.Addr().String()), zap.String("version", version),
		zap.String("store", storeName(a.cfg.Stream.URL)), zap.Int("tick_rate", a.cfg.Stream.TickRate),
		zap.Bool("auth", a.auth != nil))
	var hup chan os.Signal // SIGHUP reloads the keys of stream tokens
	if a.auth != nil {
		hup = make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
		if a.cfg.MetricsAddr == "" && !a.cfg.MetricsPublic {
			a.log.Info("auth on: /metrics is not served on -addr; use -metrics-addr, or -metrics-public")
		}
	}

	var wg sync.WaitGroup
	defer wg.Wait()
	for _, side := range []struct {
		addr, name string
		mux        func() *http.ServeMux
	}{
		{a.cfg.DebugAddr, "debug", debugMux},
		{a.cfg.MetricsAddr, "metrics", func() *http.ServeMux {
			mux := http.NewServeMux()
			mux.Handle("GET /metrics", a.metrics)
			return mux
		}},
	} {
		if side.addr == "" {
			continue
		}
		srv, err := startSideServer(side.addr, side.mux(), a.log.Named(side.name), &wg)
		if err != nil {
			ln.Close()
			return err
		}
		defer srv.Close()
	}
	serveErr := make(chan error, 1)
	wg.Add(1)
	go func() { defer wg.Done(); serveErr <- a.http.Serve(ln) }()

	if a.cfg.redis() { // Redis may not answer yet: meanwhile, /readyz says so
		wg.Add(1)
		go func() { defer wg.Done(); openStore() }()
	}
	sweepCtx, stopSweeping := context.WithCancel(context.Background())
	defer stopSweeping()

	for done := false; !done; {
		select {
		case err := <-serveErr:
			return fmt.Errorf("serving: %w", err)
		case err := <-opened:
			if err != nil && ctx.Err() == nil {
				a.http.Close()
				return err // a store that will never open: a bad config
			}
			if err == nil {
				defer func() { closeStore() }()
				wg.Add(1)
				go func() { defer wg.Done(); a.sweeper.Run(sweepCtx) }()
			}
			opened = nil
		case <-hup:
			a.reloadKeys()
		case <-ctx.Done():
			done = true
		}
	}
	a.api.Drain()
	a.log.Info("draining", zap.Duration("delay", a.cfg.DrainDelay), zap.Duration("timeout", a.cfg.ShutdownTimeout))
	select {
	case <-time.After(a.cfg.DrainDelay):
	case err := <-serveErr:
		return fmt.Errorf("serving: %w", err)
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout)
	defer cancel()
	go a.api.ClosePush() // going away: push clients reconnect elsewhere
	if err := a.http.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutting down: %w", err)
	}
	stopStore()
	a.log.Info("stopped")
	return nil
}

func newLogger(cfg config, w io.Writer) *zap.Logger {
	encCfg := zap.NewProductionEncoderConfig()
	encCfg.TimeKey = "time"
	encCfg.EncodeTime = zapcore.ISO8601TimeEncoder
	enc := zapcore.NewJSONEncoder(encCfg)
	if cfg.LogFormat == "console" {
		encCfg.EncodeLevel = zapcore.CapitalLevelEncoder
		enc = zapcore.NewConsoleEncoder(encCfg)
	}
	core := zapcore.NewCore(enc, zapcore.Lock(zapcore.AddSync(w)), cfg.LogLevel)
	return zap.New(core, zap.ErrorOutput(zapcore.Lock(zapcore.AddSync(w))))
}

// debugMux serves the profiler, on an address of its own, apart from the
// public API, so that it can stay private.
func debugMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// startSideServer serves mux on addr until it is closed: the profiler or
// the metrics, on addresses of their own.
func startSideServer(addr string, mux *http.ServeMux, log *zap.Logger, wg *sync.WaitGroup) (*http.Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s address: %w", log.Name(), err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	log.Info("serving apart", zap.String("addr", ln.Addr().String()))
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("serving failed", zap.Error(err))
		}
	}()
	return srv, nil
}
