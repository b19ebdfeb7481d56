package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/goeventstream/eventstream/internal/apitest"
	"github.com/goeventstream/eventstream/internal/stream"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func server(t *testing.T, wrap func(http.Handler) http.Handler) string {
	t.Helper()
	cfg := stream.DefaultConfig()
	cfg.MaxSyncsPerSecond, cfg.MaxEventsPerSecond = 0, 0 // a load tool's server: as fast as it goes
	cfg.MaxStreamBytesPerSecond = 0
	srv, _ := apitest.NewServer(t, cfg, wrap)
	return srv.URL
}

func runJSON(t *testing.T, args ...string) (report, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(context.Background(), append(args, "-json"), &out, &errOut)
	var rep report
	require.NoError(t, json.Unmarshal(out.Bytes(), &rep), "stdout: %s\nstderr: %s", out.String(), errOut.String())
	return rep, err
}

func TestSyncLoadIsVerified(t *testing.T) {
	url := server(t, nil)
	rep, err := runJSON(t, "-url", url, "-streams", "2", "-clients", "3", "-rate", "20",
		"-duration", "1s", "-warmup", "300ms", "-event-share", "0.5", "-preload", "300", "-from", "zero")
	require.NoError(t, err)
	assert.Equal(t, "sync", rep.Mode)
	assert.Greater(t, rep.Syncs, int64(50))
	assert.Greater(t, rep.EventsSent, 10)
	assert.Empty(t, rep.Errors)
	assert.True(t, rep.Verify.Checked)
	assert.Empty(t, rep.Verify.Problems)
	assert.Equal(t, 6, rep.Verify.Clients)
	assert.Positive(t, rep.Latency.P99)
	assert.Positive(t, rep.Delivery.N)
	assert.Positive(t, rep.BytesPerReply)
}

// TestServerPID: with -server-pid the server's CPU is read from /proc
// (here the test's own process, which serves), not from its metrics, and
// is reported per client-second beside esbench's own.
func TestServerPID(t *testing.T) {
	url := server(t, nil)
	rep, err := runJSON(t, "-url", url, "-transport", "push", "-streams", "2", "-clients", "2", "-rate", "5",
		"-event-share", "1", "-duration", "1s", "-warmup", "300ms", "-metrics-url", "off", "-server-pid", strconv.Itoa(os.Getpid()))
	require.NoError(t, err)
	assert.Empty(t, rep.Verify.Problems)
	assert.Positive(t, rep.ServerCPUPerClientSecond)
	assert.Positive(t, rep.OwnCPUPerClientSecond)
	// Server and esbench are one process here: /proc counts both, its user
	// and system times each in ticks of 10 ms, so their sum over the run can
	// be short by two ticks (getrusage counts in µs).
	assert.GreaterOrEqual(t, rep.ServerCPUPerClientSecond, rep.OwnCPUPerClientSecond-20e3/(4*rep.Duration))
}

// TestJoinBurst: with -join burst every client joins as the measurement
// starts, and each one's join is measured, with the server's own time.
func TestJoinBurst(t *testing.T) {
	url := server(t, nil)
	rep, err := runJSON(t, "-url", url, "-streams", "2", "-clients", "20", "-rate", "10",
		"-duration", "1s", "-warmup", "100ms", "-join", "burst")
	require.NoError(t, err)
	assert.Empty(t, rep.Verify.Problems)
	assert.Equal(t, int64(40), rep.Join.N, "every client's join")
	assert.Positive(t, rep.Join.P50)
	// The server counts the syncs answered between esbench's two reads of
	// its /metrics: those esbench recorded, since it lets the syncs in
	// flight finish before its second read (the last of them may reach
	// the server's histogram just after it).
	assert.InEpsilon(t, rep.Syncs, rep.ServerLatency.N, 0.02, "the server's histogram, over the measurement")
}

func TestClosedLoopFromHead(t *testing.T) {
	url := server(t, nil)
	rep, err := runJSON(t, "-url", url, "-streams", "1", "-clients", "2", "-rate", "0",
		"-duration", "500ms", "-warmup", "100ms", "-preload", "1000", "-from", "head")
	require.NoError(t, err)
	assert.Empty(t, rep.Verify.Problems)
	assert.Greater(t, rep.Syncs, int64(100))
}

