package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/goeventstream/eventstream/internal/api"
	"github.com/goeventstream/eventstream/internal/clock"
	"github.com/goeventstream/eventstream/internal/metrics"
	"github.com/goeventstream/eventstream/internal/protocol"
	"github.com/goeventstream/eventstream/internal/redistest"
	"github.com/goeventstream/eventstream/internal/stream"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// harness is an api.Server over a memory store on a fake clock, with its
// metrics registry and an observed logger.
type harness struct {
	t       testing.TB
	server  *api.Server
	store   stream.Store
	clock   *clock.Fake
	reg     *prometheus.Registry
	metrics *metrics.Metrics
	logs    *observer.ObservedLogs
	conn    context.Context // when set, the context of the connection do's requests come on
}

type option func(*api.Config, *stream.Config)

// storeWrapper, put in api.Config.Store by an option, makes the harness
// wrap its store with wrap.
type storeWrapper struct {
	stream.Store // nil: only wrap is used
	wrap         func(stream.Store) stream.Store
}

// wrapStore is an option that wraps the harness's store.
func wrapStore(wrap func(stream.Store) stream.Store) option {
	return func(c *api.Config, _ *stream.Config) { c.Store = storeWrapper{wrap: wrap} }
}

// redisURL, when set by a test, makes newHarness use a Redis store there.
type redisURL string

// newStore returns the store of a harness: memory, or Redis at url.
func newStore(t testing.TB, cfg stream.Config, url redisURL) stream.Store {
	t.Helper()
	if url == "" {
		s, err := stream.NewMemoryStore(cfg)
		require.NoError(t, err)
		return s
	}
	rcfg := stream.DefaultRedisConfig()
	rcfg.Config, rcfg.URL, rcfg.Secret = cfg, string(url), redistest.Secret
	rcfg.Prefix = redistest.KeyPrefix()
	s, err := stream.NewRedisStore(rcfg)
	require.NoError(t, err)
	t.Cleanup(s.Close)
	return s
}

func newHarness(t testing.TB, opts ...option) *harness {
	t.Helper()
	return newHarnessOn(t, "", opts...)
}

func newHarnessOn(t testing.TB, url redisURL, opts ...option) *harness {
	t.Helper()
	fake := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	scfg := stream.DefaultConfig()
	scfg.Clock = fake
	acfg := api.Config{Limits: api.DefaultLimits()}
	for _, o := range opts {
		o(&acfg, &scfg)
	}
	store := newStore(t, scfg, url)
	if w, ok := acfg.Store.(storeWrapper); ok {
		store = w.wrap(store)
	}
	reg := prometheus.NewRegistry()
	m, err := metrics.New(metrics.Config{Registerer: reg, Streams: store, MaxStreamSeries: 1000, Version: "test"})
	require.NoError(t, err)
	core, logs := observer.New(zap.DebugLevel)
	acfg.Store, acfg.Metrics, acfg.Logger, acfg.Clock = store, m, zap.New(core), fake
	acfg.MetricsHandler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	srv, err := api.New(acfg)
	require.NoError(t, err)
	return &harness{t: t, server: srv, store: store, clock: fake, reg: reg, metrics: m, logs: logs}
}

// onConnection makes do's requests come, one at a time, on one connection
// from 192.0.2.1 (httptest's peer), as eventstreamd serves them
// (api.Server.ConnContext).
func (h *harness) onConnection() {
	h.conn = h.server.ConnContext(context.Background(), tcpConn{addr: "192.0.2.1:1234"})
}

// byConn runs test for requests that come alone and on a connection.
func byConn(t *testing.T, test func(t *testing.T, conn bool)) {
	for _, conn := range []bool{false, true} {
		t.Run(map[bool]string{false: "requests", true: "connection"}[conn], func(t *testing.T) { test(t, conn) })
	}
}

// do serves one request and returns the recorded response.
func (h *harness) do(method, target, body string, headers ...string) *httptest.ResponseRecorder {
	h.t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, target, r)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	rec := httptest.NewRecorder()
	if h.conn != nil {
		req = req.WithContext(h.conn)
	}
	h.server.ServeHTTP(rec, req)
	return rec
}

