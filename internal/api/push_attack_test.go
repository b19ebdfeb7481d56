package api_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/require"

	"github.com/goeventstream/eventstream/internal/api"
	"github.com/goeventstream/eventstream/internal/protocol"
	"github.com/goeventstream/eventstream/internal/stream"
)

// dialSmallWindow opens a push connection whose socket takes in only
// rcvBuf bytes: what the client does not read stays on the server.
func dialSmallWindow(t *testing.T, url string, rcvBuf int) *websocket.Conn {
	t.Helper()
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		nc, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err == nil {
			err = nc.(*net.TCPConn).SetReadBuffer(rcvBuf)
		}
		return nc, err
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPClient: &http.Client{Transport: tr}})
	require.NoError(t, err)
	c.SetReadLimit(-1)
	t.Cleanup(func() { c.CloseNow() })
	return c
}

// TestPushHistoryWaitsForTheClient: a connection's history, page after
// page, is sent as its client takes it, not written all at once: a
// client that does not read at once, behind a small window, gets every
// page (main queued page after page without waiting, and cut the
// connection mid-frame once its queue passed a page and 64 KiB).
func TestPushHistoryWaitsForTheClient(t *testing.T) { testPushHistoryWaitsForTheClient(t, 0) }

// TestPushHistoryInLittleMemory: a page that is not written at once is
// queued in the in-flight memory its read holds: with room for little more
// than a page, a client that does not read at once gets its history, in
// order (main took the queue's memory again, found none, and cut the
// connection mid-frame: 1 honest client in 10, joining with 6 MB of
// history under -max-inflight-bytes 8 MiB).
func TestPushHistoryInLittleMemory(t *testing.T) { testPushHistoryWaitsForTheClient(t, 1<<20+64<<10) }

func testPushHistoryWaitsForTheClient(t *testing.T, inflight int64) {
	h, url := pushHarness(t, func(a *api.Config, s *stream.Config) {
		if inflight > 0 {
			a.Limits.MaxInflightBytes, a.Limits.MaxSnapshotBytes = inflight, 1<<20
		}
		s.MaxSyncsPerSecond, s.MaxEventsPerSecond, s.MaxStreamBytesPerSecond = 0, 0, 0
	})
	body := strings.Repeat("x", 15<<10)
	req := `{"events":[` + strings.Repeat(`{"type":"big","body":"`+body+`"},`, 3) + `{"type":"big","body":"` + body + `"}]}`
	const syncs = 100 // 6 MB, more than a socket's buffers take: 6 pages of 1 MiB
	for i := range syncs {
		h.sync("/s/writer/0", req)
		if i%10 == 9 {
			h.clock.Advance(50 * time.Millisecond)
		}
	}

	c := dialSmallWindow(t, url+"/s/alice/0", 128<<10)
	time.Sleep(300 * time.Millisecond) // the client looks away; the server writes what it may meanwhile
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	got, pages := 0, 0
	for more := true; more; {
		_, b, err := c.Read(ctx)
		require.NoError(t, err, "page %d, after %d events", pages+1, got)
		var r protocol.SyncReply
		require.NoError(t, json.Unmarshal(b, &r))
		pages++
		got += strings.Count(string(b), `"type":"big"`)
		more = r.More
	}
	require.Equal(t, 4*syncs, got, "every event of the history, once")
}

// TestPushLoopLeavesABackloggedClientToItsWriter: a client that stops
// reading for a few ticks, each of a page, and then reads on gets every
// event: the loop sends it nothing while its socket holds what it did not
// take yet, and its writer sends what it missed, coalesced, once it takes
// it (main queued each tick behind the last, and cut the connection
// mid-frame once its queue passed a page and 64 KiB).
func TestPushLoopLeavesABackloggedClientToItsWriter(t *testing.T) {
	h, url := pushHarness(t, func(a *api.Config, s *stream.Config) {
		a.Push.MaxLag = time.Minute // alice looks away for less, however slow the machine
		s.MaxSyncsPerSecond, s.MaxEventsPerSecond, s.MaxStreamBytesPerSecond = 0, 0, 0
	})
	c := dialSmallWindow(t, url+"/s/alice/0", 128<<10)
	next(t, c, func(protocol.SyncReply) bool { return true })
	bob := dial(t, url+"/s/bob/0") // reads all along
	bob.SetReadLimit(-1)
	next(t, bob, func(protocol.SyncReply) bool { return true })
	const ticks, syncs = 12, 15 // 11 MB, about a page a tick, which alice does not read yet
	bobGot := make(chan int, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		n := 0
		for n < 4*ticks*syncs {
			_, b, err := bob.Read(ctx)
			if err != nil {
				break
			}
			n += strings.Count(string(b), `"type":"big"`)
		}
		bobGot <- n
	}()
	body := strings.Repeat("x", 15<<10)
	req := `{"events":[` + strings.Repeat(`{"type":"big","body":"`+body+`"},`, 3) + `{"type":"big","body":"` + body + `"}]}`
	for range ticks {
		for range syncs {
			h.sync("/s/writer/0", req)
		}
		advance(t, h, 50*time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	got := 0
	for got < 4*ticks*syncs {
		_, b, err := c.Read(ctx)
		require.NoError(t, err, "after %d events", got)
		got += strings.Count(string(b), `"type":"big"`)
	}
	require.Equal(t, 4*ticks*syncs, got, "every event, once")
	require.Equal(t, 4*ticks*syncs, <-bobGot, "bob, who read all along, got every event once")
}
