package api_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zapcore"

	"github.com/goeventstream/eventstream/internal/metrics"
	"github.com/goeventstream/eventstream/internal/stream"
)

const secret = "s3cr3t-private-id"

func TestMetrics(t *testing.T) { byConn(t, testMetrics) }

func testMetrics(t *testing.T, conn bool) {
	h := newHarness(t)
	if conn {
		h.onConnection() // the requests share the connection's routing context
	}
	h.sync("/crowded/"+secret+"/0", `{"events":[{"type":"m"},{"type":"m"}]}`)
	h.sync("/crowded/b/0", "")
	h.sync("/quiet/a/0", "")
	h.do(http.MethodPost, "/crowded/a/x", "")
	h.do(http.MethodGet, "/nope", "")
	h.clock.Advance(time.Second)

	assert.NoError(t, testutil.GatherAndCompare(h.reg, strings.NewReader(`
# HELP eventstreamd_store_events_appended_total Events appended to streams, by kind: reset, connect, disconnect, client.
# TYPE eventstreamd_store_events_appended_total counter
eventstreamd_store_events_appended_total{kind="client"} 2
eventstreamd_store_events_appended_total{kind="connect"} 3
eventstreamd_store_events_appended_total{kind="disconnect"} 0
eventstreamd_store_events_appended_total{kind="reset"} 2
# HELP eventstreamd_store_streams_created_total Streams created.
# TYPE eventstreamd_store_streams_created_total counter
eventstreamd_store_streams_created_total 2
# HELP eventstreamd_stream_clients Connected clients of a stream.
# TYPE eventstreamd_stream_clients gauge
eventstreamd_stream_clients{stream="crowded"} 2
eventstreamd_stream_clients{stream="quiet"} 1
# HELP eventstreamd_stream_tick The tick in progress of a stream.
# TYPE eventstreamd_stream_tick gauge
eventstreamd_stream_tick{stream="crowded"} 21
eventstreamd_stream_tick{stream="quiet"} 21
# HELP eventstreamd_store_streams Streams held.
# TYPE eventstreamd_store_streams gauge
eventstreamd_store_streams 2
# HELP eventstreamd_store_clients_connected Connected clients in all streams.
# TYPE eventstreamd_store_clients_connected gauge
eventstreamd_store_clients_connected 3
# HELP eventstreamd_http_rejections_total Requests answered with an error, by error code.
# TYPE eventstreamd_http_rejections_total counter
eventstreamd_http_rejections_total{code="bad_client"} 0
eventstreamd_http_rejections_total{code="bad_origin"} 0
eventstreamd_http_rejections_total{code="bad_request"} 0
eventstreamd_http_rejections_total{code="bad_stream"} 0
eventstreamd_http_rejections_total{code="bad_tick"} 1
eventstreamd_http_rejections_total{code="epoch_mismatch"} 0
eventstreamd_http_rejections_total{code="forbidden"} 0
eventstreamd_http_rejections_total{code="internal"} 0
eventstreamd_http_rejections_total{code="method_not_allowed"} 0
eventstreamd_http_rejections_total{code="not_found"} 1
eventstreamd_http_rejections_total{code="rate_limited"} 0
eventstreamd_http_rejections_total{code="reserved_type"} 0
eventstreamd_http_rejections_total{code="server_busy"} 0
eventstreamd_http_rejections_total{code="server_full"} 0
eventstreamd_http_rejections_total{code="snapshot_mismatch"} 0
eventstreamd_http_rejections_total{code="store_unavailable"} 0
eventstreamd_http_rejections_total{code="store_unknown"} 0
eventstreamd_http_rejections_total{code="stream_full"} 0
eventstreamd_http_rejections_total{code="token_expired"} 0
eventstreamd_http_rejections_total{code="too_large"} 0
eventstreamd_http_rejections_total{code="too_many_events"} 0
eventstreamd_http_rejections_total{code="unauthorized"} 0
eventstreamd_http_rejections_total{code="upgrade_required"} 0
`),
		"eventstreamd_store_events_appended_total", "eventstreamd_store_streams_created_total",
		"eventstreamd_stream_clients", "eventstreamd_stream_tick", "eventstreamd_store_streams",
		"eventstreamd_store_clients_connected", "eventstreamd_http_rejections_total"))

	assert.NoError(t, testutil.GatherAndCompare(h.reg, strings.NewReader(`
# HELP eventstreamd_http_requests_total HTTP requests by route pattern, method and status code.
# TYPE eventstreamd_http_requests_total counter
eventstreamd_http_requests_total{method="GET",route="unmatched",status="404"} 1
eventstreamd_http_requests_total{method="POST",route="/{stream}/{client}/{tick}",status="200"} 3
eventstreamd_http_requests_total{method="POST",route="/{stream}/{client}/{tick}",status="400"} 1
`), "eventstreamd_http_requests_total"))

	// Expiry: the stream's series go with it.
	h.clock.Advance(10 * time.Second)
	h.sync("/quiet/a/0", "")
	res, err := h.store.Sweep(context.Background())
	require.NoError(t, err)
	h.metrics.ObserveSweep(res)
	h.clock.Advance(time.Minute)
	h.sync("/quiet/a/0", "")
	res, err = h.store.Sweep(context.Background())
	require.NoError(t, err)
	h.metrics.ObserveSweep(res)
	require.Equal(t, []string{"crowded"}, res.Expired)

	assert.NoError(t, testutil.GatherAndCompare(h.reg, strings.NewReader(`
# HELP eventstreamd_stream_clients Connected clients of a stream.
# TYPE eventstreamd_stream_clients gauge
eventstreamd_stream_clients{stream="quiet"} 1
# HELP eventstreamd_store_streams_expired_total Streams deleted after their TTL with no connected client.
# TYPE eventstreamd_store_streams_expired_total counter
eventstreamd_store_streams_expired_total 1
`), "eventstreamd_stream_clients", "eventstreamd_store_streams_expired_total"))

	body := h.do(http.MethodGet, "/metrics", "").Body.String()
	assert.NotContains(t, body, secret, "a private id in /metrics")
	assert.Contains(t, body, "go_goroutines")
	assert.Contains(t, body, `eventstreamd_build_info{goversion=`)
}

