package esclient_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/goeventstream/eventstream/internal/apitest"
	"github.com/goeventstream/eventstream/internal/stream"
	"github.com/goeventstream/eventstream/pkg/esclient"
)

// connCutter is a TCP proxy whose connections can all be cut at once.
type connCutter struct {
	l       net.Listener
	backend string
	mu      sync.Mutex
	conns   []net.Conn
}

func newConnCutter(t *testing.T, backend string) *connCutter {
	d := &connCutter{backend: backend}
	d.l = proxy(t, backend, func(c, b net.Conn) {
		d.mu.Lock()
		d.conns = append(d.conns, c, b)
		d.mu.Unlock()
		go func() { _, _ = io.Copy(c, b); c.Close() }()
	})
	t.Cleanup(d.drop)
	return d
}

// proxy listens on loopback and connects each client to backend: what
// the client sends goes on; what comes back, back decides (it owns both ends).
func proxy(t *testing.T, backend string, back func(client, backend net.Conn)) net.Listener {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			b, err := net.Dial("tcp", backend)
			if err != nil {
				c.Close()
				continue
			}
			go func() { _, _ = io.Copy(b, c); b.Close() }()
			back(c, b)
		}
	}()
	return l
}

func (d *connCutter) drop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, c := range d.conns {
		c.Close()
	}
	d.conns = nil
}

func (d *connCutter) url() string { return "http://" + d.l.Addr().String() }

// played reads the whole stream as a fresh client, and returns the bodies
// of its "move" events in order.
func played(t *testing.T, url string) []string {
	t.Helper()
	r := newClient(t, url, "reader-"+fmt.Sprint(time.Now().UnixNano()))
	var moves []string
	for {
		u, err := r.Sync(context.Background())
		require.NoError(t, err)
		for _, e := range u.Events {
			if e.Type == "move" {
				moves = append(moves, e.Body)
			}
		}
		if !u.More {
			return moves
		}
	}
}

// TestPushExactlyOnceAcrossDroppedConnections: a push client sends events
// while its connections are cut again and again; every event is in the
// stream once, in the order sent, and the client receives every event of
// the stream once, in order.
func TestPushExactlyOnceAcrossDroppedConnections(t *testing.T) {
	srv, _ := apitest.NewServer(t, stream.DefaultConfig(), nil)
	proxy := newConnCutter(t, strings.TrimPrefix(srv.URL, "http://"))
	c := newClient(t, proxy.url(), "pusher", withHTTP(httpClient(t)), func(c *esclient.Config) {
		c.Transport = esclient.Push
		c.SyncInterval = 20 * time.Millisecond
		c.MaxBackoff = 50 * time.Millisecond
	})
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	var got []string
	done := make(chan error, 1)
	go func() {
		done <- c.Run(ctx, func(u esclient.Update) {
			mu.Lock()
			defer mu.Unlock()
			for _, e := range u.Events {
				if e.Type == "move" {
					got = append(got, e.Body)
				}
			}
		})
	}()
	var want []string
	for i := range 60 {
		body := fmt.Sprint(i)
		require.NoError(t, c.Send("move", body))
		want = append(want, body)
		time.Sleep(10 * time.Millisecond) // a player's pace; nothing is timed by it
		if i%15 == 7 {
			proxy.drop()
		}
	}
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return c.Pending() == 0 && len(got) >= len(want)
	}, 15*time.Second, 20*time.Millisecond)
	cancel()
	assert.ErrorIs(t, <-done, context.Canceled)
	assert.Equal(t, want, played(t, srv.URL), "in the stream once each, in order")
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, want, got, "received once each, in order")
}