// sync posts body, with headers, and requires a successful reply.
func (h *harness) sync(target, body string, headers ...string) protocol.SyncReply {
	h.t.Helper()
	rec := h.do(http.MethodPost, target, body, headers...)
	require.Equal(h.t, http.StatusOK, rec.Code, rec.Body.String())
	var reply protocol.SyncReply
	require.NoError(h.t, json.Unmarshal(rec.Body.Bytes(), &reply))
	return reply
}

// all reads the whole stream from tick 0, following pages, with headers.
func (h *harness) all(streamName, privateID string, headers ...string) []protocol.Event {
	h.t.Helper()
	var out []protocol.Event
	from := int64(0)
	for {
		r := h.sync(fmt.Sprintf("/%s/%s/%d", streamName, privateID, from), "", headers...)
		out = append(out, r.Events...)
		from = r.T
		if !r.More {
			return out
		}
	}
}

// errorCode decodes an error reply.
func errorCode(t *testing.T, rec *httptest.ResponseRecorder) protocol.ErrorBody {
	t.Helper()
	var e protocol.ErrorReply
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &e), rec.Body.String())
	require.NotEmpty(t, e.Error.Message)
	return e.Error
}

func TestSeedRequest(t *testing.T) {
	h := newHarness(t)
	rec := h.do(http.MethodPost, "/foo/me/0", "{}")
	require.Equal(t, http.StatusOK, rec.Code)
	assert.Equal(t, "application/json", rec.Header().Get("Content-Type"))
	assert.Equal(t, "no-store", rec.Header().Get("Cache-Control"))
	assert.Equal(t, "*", rec.Header().Get("Access-Control-Allow-Origin"))

	var reply protocol.SyncReply
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &reply))
	assert.Equal(t, "1", reply.ID)
	assert.Equal(t, int64(1), reply.T)
	assert.Equal(t, 20, reply.TPS)
	assert.False(t, reply.More)
	assert.Equal(t, []protocol.Event{{T: 0, Type: "_a", Origin: "_", Body: reply.Epoch}}, reply.Events)
	assert.NotContains(t, rec.Body.String(), `"more"`, "more is left out unless set")
}

func TestGetIsSyncWithoutBody(t *testing.T) {
	h := newHarness(t)
	h.sync("/s/a/0", "")
	h.clock.Advance(time.Second)
	rec := h.do(http.MethodGet, "/s/a/5", "")
	require.Equal(t, http.StatusOK, rec.Code)
	assert.JSONEq(t, `{"id":"1","t":21,"epoch":"`+h.sync("/s/a/0", "").Epoch+`","tps":20,"ckpt":20,"events":[]}`, rec.Body.String(),
		"events is always an array")
}

func TestPostedEvents(t *testing.T) {
	h := newHarness(t)
	r := h.sync("/s/a/0", `{"batch":"b1","extra":{"ignored":true},"events":[
		{"type":"move","body":"x"},
		{"type":"chat","body":"\u0041 \"q\" <&>","t":99,"origin":"_"},
		{"type":"ping"}]}`)
	h.clock.Advance(50 * time.Millisecond)
	assert.Equal(t, []protocol.Event{
		{T: 1, Type: "_c", Origin: "_", Body: "1"},
		{T: 1, Type: "move", Origin: "1", Body: "x"},
		{T: 1, Type: "chat", Origin: "1", Body: `A "q" <&>`},
		{T: 1, Type: "ping", Origin: "1", Body: ""},
	}, h.sync("/s/a/1", "").Events, "t and origin are the server's; a missing body is empty")

	rec := h.do(http.MethodGet, "/s/a/1", "")
	assert.Contains(t, rec.Body.String(), `"body":"\u0041 \"q\" <&>"`, "bodies come back byte for byte")

	h.sync("/s/a/2", `{"batch":"b1","events":[{"type":"move","body":"x"}]}`)
	h.clock.Advance(50 * time.Millisecond)
	assert.Empty(t, h.sync("/s/a/2", "").Events, "a retried batch appends nothing")
	assert.Equal(t, r.Epoch, h.sync("/s/a/2?epoch="+r.Epoch, "").Epoch)
}