func TestMetricsMaxStreams(t *testing.T) {
	h := newHarness(t)
	for i := range 5 {
		h.sync(fmt.Sprintf("/s%d/a/0", i), "")
	}
	h.sync("/s3/b/0", "")

	reg := prometheus.NewRegistry()
	_, err := metrics.New(metrics.Config{Registerer: reg, Streams: h.store, MaxStreamSeries: 2})
	require.NoError(t, err)
	assert.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP eventstreamd_stream_clients Connected clients of a stream.
# TYPE eventstreamd_stream_clients gauge
eventstreamd_stream_clients{stream="s0"} 1
eventstreamd_stream_clients{stream="s3"} 2
# HELP eventstreamd_metrics_streams_omitted Streams left out of the per-stream series by -metrics-max-streams.
# TYPE eventstreamd_metrics_streams_omitted gauge
eventstreamd_metrics_streams_omitted 3
`), "eventstreamd_stream_clients", "eventstreamd_metrics_streams_omitted"), "the most crowded streams are kept")
}

func TestLogs(t *testing.T) {
	h := newHarness(t)
	h.sync("/s/"+secret+"/0", `{"events":[{"type":"m"}]}`)
	h.do(http.MethodPost, "/s/"+secret+"/bad", "")
	h.do(http.MethodPost, "/s/"+secret+"/0", `{"events":[{"type":"_x"}]}`)
	h.do(http.MethodGet, "/"+secret, "")

	created := h.logs.FilterMessage("stream created").All()
	require.Len(t, created, 1)
	assert.Equal(t, "s", created[0].ContextMap()["stream"])
	connected := h.logs.FilterMessage("client connected").All()
	require.Len(t, connected, 1)
	assert.Equal(t, map[string]any{"stream": "s", "public_id": "1", "tick": int64(1)}, connected[0].ContextMap())

	requests := h.logs.FilterMessage("request").All()
	require.Len(t, requests, 4, "each request is logged at debug")
	assert.Equal(t, "/{stream}/{client}/{tick}", requests[0].ContextMap()["route"])
	assert.Equal(t, int64(400), requests[1].ContextMap()["status"])

	for _, e := range h.logs.All() {
		assert.NotContains(t, e.Message, secret)
		assert.NotContains(t, fmt.Sprint(e.ContextMap()), secret, "a private id was logged in %q", e.Message)
	}
}

// TestClientLinesAtDebug: a client's connect and disconnect are logged at
// debug, since a crowd joining writes thousands a second; the operator
// counts them with eventstreamd_store_events_appended_total at any level.
// A stream's creation and expiry, one a game, stay at info.
func TestClientLinesAtDebug(t *testing.T) {
	h := newHarness(t)
	for i := range 50 {
		h.sync(fmt.Sprintf("/s/p%d/0", i), "")
	}
	h.server.ObserveSweep(stream.SweepResult{
		Disconnected: []stream.Disconnect{{Stream: "s", PublicID: "1", T: 30}},
		Expired:      []string{"s"},
	})

	levels := map[string]map[zapcore.Level]int{}
	for _, e := range h.logs.All() {
		if levels[e.Message] == nil {
			levels[e.Message] = map[zapcore.Level]int{}
		}
		levels[e.Message][e.Level]++
	}
	assert.Equal(t, map[zapcore.Level]int{zapcore.DebugLevel: 50}, levels["client connected"])
	assert.Equal(t, map[zapcore.Level]int{zapcore.DebugLevel: 1}, levels["client disconnected"])
	assert.Equal(t, map[zapcore.Level]int{zapcore.InfoLevel: 1}, levels["stream created"])
	assert.Equal(t, map[zapcore.Level]int{zapcore.InfoLevel: 1}, levels["stream expired"])
	assert.NoError(t, testutil.GatherAndCompare(h.reg, strings.NewReader(`
# HELP eventstreamd_store_events_appended_total Events appended to streams, by kind: reset, connect, disconnect, client.
# TYPE eventstreamd_store_events_appended_total counter
eventstreamd_store_events_appended_total{kind="client"} 0
eventstreamd_store_events_appended_total{kind="connect"} 50
eventstreamd_store_events_appended_total{kind="disconnect"} 1
eventstreamd_store_events_appended_total{kind="reset"} 1
`), "eventstreamd_store_events_appended_total"), "every connect and disconnect is counted")
}

// TestSweepFailuresAreLoggedOnce: an outage of the store makes every
// sweep fail, four times a second; the log has its start and its end.
func TestSweepFailuresAreLoggedOnce(t *testing.T) {
	h := newHarness(t)
	for range 100 {
		h.server.SweepFailed(errors.New("connection refused"))
	}
	h.server.SweepRecovered()
	h.server.SweepFailed(errors.New("connection refused"))

	var msgs []string
	for _, e := range h.logs.All() {
		msgs = append(msgs, e.Message)
	}
	assert.Equal(t, []string{
		"sweeps fail; the next failures are counted, not logged",
		"sweeps succeed again",
		"sweeps fail; the next failures are counted, not logged",
	}, msgs)
	assert.Equal(t, int64(100), h.logs.FilterMessage("sweeps succeed again").All()[0].ContextMap()["failures"])
	assert.NoError(t, testutil.GatherAndCompare(h.reg, strings.NewReader(`
# HELP eventstreamd_store_sweep_errors_total Presence sweeps that failed.
# TYPE eventstreamd_store_sweep_errors_total counter
eventstreamd_store_sweep_errors_total 101
`), "eventstreamd_store_sweep_errors_total"))
}

// TestRefusedMethodsCountUnderTheirRoute: POST /healthz is a 405 of the
// route /healthz, not an unmatched request.
func TestRefusedMethodsCountUnderTheirRoute(t *testing.T) {
	byConn(t, testRefusedMethodsCountUnderTheirRoute)
}

func testRefusedMethodsCountUnderTheirRoute(t *testing.T, conn bool) {
	h := newHarness(t)
	if conn {
		h.onConnection()
	}
	rec := h.do(http.MethodPost, "/healthz", "")
	require.Equal(t, http.StatusMethodNotAllowed, rec.Code)
	assert.Equal(t, "GET, HEAD", rec.Header().Get("Allow"))
	rec = h.do("BREW", "/readyz", "")
	require.Equal(t, http.StatusMethodNotAllowed, rec.Code)
	assert.Equal(t, "GET, HEAD", rec.Header().Get("Allow"))
	assert.NoError(t, testutil.GatherAndCompare(h.reg, strings.NewReader(`
# HELP eventstreamd_http_requests_total HTTP requests by route pattern, method and status code.
# TYPE eventstreamd_http_requests_total counter
eventstreamd_http_requests_total{method="POST",route="/healthz",status="405"} 1
eventstreamd_http_requests_total{method="other",route="unmatched",status="405"} 1
`), "eventstreamd_http_requests_total"))
}
