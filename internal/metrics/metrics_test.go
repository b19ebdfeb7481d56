package metrics_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/goeventstream/eventstream/internal/metrics"
	"github.com/goeventstream/eventstream/internal/stream"
)

// scripted is a store whose answers the test sets.
type scripted struct {
	stream.Store
	err   error
	stats stream.Stats
}

func (s *scripted) Sync(context.Context, *stream.SyncRequest) (*stream.SyncResult, error) {
	return &stream.SyncResult{}, s.err
}

func (s *scripted) Stats(context.Context, int) (stream.Stats, error) { return s.stats, s.err }

func TestInstrumentStoreCountsFailuresNotRefusals(t *testing.T) {
	backend := &scripted{}
	reg := prometheus.NewRegistry()
	m, err := metrics.New(metrics.Config{Registerer: reg, Streams: backend, MaxStreamSeries: 10, MaxStreams: 500})
	require.NoError(t, err)
	store := m.InstrumentStore(backend)

	for _, give := range []error{nil, stream.ErrEventCap, wrapped(stream.ErrUnavailable), stream.ErrUnavailable} {
		backend.err = give
		_, _ = store.Sync(context.Background(), &stream.SyncRequest{})
	}
	backend.err = nil
	assert.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP eventstreamd_store_errors_total Store operations that failed because the store could not serve (not refusals such as a full stream).
# TYPE eventstreamd_store_errors_total counter
eventstreamd_store_errors_total{op="ping"} 0
eventstreamd_store_errors_total{op="stats"} 0
eventstreamd_store_errors_total{op="sweep"} 0
eventstreamd_store_errors_total{op="sync"} 2
# HELP eventstreamd_store_streams_max The most streams this replica will hold (-max-streams).
# TYPE eventstreamd_store_streams_max gauge
eventstreamd_store_streams_max 500
`), "eventstreamd_store_errors_total", "eventstreamd_store_streams_max"))
}

// wrapped is err as a backend returns it: joined with the cause.
func wrapped(err error) error { return errors.Join(errors.New("dial tcp: refused"), err) }

// TestScrapeFailureIsReported: a store that cannot be read fails the
// scrape of its series, visibly (eventstreamd_store_up 0), instead of
// exporting zeros; the scrape itself succeeds, so the replica is not seen
// as down.
func TestScrapeFailureIsReported(t *testing.T) {
	backend := &scripted{err: stream.ErrUnavailable}
	reg := prometheus.NewRegistry()
	_, err := metrics.New(metrics.Config{Registerer: reg, Streams: backend, MaxStreamSeries: 10})
	require.NoError(t, err)
	_, err = reg.Gather()
	require.NoError(t, err)
	assert.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP eventstreamd_store_up 1 if the store answered the last read of the streams' statistics, else 0.
# TYPE eventstreamd_store_up gauge
eventstreamd_store_up 0
`), "eventstreamd_store_up", "eventstreamd_store_streams", "eventstreamd_store_clients_connected"))

	backend.err = nil
	assert.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP eventstreamd_store_up 1 if the store answered the last read of the streams' statistics, else 0.
# TYPE eventstreamd_store_up gauge
eventstreamd_store_up 1
# HELP eventstreamd_store_streams Streams held.
# TYPE eventstreamd_store_streams gauge
eventstreamd_store_streams 0
`), "eventstreamd_store_up", "eventstreamd_store_streams"))
}

// counting is a store that counts its Stats calls.
type counting struct {
	stream.Store
	calls int
}

func (c *counting) Stats(context.Context, int) (stream.Stats, error) {
	c.calls++
	return stream.Stats{Streams: c.calls}, nil
}

// TestScrapesReadTheStoreOncePerMaxAge: however often Prometheus (or
// anyone) scrapes, the store is read at most once per StatsMaxAge.
func TestScrapesReadTheStoreOncePerMaxAge(t *testing.T) {
	backend := &counting{}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	reg := prometheus.NewRegistry()
	_, err := metrics.New(metrics.Config{Registerer: reg, Streams: backend, StatsMaxAge: 5 * time.Second,
		Now: func() time.Time { return now }})
	require.NoError(t, err)
	for range 50 {
		_, err := reg.Gather()
		require.NoError(t, err)
	}
	assert.Equal(t, 1, backend.calls)
	now = now.Add(5 * time.Second)
	_, err = reg.Gather()
	require.NoError(t, err)
	assert.Equal(t, 2, backend.calls, "read again once the last read is old")
}

func TestPerStreamSeriesAreCapped(t *testing.T) {
	backend := &scripted{stats: stream.Stats{Streams: 3, Clients: 4, PerStream: []stream.StreamStats{
		{Stream: "a", T: 7, Clients: 3}, {Stream: "b", T: 9, Clients: 1},
	}}}
	reg := prometheus.NewRegistry()
	_, err := metrics.New(metrics.Config{Registerer: reg, Streams: backend, MaxStreamSeries: 2})
	require.NoError(t, err)
	assert.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP eventstreamd_metrics_streams_omitted Streams left out of the per-stream series by -metrics-max-streams.
# TYPE eventstreamd_metrics_streams_omitted gauge
eventstreamd_metrics_streams_omitted 1
# HELP eventstreamd_stream_tick The tick in progress of a stream.
# TYPE eventstreamd_stream_tick gauge
eventstreamd_stream_tick{stream="a"} 7
eventstreamd_stream_tick{stream="b"} 9
# HELP eventstreamd_store_clients_connected Connected clients in all streams.
# TYPE eventstreamd_store_clients_connected gauge
eventstreamd_store_clients_connected 4
`), "eventstreamd_metrics_streams_omitted", "eventstreamd_stream_tick", "eventstreamd_store_clients_connected"))
}

// TestObserveRequestConcurrently: requests observed at once, of routes and
// statuses seen for the first time, are all counted.
func TestObserveRequestConcurrently(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := metrics.New(metrics.Config{Registerer: reg, Streams: &scripted{}})
	require.NoError(t, err)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 100 {
				m.ObserveRequest("/r"+strconv.Itoa(i%5), "GET", 200+g%2, time.Millisecond)
			}
		}()
	}
	wg.Wait()
	n, err := testutil.GatherAndCount(reg, "eventstreamd_http_requests_total")
	require.NoError(t, err)
	assert.Equal(t, 10, n, "5 routes × 2 statuses")
	var total float64
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == "eventstreamd_http_requests_total" {
			for _, s := range mf.GetMetric() {
				total += s.GetCounter().GetValue()
			}
		}
	}
	assert.Equal(t, 800.0, total)
}

// BenchmarkObserveRequest measures what the request metrics cost a sync:
// a route, method and status seen before.
func BenchmarkObserveRequest(b *testing.B) {
	m, err := metrics.New(metrics.Config{Registerer: prometheus.NewRegistry(), Streams: &scripted{}})
	require.NoError(b, err)
	for _, status := range []int{200, 400, 404, 429} {
		for _, route := range []string{"/{stream}/{client}/{tick}", "/healthz", "/{stream}/snapshot"} {
			m.ObserveRequest(route, "GET", status, time.Millisecond)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		m.ObserveRequest("/{stream}/{client}/{tick}", "GET", 200, time.Millisecond)
	}
}