func TestHealthzBaseline(t *testing.T) {
	url := server(t, nil)
	rep, err := runJSON(t, "-url", url, "-mode", "healthz", "-streams", "1", "-clients", "2",
		"-duration", "300ms", "-warmup", "100ms")
	require.NoError(t, err)
	assert.Equal(t, "healthz", rep.Mode)
	assert.Greater(t, rep.Syncs, int64(10))
	assert.False(t, rep.Verify.Checked)
}

// TestVerificationCatchesALostEvent runs esbench through a proxy that
// hides one event from one client: esbench must notice and fail.
func TestVerificationCatchesALostEvent(t *testing.T) {
	var dropped atomic.Bool
	url := server(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rec := httptest.NewRecorder()
			next.ServeHTTP(rec, r)
			body := rec.Body.Bytes()
			if strings.Contains(r.URL.Path, "-c1/") && !dropped.Load() {
				var reply map[string]any
				if json.Unmarshal(body, &reply) == nil {
					if events, _ := reply["events"].([]any); len(events) > 0 {
						for i, e := range events {
							if e.(map[string]any)["type"] == "b" {
								reply["events"] = append(events[:i:i], events[i+1:]...)
								body, _ = json.Marshal(reply)
								dropped.Store(true)
								break
							}
						}
					}
				}
			}
			for k, v := range rec.Header() {
				if k != "Content-Length" {
					w.Header()[k] = v
				}
			}
			w.WriteHeader(rec.Code)
			_, _ = io.Copy(w, bytes.NewReader(body))
		})
	})
	rep, err := runJSON(t, "-url", url, "-streams", "1", "-clients", "3", "-rate", "20",
		"-duration", "1s", "-warmup", "200ms", "-event-share", "1")
	require.True(t, dropped.Load(), "the proxy found no event to drop")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "verification failed")
	require.NotEmpty(t, rep.Verify.Problems)
	assert.Contains(t, rep.Verify.Problems[0], "client 1 of stream 0")
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-mode", "other"}, {"-streams", "0"}, {"-rate", "-1"}, {"-event-share", "2"},
		{"-body", "10"}, {"-from", "middle"}, {"-url", "ftp://x"}, {"-join", "later"},
	} {
		err := run(context.Background(), append(args, "-duration", "1s"), io.Discard, io.Discard)
		assert.Error(t, err, "%v", args)
	}
}

// TestServerLatencyPastTheBuckets: a sync longer than the server's largest
// bucket is reported as pastBuckets, which JSON can hold (+Inf made -json
// fail).
func TestServerLatencyPastTheBuckets(t *testing.T) {
	from := serverSample{buckets: map[float64]float64{0.1: 0, math.Inf(1): 0}}
	to := serverSample{buckets: map[float64]float64{0.1: 99, math.Inf(1): 100}}
	l := serverLatency(from, to)
	assert.Equal(t, 100.0, l.P99)
	assert.Equal(t, float64(pastBuckets), l.Max)
	_, err := json.Marshal(l)
	require.NoError(t, err)
}

// TestPushGaps: on a stream where nothing happens, push clients are told
// the quiet ticks every 100 ms (two ticks), and esbench reports the
// largest step of t and the longest wait between pushes.
func TestPushGaps(t *testing.T) {
	url := server(t, nil)
	rep, err := runJSON(t, "-url", url, "-streams", "1", "-clients", "2", "-rate", "1", "-event-share", "0",
		"-transport", "push", "-duration", "1500ms", "-warmup", "300ms")
	require.NoError(t, err)
	require.NotNil(t, rep.PushGaps)
	assert.GreaterOrEqual(t, rep.PushGaps.Ticks, int64(2), "quiet ticks come together")
	assert.LessOrEqual(t, rep.PushGaps.Ticks, int64(4), "and at least every 100 ms (4: room for a busy machine)")
	assert.Positive(t, rep.PushGaps.WaitMs)
	assert.Less(t, rep.PushGaps.WaitMs, 1000.0)
}