// TestAutoPollsWhenPushIsRefused: behind something that does not upgrade,
// Auto polls, and the game goes on.
func TestAutoPollsWhenPushIsRefused(t *testing.T) {
	var upgrades atomic.Int32
	srv, _ := apitest.NewServer(t, stream.DefaultConfig(), func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Upgrade") != "" {
				upgrades.Add(1)
				http.Error(w, "no websockets here", http.StatusUpgradeRequired)
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	c := newClient(t, srv.URL, "player", withHTTP(httpClient(t)), func(c *esclient.Config) { c.Transport = esclient.Auto })
	require.NoError(t, c.Send("move", "x"))
	moves := 0
	require.NoError(t, runUntil(t, c, func(u esclient.Update) bool {
		for _, e := range u.Events {
			if e.Type == "move" {
				moves++
			}
		}
		return moves == 1
	}))
	assert.Equal(t, int32(1), upgrades.Load(), "asked once, then polled")
}

// TestPushDeliversWithinTicks: with push, another client's event arrives
// within a few ticks, where polling at 200 ms would take up to 200 ms more.
func TestPushDeliversWithinTicks(t *testing.T) {
	srv, _ := apitest.NewServer(t, stream.DefaultConfig(), nil)
	recv := newClient(t, srv.URL, "receiver", withHTTP(httpClient(t)), func(c *esclient.Config) {
		c.Transport = esclient.Push
		c.SyncInterval = time.Hour // only pushes can bring anything
	})
	send := newClient(t, srv.URL, "sender", withHTTP(httpClient(t)))
	_, err := send.Sync(context.Background())
	require.NoError(t, err)
	require.NoError(t, send.Send("move", "hello"))
	_, err = send.Sync(context.Background())
	require.NoError(t, err)
	require.NoError(t, runUntil(t, recv, func(u esclient.Update) bool {
		for _, e := range u.Events {
			if e.Body == "hello" {
				return true
			}
		}
		return false
	}))
}

// TestAutoLeavesASilentConnection: a push connection that brings nothing
// (a proxy that upgrades but holds what the server sends) is left, and
// Auto polls: the game goes on.
func TestAutoLeavesASilentConnection(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the 5 s of silence three times; skipped with -short")
	}
	srv, _ := apitest.NewServer(t, stream.DefaultConfig(), nil)
	// Passes requests on, but swallows everything after an upgrade's 101.
	l := proxy(t, strings.TrimPrefix(srv.URL, "http://"), func(c, b net.Conn) {
		go func() {
			defer c.Close()
			buf := make([]byte, 64<<10)
			upgraded := false
			for {
				n, err := b.Read(buf)
				if err != nil {
					return
				}
				if !upgraded {
					upgraded = strings.HasPrefix(string(buf[:n]), "HTTP/1.1 101")
					if end := strings.Index(string(buf[:n]), "\r\n\r\n"); upgraded && end >= 0 {
						n = end + 4 // the 101's head, none of the frames after it
					}
					_, _ = c.Write(buf[:n])
				}
			}
		}()
	})
	c := newClient(t, "http://"+l.Addr().String(), "player", withHTTP(httpClient(t)), func(c *esclient.Config) { c.Transport = esclient.Auto })
	require.NoError(t, c.Send("move", "x"))
	moves := 0
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	err := c.Run(ctx, func(u esclient.Update) {
		for _, e := range u.Events {
			if e.Type == "move" {
				moves++
				cancel()
			}
		}
	})
	require.ErrorIs(t, err, context.Canceled, "the move came back before 40 s")
	assert.Equal(t, 1, moves)
}

// TestPushErrorHasTheServersStatus: an error that comes as a push message
// is the same *Error as over HTTP: not_found is 404 (the client said 400),
// and a refusal that retrying cannot change ends Run rather than being
// taken for a server that does not speak push.
func TestPushErrorHasTheServersStatus(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer conn.CloseNow()
		reply := `{"id":"1","t":1,"epoch":"e","tps":20,"ckpt":0,"events":[]}`
		if conn.Write(r.Context(), websocket.MessageText, []byte(reply)) != nil {
			return
		}
		msg := `{"error":{"code":"not_found","message":"no such client"}}`
		if conn.Write(r.Context(), websocket.MessageText, []byte(msg)) != nil {
			return
		}
		_, _, _ = conn.Read(r.Context())
	}))
	t.Cleanup(srv.Close)
	c := newClient(t, srv.URL, "player", withHTTP(httpClient(t)), func(c *esclient.Config) { c.Transport = esclient.Push })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := c.Run(ctx, func(esclient.Update) {})
	var se *esclient.Error
	require.ErrorAs(t, err, &se)
	assert.Equal(t, http.StatusNotFound, se.Status)
	assert.Equal(t, "not_found", se.Code)
}

// TestPushSendsARefusedBatchAgainAfterTheWait: a batch the server refuses
// on the push connection with a retryable error is sent again, under its
// id, on the same connection once the wait is over, though nothing else
// comes on it to wake the client.
func TestPushSendsARefusedBatchAgainAfterTheWait(t *testing.T) {
	batches := make(chan string, 4)
	var conns atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer conn.CloseNow()
		conns.Add(1)
		reply := `{"id":"1","t":1,"epoch":"e","tps":20,"ckpt":0,"events":[]}`
		if conn.Write(r.Context(), websocket.MessageText, []byte(reply)) != nil {
			return
		}
		for {
			_, data, err := conn.Read(r.Context())
			if err != nil {
				return
			}
			var msg struct {
				Batch string `json:"batch"`
			}
			if json.Unmarshal(data, &msg) != nil {
				return
			}
			batches <- msg.Batch
			refusal := `{"error":{"code":"rate_limited","message":"later","batch":` + strconv.Quote(msg.Batch) + `}}`
			if conn.Write(r.Context(), websocket.MessageText, []byte(refusal)) != nil {
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	c := newClient(t, srv.URL, "player", withHTTP(httpClient(t)), func(c *esclient.Config) {
		c.Transport = esclient.Push
		c.SyncInterval = 20 * time.Millisecond // the wait: the refusal names none
	})
	require.NoError(t, c.Send("move", "x"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, func(esclient.Update) {}) }()
	first := <-batches
	require.NotEmpty(t, first)
	select {
	case again := <-batches:
		assert.Equal(t, first, again, "the same batch, under its id")
	case err := <-done:
		t.Fatalf("Run ended: %v", err)
	}
	cancel()
	require.ErrorIs(t, <-done, context.Canceled)
	assert.Equal(t, 1, c.Pending(), "the event waits for its batch's acknowledgement")
	assert.Equal(t, int32(1), conns.Load(), "sent again on the same connection, not after it went silent")
}
