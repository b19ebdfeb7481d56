package api_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/goeventstream/eventstream/internal/api"
	"github.com/goeventstream/eventstream/internal/metrics"
	"github.com/goeventstream/eventstream/internal/stream"
)

// gate is a store whose syncs wait until the test lets them go.
type gate struct {
	stream.Store
	entered chan struct{}
	release chan struct{}
}

func (g *gate) Sync(ctx context.Context, req *stream.SyncRequest) (*stream.SyncResult, error) {
	g.entered <- struct{}{}
	<-g.release
	return g.Store.Sync(ctx, req)
}

// TestInflightBytesAreBounded: syncs in progress hold at most
// MaxInflightBytes together; one that does not fit is answered 503
// server_busy at once, and what a sync held is given back when it is done.
func TestInflightBytesAreBounded(t *testing.T) {
	mem, err := stream.NewMemoryStore(stream.DefaultConfig())
	require.NoError(t, err)
	g := &gate{Store: mem, entered: make(chan struct{}, 1), release: make(chan struct{})}
	limits := api.DefaultLimits()
	limits.MaxSnapshotBytes = 1
	limits.MaxInflightBytes = limits.MaxBodyBytes + int64(limits.MaxReplyBytes) // room for one sync
	m, err := metrics.New(metrics.Config{Registerer: prometheus.NewRegistry(), Streams: mem})
	require.NoError(t, err)
	srv, err := api.New(api.Config{Store: g, Metrics: m, MetricsHandler: http.NotFoundHandler(), Limits: limits})
	require.NoError(t, err)
	do := func(target string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
		return rec
	}

	first := make(chan *httptest.ResponseRecorder)
	go func() { first <- do("/s/a/0") }()
	<-g.entered // the first sync holds its reservation

	busy := do("/s/b/0")
	require.Equal(t, http.StatusServiceUnavailable, busy.Code, busy.Body.String())
	assert.Contains(t, busy.Body.String(), `"server_busy"`)
	assert.Equal(t, "1", busy.Header().Get("Retry-After"))

	close(g.release)
	require.Equal(t, http.StatusOK, (<-first).Code)
	for range 3 { // every reservation was given back
		go func() { <-g.entered }()
		require.Equal(t, http.StatusOK, do("/s/b/0").Code)
	}
}
