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

	backend, closeStore, err := newStore(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer closeStore()
	reg := prometheus.NewRegistry()
	m, err := metrics.New(metrics.Config{
		Registerer: reg,
		Streams:    backend,
		MaxStreams: cfg.MetricsMaxStreams,
		Version:    version,
		StreamCap:  cfg.Stream.MaxStreams,
	})
	if err != nil {
		return err
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
		return err
	}

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	httpSrv := &http.Server{
		Handler:           srv,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      15 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          zap.NewStdLog(log.Named("http")),
	}
	log.Info("listening", zap.String("addr", ln.Addr().String()), zap.String("version", version),
		zap.String("store", storeName(cfg.Store)), zap.Int("tick_rate", cfg.Stream.TickRate))

	var wg sync.WaitGroup
	defer wg.Wait()
	if cfg.DebugAddr != "" {
		debugSrv, err := startDebugServer(cfg.DebugAddr, log.Named("debug"), &wg)
		if err != nil {
			return err
		}
		defer debugSrv.Close()
	}
	sweepCtx, stopSweeping := context.WithCancel(context.Background())
	defer stopSweeping()
	sweepLog := log.Named("stream")
	sweeper := &stream.Sweeper{
		Store:    store,
		Interval: cfg.SweepInterval,
		OnSweep: func(res stream.SweepResult) {
			m.ObserveSweep(res)
			for _, d := range res.Disconnected {
				sweepLog.Info("client disconnected", zap.String("stream", d.Stream),
					zap.String("public_id", d.PublicID), zap.Int64("tick", d.T))
			}
			for _, name := range res.Expired {
				sweepLog.Info("stream expired", zap.String("stream", name))
			}
		},
		OnError: func(err error) {
			m.SweepFailed()
			sweepLog.Error("sweep failed", zap.Error(err))
		},
	}
	wg.Add(2)
	go func() { defer wg.Done(); sweeper.Run(sweepCtx) }()
	serveErr := make(chan error, 1)
	go func() { defer wg.Done(); serveErr <- httpSrv.Serve(ln) }()

	select {
	case err := <-serveErr:
		return fmt.Errorf("serving: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down", zap.Duration("timeout", cfg.ShutdownTimeout))
	srv.Drain()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := httpSrv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutting down: %w", err)
	}
	log.Info("stopped")
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
	if cfg.Store == "memory" {
		s, err := stream.NewMemoryStore(cfg.Stream)
		return s, func() {}, err
	}
	rcfg := stream.RedisConfig{Config: cfg.Stream, URL: cfg.Store, Prefix: cfg.StorePrefix, Secret: cfg.StoreSecret}
	for {
		s, err := stream.NewRedisStore(rcfg)
		if err == nil {
			return s, s.Close, nil
		}
		if !errors.Is(err, stream.ErrUnavailable) {
			return nil, nil, err
		}
		log.Warn("waiting for the store", zap.String("store", storeName(cfg.Store)), zap.Error(err))
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