func TestPaging(t *testing.T) {
	h := newHarness(t, func(_ *api.Config, s *stream.Config) { s.PageEvents = 2 })
	h.sync("/s/a/0", `{"events":[{"type":"m","body":"1"}]}`) // _c and m at tick 1
	h.clock.Advance(50 * time.Millisecond)
	h.sync("/s/a/0", `{"events":[{"type":"m","body":"2"}]}`) // tick 2
	h.clock.Advance(50 * time.Millisecond)

	r := h.sync("/s/a/0", "")
	assert.True(t, r.More)
	assert.Equal(t, int64(1), r.T)
	assert.Len(t, h.all("s", "a"), 4)
}

func TestResetAnswersFromZero(t *testing.T) {
	h := newHarness(t)
	h.sync("/s/a/0", "")
	h.clock.Advance(time.Second)
	tests := []struct {
		name string
		give string
	}{
		{name: "ahead", give: "/s/a/500"},
		{name: "other epoch", give: "/s/a/5?epoch=6db8b8f2-16c9-427d-9fc9-de43870ed0db"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := h.sync(tt.give, "")
			require.NotEmpty(t, r.Events)
			assert.Equal(t, "_a", r.Events[0].Type)
		})
	}
}

func TestPreflight(t *testing.T) {
	h := newHarness(t)
	rec := h.do(http.MethodOptions, "/s/a/0", "", "Origin", "https://game.example", "Access-Control-Request-Method", "POST")
	assert.Equal(t, http.StatusNoContent, rec.Code)
	assert.Equal(t, "*", rec.Header().Get("Access-Control-Allow-Origin"))
	assert.Contains(t, rec.Header().Get("Access-Control-Allow-Methods"), "POST")
	assert.Contains(t, rec.Header().Get("Access-Control-Allow-Headers"), "Content-Type")
	st, err := h.store.Stats(context.Background(), 10)
	require.NoError(t, err)
	assert.Zero(t, st.Streams, "a preflight is not a sync")
}

func TestCORSOrigins(t *testing.T) {
	h := newHarness(t, func(a *api.Config, _ *stream.Config) {
		a.CORSOrigins = []string{"https://a.example", "https://b.example"}
	})
	tests := []struct {
		give string
		want string
	}{
		{give: "https://b.example", want: "https://b.example"},
		{give: "https://evil.example", want: ""},
		{give: "", want: ""},
	}
	for _, tt := range tests {
		rec := h.do(http.MethodGet, "/healthz", "", "Origin", tt.give)
		assert.Equal(t, tt.want, rec.Header().Get("Access-Control-Allow-Origin"), tt.give)
		assert.Equal(t, "Origin", rec.Header().Get("Vary"))
	}
}

func TestHealthAndReadiness(t *testing.T) {
	h := newHarness(t)
	assert.Equal(t, http.StatusOK, h.do(http.MethodGet, "/healthz", "").Code)
	assert.Equal(t, http.StatusOK, h.do(http.MethodGet, "/readyz", "").Code)
	h.server.Drain()
	assert.Equal(t, http.StatusServiceUnavailable, h.do(http.MethodGet, "/readyz", "").Code)
	assert.Equal(t, http.StatusOK, h.do(http.MethodGet, "/healthz", "").Code, "a draining server is alive")
}

// TestHTTP2RequestsShareNoRoutingContext: the requests of an HTTP/2
// connection, which come at once, do not use the one routing context its
// HTTP/1 requests share.
func TestHTTP2RequestsShareNoRoutingContext(t *testing.T) {
	h := newHarness(t)
	h.onConnection()
	req := httptest.NewRequest(http.MethodGet, "/s/a/0", nil).WithContext(h.conn)
	req.ProtoMajor, req.ProtoMinor = 2, 0
	rec := httptest.NewRecorder()
	h.server.ServeHTTP(rec, req)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	assert.Empty(t, chi.RouteContext(h.conn).RoutePattern(), "the connection's routing context was not used")

	h.do(http.MethodGet, "/s/a/0", "") // an HTTP/1 request uses it
	assert.Equal(t, "/{stream}/{client}/{tick}", chi.RouteContext(h.conn).RoutePattern())
}
