// Package apitest gives the tests of packages that talk to a server the
// server users run, not a fake of it: the real handler (internal/api over
// a store) in process (Handler, NewServer, Start), or the real binary on a
// free port (Binary, StartBinary).
package apitest

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/goeventstream/eventstream/internal/api"
	"github.com/goeventstream/eventstream/internal/auth"
	"github.com/goeventstream/eventstream/internal/metrics"
	"github.com/goeventstream/eventstream/internal/stream"
)

// Handler returns the API over store, with metrics on a registry of its
// own, served on /metrics.
func Handler(store stream.Store) (http.Handler, error) { return AuthHandler(store, nil, nil) }

// AuthHandler is Handler with auth on: every stream needs a token that v
// verifies (docs/protocol.md, "Tokens"). A nil v leaves auth off; edit,
// if not nil, changes the configuration (its push or admission).
func AuthHandler(store stream.Store, v *auth.Verifier, edit func(*api.Config)) (http.Handler, error) {
	reg := prometheus.NewRegistry()
	m, err := metrics.New(metrics.Config{Registerer: reg, Streams: store})
	if err != nil {
		return nil, err
	}
	cfg := api.Config{Store: store, Metrics: m, MetricsHandler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}),
		Limits: api.DefaultLimits(), Auth: v, Push: api.DefaultPushConfig()}
	if edit != nil {
		edit(&cfg)
	}
	return api.New(cfg)
}

// NewServer serves the API over a new memory store configured with cfg,
// on loopback, until the test ends. wrap, if not nil, wraps the handler
// (a proxy that drops replies, say).
func NewServer(tb testing.TB, cfg stream.Config, wrap func(http.Handler) http.Handler) (*httptest.Server, *stream.MemoryStore) {
	tb.Helper()
	store, err := stream.NewMemoryStore(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	h, err := Handler(store)
	if err != nil {
		tb.Fatal(err)
	}
	if wrap != nil {
		h = wrap(h)
	}
	srv := httptest.NewServer(h)
	tb.Cleanup(func() {
		http.DefaultClient.CloseIdleConnections()
		srv.Close()
	})
	return srv, store
}

// Start serves the API over a new memory store with the protocol's
// defaults on the real clock, on loopback, for runnable examples, which
// have no testing.TB. It returns the server's URL and a function that
// stops it.
func Start() (url string, stop func()) {
	store, err := stream.NewMemoryStore(stream.DefaultConfig())
	if err != nil {
		panic(err)
	}
	h, err := Handler(store)
	if err != nil {
		panic(err)
	}
	srv := httptest.NewServer(h)
	return srv.URL, func() {
		http.DefaultClient.CloseIdleConnections()
		srv.Close()
	}
}
