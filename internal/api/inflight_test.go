package api_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

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

// gatedServer is a server with room for one sync in flight, whose store
// syncs wait at g until released.
func gatedServer(t *testing.T, wait time.Duration) (g *gate, do func(ctx context.Context, target string) *httptest.ResponseRecorder) {
	mem, err := stream.NewMemoryStore(stream.DefaultConfig())
	require.NoError(t, err)
	g = &gate{Store: mem, entered: make(chan struct{}, 1), release: make(chan struct{})}
	limits := api.DefaultLimits()
	limits.MaxSnapshotBytes = 1
	limits.MaxInflightBytes = limits.MaxBodyBytes + int64(limits.MaxReplyBytes) // room for one sync
	limits.MaxInflightWait = wait
	m, err := metrics.New(metrics.Config{Registerer: prometheus.NewRegistry(), Streams: mem})
	require.NoError(t, err)
	srv, err := api.New(api.Config{Store: g, Metrics: m, MetricsHandler: http.NotFoundHandler(), Limits: limits})
	require.NoError(t, err)
	return g, func(ctx context.Context, target string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, httptest.NewRequestWithContext(ctx, http.MethodGet, target, nil))
		return rec
	}
}

// TestInflightBytesAreBounded: syncs in progress hold at most
// MaxInflightBytes together; with no MaxInflightWait, one that does not
// fit is answered 503 server_busy at once, and what a sync held is given
// back when it is done.
func TestInflightBytesAreBounded(t *testing.T) {
	g, doCtx := gatedServer(t, 0)
	do := func(target string) *httptest.ResponseRecorder { return doCtx(context.Background(), target) }

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

// TestInflightWaitServesABurstInTurn: a sync that does not fit waits for
// the memory of the one before it instead of being refused, and is served
// when it is given back; one whose wait ends first, or whose client goes
// away, is answered server_busy and holds nothing.
func TestInflightWaitServesABurstInTurn(t *testing.T) {
	g, do := gatedServer(t, time.Hour)
	first := make(chan *httptest.ResponseRecorder)
	go func() { first <- do(context.Background(), "/s/a/0") }()
	<-g.entered // the first sync holds the only room

	second := make(chan *httptest.ResponseRecorder)
	go func() { second <- do(context.Background(), "/s/b/0") }()
	gone, leave := context.WithCancel(context.Background())
	third := make(chan *httptest.ResponseRecorder)
	go func() { third <- do(gone, "/s/c/0") }()
	leave() // its client went away while it waited
	rec := <-third
	require.Equal(t, http.StatusServiceUnavailable, rec.Code, rec.Body.String())
	assert.Contains(t, rec.Body.String(), `"server_busy"`)

	g.release <- struct{}{} // the first is answered, and the second gets its room
	require.Equal(t, http.StatusOK, (<-first).Code)
	<-g.entered
	g.release <- struct{}{}
	rec = <-second
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())

	// A wait that ends is a refusal.
	g, do = gatedServer(t, time.Millisecond)
	go func() { first <- do(context.Background(), "/s/a/0") }()
	<-g.entered
	rec = do(context.Background(), "/s/b/0")
	require.Equal(t, http.StatusServiceUnavailable, rec.Code, rec.Body.String())
	close(g.release)
	require.Equal(t, http.StatusOK, (<-first).Code)
}
