package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/goeventstream/eventstream/internal/apitest"
	"github.com/goeventstream/eventstream/internal/protocol"
	"github.com/goeventstream/eventstream/internal/redistest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const secret = "s3cr3t-private-id"

// logLines collects a server's log lines and finds its listening address,
// and when its store is open.
type logLines struct {
	mu    sync.Mutex
	lines []string
	addr  chan string
	open  chan struct{}
}

func newLogLines() *logLines {
	return &logLines{addr: make(chan string, 1), open: make(chan struct{}, 1)}
}

func (l *logLines) add(line string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, line)
	var entry struct {
		Msg  string `json:"msg"`
		Addr string `json:"addr"`
	}
	if json.Unmarshal([]byte(line), &entry) == nil {
		switch entry.Msg {
		case "listening":
			l.addr <- entry.Addr
		case "store open":
			l.open <- struct{}{}
		}
	}
}

func (l *logLines) Write(p []byte) (int, error) {
	for _, line := range strings.Split(strings.TrimSpace(string(p)), "\n") {
		l.add(line)
	}
	return len(p), nil
}

func (l *logLines) all() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// waitAddr waits until the server listens and its store is open, and
// returns its address.
func (l *logLines) waitAddr(t *testing.T) string {
	t.Helper()
	addr := l.waitListening(t)
	select {
	case <-l.open:
		return addr
	case <-time.After(30 * time.Second):
		t.Fatalf("the server's store did not open; its log:\n%s", l.all())
		return ""
	}
}

// waitListening waits until the server listens, and returns its address.
func (l *logLines) waitListening(t *testing.T) string {
	t.Helper()
	select {
	case a := <-l.addr:
		return a
	case <-time.After(30 * time.Second):
		t.Fatalf("the server did not start; its log:\n%s", l.all())
		return ""
	}
}

// seedRequest does the seed's test, POST {} to /foo/{secret}/0, and checks
// the reply.
func seedRequest(t *testing.T, client *http.Client, addr string) {
	t.Helper()
	resp, err := client.Post("http://"+addr+"/foo/"+secret+"/0", "application/json", strings.NewReader("{}"))
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var reply protocol.SyncReply
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&reply))
	assert.Equal(t, "1", reply.ID)
	assert.GreaterOrEqual(t, reply.T, int64(1))
	require.NotEmpty(t, reply.Events)
	assert.Equal(t, protocol.Event{T: 0, Type: "_a", Origin: "_", Body: reply.Epoch}, reply.Events[0])
}

func TestRunInProcess(t *testing.T) {
	logs := newLogLines()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-log-level", "debug", "-drain-delay", "0"}, env(), io.Discard, logs)
	}()
	addr := logs.waitAddr(t)
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	seedRequest(t, client, addr)
	require.NoError(t, run(context.Background(), []string{"healthcheck", "-addr", addr}, env(), io.Discard, io.Discard))
	require.NoError(t, run(context.Background(), []string{"healthcheck"}, env("EVENTSTREAMD_ADDR", addr), io.Discard, io.Discard),
		"healthcheck reads the address from the environment, as in the image")

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(20 * time.Second):
		t.Fatal("run did not return after its context ended")
	}
	assert.NotContains(t, logs.all(), secret, "a private id was logged")
	assert.Contains(t, logs.all(), `"msg":"client connected"`)
}

func TestVersion(t *testing.T) {
	var out strings.Builder
	require.NoError(t, run(context.Background(), []string{"-version"}, env(), &out, io.Discard))
	assert.Equal(t, "eventstreamd dev\n", out.String())
}

// TestBinary starts the real binary on a free port, does the seed's test,
// and stops it with SIGTERM.
func TestBinary(t *testing.T) {
	p := apitest.StartBinary(t, []string{"EVENTSTREAMD_LOG_LEVEL=debug"})
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	seedRequest(t, client, p.Addr)

	require.NoError(t, p.Terminate(20*time.Second), "exit after SIGTERM")
	assert.Contains(t, p.Logs(), `"msg":"stopped"`)
	assert.Contains(t, p.Logs(), `"msg":"client connected"`, "EVENTSTREAMD_LOG_LEVEL was read")
	assert.NotContains(t, p.Logs(), secret, "a private id was logged")
}

func TestHealthcheckFailsWithNoServer(t *testing.T) {
	addr := "127.0.0.1:" + strconv.Itoa(redistest.FreePort(t))
	err := run(context.Background(), []string{"healthcheck", "-addr", addr}, env(), io.Discard, io.Discard)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "healthcheck")
}

func TestBadConfigFailsAtStart(t *testing.T) {
	err := run(context.Background(), []string{"-tick-rate", "-5"}, env(), io.Discard, io.Discard)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "tick rate")
}

// TestDrain: on shutdown, /readyz answers 503 at once while syncs are
// still served for the drain delay, so that a load balancer takes the
// replica out before it stops listening.
func TestDrain(t *testing.T) {
	logs := newLogLines()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-drain-delay", "3s"}, env(), io.Discard, logs)
	}()
	addr := logs.waitAddr(t)
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	get := func(path string) int {
		resp, err := client.Get("http://" + addr + path)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	require.Equal(t, http.StatusOK, get("/readyz"))

	cancel()
	require.Eventually(t, func() bool { return strings.Contains(logs.all(), `"msg":"draining"`) }, 10*time.Second, 10*time.Millisecond)
	assert.Equal(t, http.StatusServiceUnavailable, get("/readyz"), "not ready while draining")
	seedRequest(t, client, addr) // still served
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(20 * time.Second):
		t.Fatal("run did not return after the drain delay")
	}
}

// TestMetricsApart: with -metrics-addr, /metrics is served there and not
// on the public port.
func TestMetricsApart(t *testing.T) {
	logs := newLogLines()
	metricsAddr := "127.0.0.1:" + strconv.Itoa(redistest.FreePort(t))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-drain-delay", "0", "-metrics-addr", metricsAddr}, env(), io.Discard, logs)
	}()
	t.Cleanup(func() { cancel(); require.NoError(t, <-done) })
	addr := logs.waitAddr(t)
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	require.Eventually(t, func() bool { return strings.Contains(logs.all(), "serving apart") }, 10*time.Second, 10*time.Millisecond)
	require.Eventually(t, func() bool { // the store opens just after the listener
		resp, err := client.Get("http://" + metricsAddr + "/metrics")
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK && strings.Contains(string(body), "eventstreamd_store_up 1")
	}, 15*time.Second, 100*time.Millisecond)
	resp, err := client.Get("http://" + addr + "/metrics")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusNotFound, resp.StatusCode, "not on the public port")
}
