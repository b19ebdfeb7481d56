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
	"net/url"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/goeventstream/eventstream/internal/api"
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

	a, err := newApp(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer a.close()
	return a.serve(ctx)
}

// app is eventstreamd built from its config: the store, the metrics, the
// HTTP server and the sweeper, ready to serve.
type app struct {
	cfg        config
	log        *zap.Logger
	closeStore func()
	api        *api.Server
	http       *http.Server
	sweeper    *stream.Sweeper
}

// newApp builds the app of cfg. A Redis store that does not answer yet is
// waited for until ctx ends.
func newApp(ctx context.Context, cfg config, log *zap.Logger) (*app, error) {
	backend, closeStore, err := newStore(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	m, err := metrics.New(metrics.Config{
		Registerer:      reg,
		Streams:         backend,
		MaxStreamSeries: cfg.MetricsMaxStreams,
		Version:         version,
		MaxStreams:      cfg.Stream.MaxStreams,
	})
	if err != nil {
		closeStore()
		return nil, err
	}
	store := m.InstrumentStore(backend)
	srv, err := api.New(api.Config{
		Store:          store,
		Metrics:        m,
		MetricsHandler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}),
		Logger:         log.Named("api"),
		Limits:         cfg.Limits,
		CORSOrigins:    cfg.CORSOrigins,
	})
	if err != nil {
		closeStore()
		return nil, err
	}
	return &app{
		cfg:        cfg,
		log:        log,
		closeStore: closeStore,
		api:        srv,
		http: &http.Server{
			Handler:           srv,
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       15 * time.Second,
			WriteTimeout:      15 * time.Second,
			IdleTimeout:       2 * time.Minute,
			MaxHeaderBytes:    16 << 10,
			ErrorLog:          zap.NewStdLog(log.Named("http")),
		},
		sweeper: &stream.Sweeper{
			Store:     store,
			Interval:  cfg.SweepInterval,
			OnSweep:   srv.ObserveSweep,
			OnError:   srv.SweepFailed,
			OnRecover: srv.SweepRecovered,
		},
	}, nil
}

func (a *app) close() { a.closeStore() }

// serve listens on the configured address and serves until ctx is done,
// then drains: /readyz turns 503 and in-flight requests get the shutdown
// timeout to finish.
func (a *app) serve(ctx context.Context) error {
	ln, err := net.Listen("tcp", a.cfg.Addr)
	if err != nil {
		return err
	}
	a.log.Info("listening", zap.String("addr", ln.Addr().String()), zap.String("version", version),
		zap.String("store", storeName(a.cfg.Stream.URL)), zap.Int("tick_rate", a.cfg.Stream.TickRate))

	var wg sync.WaitGroup
	defer wg.Wait()
	if a.cfg.DebugAddr != "" {
		debugSrv, err := startDebugServer(a.cfg.DebugAddr, a.log.Named("debug"), &wg)
		if err != nil {
			ln.Close()
			return err
		}
		defer debugSrv.Close()
	}
	sweepCtx, stopSweeping := context.WithCancel(context.Background())
	defer stopSweeping()
	wg.Add(2)
	go func() { defer wg.Done(); a.sweeper.Run(sweepCtx) }()
	serveErr := make(chan error, 1)
	go func() { defer wg.Done(); serveErr <- a.http.Serve(ln) }()

	select {
	case err := <-serveErr:
		return fmt.Errorf("serving: %w", err)
	case <-ctx.Done():
	}
	timeout := a.cfg.ShutdownTimeout
	a.log.Info("shutting down", zap.Duration("timeout", timeout))
	a.api.Drain()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := a.http.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutting down: %w", err)
	}
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

// startDebugServer serves the profiler on its own address, apart from the
// public API, so that it can stay private.
func startDebugServer(addr string, log *zap.Logger, wg *sync.WaitGroup) (*http.Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("debug address: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	log.Info("debug listening", zap.String("addr", ln.Addr().String()))
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("debug server failed", zap.Error(err))
		}
	}()
	return srv, nil
}

// newStore makes the store cfg names and a function that releases it. A
// Redis that cannot be reached yet (it may be starting too) is retried
// every second until ctx ends.
func newStore(ctx context.Context, cfg config, log *zap.Logger) (stream.Store, func(), error) {
	if !cfg.redis() {
		s, err := stream.NewMemoryStore(cfg.Stream.Config)
		return s, func() {}, err
	}
	for {
		s, err := stream.NewRedisStore(cfg.Stream)
		if err == nil {
			return s, s.Close, nil
		}
		if !errors.Is(err, stream.ErrUnavailable) {
			return nil, nil, err
		}
		log.Warn("waiting for the store", zap.String("store", storeName(cfg.Stream.URL)), zap.Error(err))
		select {
		case <-ctx.Done():
			return nil, nil, fmt.Errorf("the store never answered: %w", err)
		case <-time.After(time.Second):
		}
	}
}

// storeName names the store for logs without the password a URL may hold.
func storeName(store string) string {
	u, err := url.Parse(store)
	if err != nil || u.Scheme == "" {
		return store
	}
	u.User = nil
	return u.String()
}
