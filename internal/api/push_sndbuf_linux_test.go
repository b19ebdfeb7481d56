package api_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/goeventstream/eventstream/internal/api"
	"github.com/goeventstream/eventstream/internal/stream"
)

// sendBuffer returns the SO_SNDBUF of nc's socket, or an error once it is
// closed.
func sendBuffer(nc net.Conn) (int, error) {
	raw, err := nc.(*net.TCPConn).SyscallConn()
	if err != nil {
		return 0, err
	}
	var n int
	var serr error
	if err := raw.Control(func(fd uintptr) { n, serr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF) }); err != nil {
		return 0, err
	}
	return n, serr
}

// TestPushNeverReadingClientIsCut: a client that completes the upgrade and
// never reads after its first message is cut about -ws-max-lag after the server's socket is full,
// and that socket holds -ws-write-buffer, which Linux doubles and no longer
// grows (main left it to the kernel, which grew it to tcp_wmem's max, 4 MB
// here: the client was cut only once those filled, more than 20 s into
// this test's stream of 200 KiB a second, and each such client held 4 MB
// of the kernel's memory meanwhile).
func TestPushNeverReadingClientIsCut(t *testing.T) {
	const writeBuffer, maxLag = 64 << 10, time.Second
	h := newHarness(t, func(a *api.Config, s *stream.Config) {
		a.Push.WriteBuffer, a.Push.MaxLag = writeBuffer, maxLag
		a.Push.PingInterval = time.Hour // an unanswered ping would cut it too, pongWait after
		s.MaxSyncsPerSecond, s.MaxEventsPerSecond, s.MaxStreamBytesPerSecond = 0, 0, 0
	})
	conns := make(chan net.Conn, 1)
	srv := httptest.NewUnstartedServer(h.server)
	srv.Config.ConnContext = func(ctx context.Context, nc net.Conn) context.Context {
		conns <- nc
		return ctx
	}
	srv.Start()
	t.Cleanup(func() { h.server.ClosePush(); srv.Close() })
	url := "ws" + strings.TrimPrefix(srv.URL, "http")

	nc, br, status, err := upgradeRaw(url, "/s/stall/0", nil, 4<<10)
	require.NoError(t, err)
	require.Equal(t, http.StatusSwitchingProtocols, status)
	t.Cleanup(func() { nc.Close() })
	server := <-conns
	// Its first message, and then it reads nothing: the 101 may come
	// before the server has taken the connection over and set its buffer.
	_, _, _, err = skipFrame(br)
	require.NoError(t, err)
	got, err := sendBuffer(server)
	require.NoError(t, err)
	require.Equal(t, 2*writeBuffer, got, "SO_SNDBUF is -ws-write-buffer, doubled by Linux")

	// A tick of 10 KiB every 50 ms of real time, until the server cuts the
	// connection; within -ws-max-lag of when its socket is full (a few
	// ticks), with a generous margin for a loaded machine.
	body := strings.Repeat("x", 10<<10)
	start := time.Now()
	deadline := start.Add(maxLag + 10*time.Second)
	sent := 0
	for {
		if _, err := sendBuffer(server); err != nil {
			break // closed
		}
		require.True(t, time.Now().Before(deadline),
			"a client that reads nothing is still connected %v after it stopped reading, %d KiB later", time.Since(start), sent>>10)
		h.sync("/s/writer/0", `{"events":[{"type":"m","body":"`+body+`"}]}`)
		sent += len(body)
		h.clock.Advance(50 * time.Millisecond)
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("cut %v after it stopped reading, %d KiB later", time.Since(start).Round(time.Millisecond), sent>>10)
}
