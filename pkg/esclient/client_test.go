package esclient_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/goeventstream/eventstream/internal/stream"
	"github.com/goeventstream/eventstream/pkg/esclient"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const secret = "s3cr3t-private-id"

func newClient(t *testing.T, baseURL, privateID string, edit ...func(*esclient.Config)) *esclient.Client {
	t.Helper()
	// These tests are of polling; push_test.go tests push.
	cfg := esclient.Config{BaseURL: baseURL, Stream: "game", PrivateID: privateID, SyncInterval: 5 * time.Millisecond,
		Transport: esclient.Poll}
	for _, e := range edit {
		e(&cfg)
	}
	c, err := esclient.New(cfg)
	require.NoError(t, err)
	return c
}

func withHTTP(h *http.Client) func(*esclient.Config) {
	return func(c *esclient.Config) { c.HTTPClient = h }
}

func httpClient(t *testing.T) *http.Client {
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{}}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

func TestNewValidates(t *testing.T) {
	tests := []struct {
		name string
		give esclient.Config
		want string
	}{
		{name: "no URL", give: esclient.Config{Stream: "s", PrivateID: "p"}, want: "BaseURL"},
		{name: "not http", give: esclient.Config{BaseURL: "ftp://x", Stream: "s", PrivateID: "p"}, want: "BaseURL"},
		{name: "no host", give: esclient.Config{BaseURL: "http://", Stream: "s", PrivateID: "p"}, want: "BaseURL"},
		{name: "bad stream", give: esclient.Config{BaseURL: "http://x", Stream: "a b", PrivateID: "p"}, want: "Stream"},
		{name: "empty stream", give: esclient.Config{BaseURL: "http://x", PrivateID: "p"}, want: "Stream"},
		{name: "no private id", give: esclient.Config{BaseURL: "http://x", Stream: "s"}, want: "PrivateID is required"},
		{name: "bad private id", give: esclient.Config{BaseURL: "http://x", Stream: "s", PrivateID: "a/b"}, want: "PrivateID"},
		{name: "negative interval", give: esclient.Config{BaseURL: "http://x", Stream: "s", PrivateID: "p", SyncInterval: -1}, want: "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := esclient.New(tt.give)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

func TestSendRefusesLocally(t *testing.T) {
	c := newClient(t, "http://127.0.0.1:1", "p", func(c *esclient.Config) { c.MaxQueue = 2 })
	tests := []struct {
		typ, body string
		want      error
	}{
		{typ: "_c", body: "1", want: esclient.ErrReservedType},
		{typ: "", want: esclient.ErrBadType},
		{typ: strings.Repeat("t", esclient.MaxTypeLen+1), want: esclient.ErrBadType},
		{typ: "move\n", want: esclient.ErrBadType},
		{typ: "a\x00b", want: esclient.ErrBadType},
		{typ: "\u0085", want: esclient.ErrBadType},
		{typ: "m", body: strings.Repeat("b", esclient.MaxBodyLen+1), want: esclient.ErrBodyTooLarge},
		{typ: "m", body: strings.Repeat("\n", esclient.MaxBodyLen/2+1), want: esclient.ErrBodyTooLarge},
		{typ: "m", body: "\xff", want: esclient.ErrBadBody},
	}
	for _, tt := range tests {
		assert.ErrorIs(t, c.Send(tt.typ, tt.body), tt.want, "%.10q", tt.typ)
	}
	require.NoError(t, c.Send("m", strings.Repeat("b", esclient.MaxBodyLen)))
	require.NoError(t, c.Send("m", ""))
	assert.ErrorIs(t, c.Send("m", "x"), esclient.ErrQueueFull)
	assert.Equal(t, 2, c.Pending())
}

func TestSyncRoundTrip(t *testing.T) {
	srv := newServer(t, nil)
	c := newClient(t, srv.URL, secret, withHTTP(httpClient(t)))
	ctx := context.Background()

	u, err := c.Sync(ctx)
	require.NoError(t, err)
	assert.True(t, u.Reset, "the first sync starts from _a")
	assert.Equal(t, "1", u.PublicID)
	assert.Equal(t, "1", c.PublicID())
	assert.Equal(t, 20, u.TickRate)
	assert.Equal(t, []esclient.Event{{T: 0, Type: esclient.TypeReset, Origin: esclient.ServerOrigin, Body: u.Epoch}}, u.Events)

	require.NoError(t, c.Send("move", `left "<&>" é`))
	require.NoError(t, c.Send("chat", ""))
	u, err = c.Sync(ctx)
	require.NoError(t, err)
	assert.False(t, u.Reset)
	assert.Empty(t, u.Events, "our events come back once their tick is over")
	assert.Zero(t, c.Pending())

	srv.tick()
	u, err = c.Sync(ctx)
	require.NoError(t, err)
	assert.Equal(t, []esclient.Event{
		{T: 1, Type: esclient.TypeConnect, Origin: "_", Body: "1"},
		{T: 1, Type: "move", Origin: "1", Body: `left "<&>" é`},
		{T: 1, Type: "chat", Origin: "1", Body: ""},
	}, u.Events)
}

// dropper forwards requests to the server but, while armed, throws the
// server's reply away and answers 502: the request took effect, and the
// client never heard.
type dropper struct {
	next  http.Handler
	armed atomic.Int32
	seen  atomic.Int32
}

func (d *dropper) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	d.seen.Add(1)
	if d.armed.Load() > 0 {
		d.armed.Add(-1)
		d.next.ServeHTTP(httptest.NewRecorder(), r)
		http.Error(w, "bad gateway", http.StatusBadGateway)
		return
	}
	d.next.ServeHTTP(w, r)
}

func TestLostReplyAppendsOnce(t *testing.T) {
	srv := newServer(t, nil)
	d := &dropper{next: srv.handler}
	proxy := httptest.NewServer(d)
	t.Cleanup(proxy.Close)
	c := newClient(t, proxy.URL, secret, withHTTP(httpClient(t)))
	ctx := context.Background()

	_, err := c.Sync(ctx)
	require.NoError(t, err)
	require.NoError(t, c.Send("move", "once"))
	d.armed.Store(2)
	for range 2 {
		_, err = c.Sync(ctx)
		var se *esclient.Error
		require.ErrorAs(t, err, &se)
		assert.Equal(t, http.StatusBadGateway, se.Status)
		assert.True(t, se.Retryable())
		assert.Equal(t, 1, c.Pending(), "a failed sync keeps its batch")
	}
	require.NoError(t, c.Send("move", "after"))
	_, err = c.Sync(ctx) // the epoch first
	require.NoError(t, err)
	assert.Equal(t, 2, c.Pending(), "the empty sync after a failure sends nothing")
	_, err = c.Sync(ctx) // the retry of the batch
	require.NoError(t, err)
	_, err = c.Sync(ctx) // the next batch
	require.NoError(t, err)
	assert.Zero(t, c.Pending())

	srv.tick()
	reader := newClient(t, srv.URL, "reader", withHTTP(httpClient(t)))
	var moves []string
	require.NoError(t, runUntil(t, reader, func(u esclient.Update) bool {
		for _, e := range u.Events {
			if e.Type == "move" {
				moves = append(moves, e.Body)
			}
		}
		return u.T > 1 && !u.More
	}))
	assert.Equal(t, []string{"once", "after"}, moves, "each event exactly once, in order")
}

// runUntil runs c until done returns true for an update.
func runUntil(t *testing.T, c *esclient.Client, done func(esclient.Update) bool) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	finished := false
	err := c.Run(ctx, func(u esclient.Update) {
		if done(u) {
			finished = true
			cancel()
		}
	})
	if finished {
		return nil
	}
	return err
}

// flaky answers 503 to the first n requests, recording when each came.
type flaky struct {
	next  http.Handler
	n     int
	mu    sync.Mutex
	times []time.Time
}

func (f *flaky) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.times = append(f.times, time.Now())
	fail := len(f.times) <= f.n
	f.mu.Unlock()
	if fail {
		http.Error(w, `{"error":{"code":"store_unavailable","message":"down"}}`, http.StatusServiceUnavailable)
		return
	}
	f.next.ServeHTTP(w, r)
}

func TestRunRetriesWithoutLosingEvents(t *testing.T) {
	srv := newServer(t, nil)
	f := &flaky{next: srv.handler, n: 5}
	proxy := httptest.NewServer(f)
	t.Cleanup(proxy.Close)
	c := newClient(t, proxy.URL, secret, withHTTP(httpClient(t)), func(c *esclient.Config) {
		c.SyncInterval = time.Millisecond
		c.MaxBackoff = 20 * time.Millisecond
	})
	require.NoError(t, c.Send("move", "x"))

	var updates int
	require.NoError(t, runUntil(t, c, func(u esclient.Update) bool {
		updates++
		return c.Pending() == 0
	}))
	assert.Equal(t, 1, updates, "Run reports only successful syncs")
	f.mu.Lock()
	assert.Len(t, f.times, 6, "five failures, then success")
	f.mu.Unlock()

	srv.tick()
	var got []esclient.Event
	u, err := newClient(t, srv.URL, "reader", withHTTP(httpClient(t))).Sync(context.Background())
	require.NoError(t, err)
	for _, e := range u.Events {
		if e.Type == "move" {
			got = append(got, e)
		}
	}
	assert.Len(t, got, 1)
}

func TestRunStopsOnPermanentErrors(t *testing.T) {
	srv := newServer(t, func(c *stream.Config) { c.MaxClientsPerStream = 1 })
	first := newClient(t, srv.URL, "first", withHTTP(httpClient(t)))
	_, err := first.Sync(context.Background())
	require.NoError(t, err)

	second := newClient(t, srv.URL, "second", withHTTP(httpClient(t)))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = second.Run(ctx, func(esclient.Update) { t.Error("no update expected") })
	var se *esclient.Error
	require.ErrorAs(t, err, &se)
	assert.Equal(t, http.StatusConflict, se.Status)
	assert.Equal(t, "stream_full", se.Code)
	assert.False(t, se.Retryable())
	assert.NoError(t, ctx.Err(), "Run returned at once")
}

func TestRunReturnsWhenContextEnds(t *testing.T) {
	srv := newServer(t, nil)
	c := newClient(t, srv.URL, secret, withHTTP(httpClient(t)))
	ctx, cancel := context.WithCancel(context.Background())
	var n atomic.Int32
	done := make(chan error, 1)
	go func() {
		done <- c.Run(ctx, func(esclient.Update) {
			if n.Add(1) == 3 {
				cancel()
			}
		})
	}()
	select {
	case err := <-done:
		assert.ErrorIs(t, err, context.Canceled)
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
	}
}

func TestPagingFollowsMore(t *testing.T) {
	srv := newServer(t, func(c *stream.Config) { c.PageEvents = 3 })
	writer := newClient(t, srv.URL, "writer", withHTTP(httpClient(t)))
	ctx := context.Background()
	for i := range 10 {
		require.NoError(t, writer.Send("move", strings.Repeat("x", i)))
		_, err := writer.Sync(ctx)
		require.NoError(t, err)
		srv.tick()
	}

	reader := newClient(t, srv.URL, "reader", withHTTP(httpClient(t)))
	var events []esclient.Event
	var pages int
	require.NoError(t, runUntil(t, reader, func(u esclient.Update) bool {
		pages++
		events = append(events, u.Events...)
		return !u.More
	}))
	assert.Greater(t, pages, 3)
	var moves int
	for _, e := range events {
		if e.Type == "move" {
			moves++
		}
	}
	assert.Equal(t, 10, moves)
}

func TestEpochReset(t *testing.T) {
	srv := newServer(t, nil)
	c := newClient(t, srv.URL, secret, withHTTP(httpClient(t)))
	ctx := context.Background()
	first, err := c.Sync(ctx)
	require.NoError(t, err)
	srv.tick()
	u, err := c.Sync(ctx)
	require.NoError(t, err)
	require.False(t, u.Reset)

	// The stream expires: the client was silent for the timeout and the TTL.
	srv.clock.Advance(10 * time.Second)
	_, err = srv.store.Sweep(ctx)
	require.NoError(t, err)
	srv.clock.Advance(time.Minute)
	_, err = srv.store.Sweep(ctx)
	require.NoError(t, err)

	u, err = c.Sync(ctx)
	require.NoError(t, err)
	assert.True(t, u.Reset)
	assert.NotEqual(t, first.Epoch, u.Epoch)
	assert.Equal(t, esclient.TypeReset, u.Events[0].Type)
}

func TestErrorsHideThePrivateID(t *testing.T) {
	ln := httptest.NewServer(http.NotFoundHandler())
	url := ln.URL
	ln.Close() // nothing listens there now
	c := newClient(t, url, secret, withHTTP(httpClient(t)))
	_, err := c.Sync(context.Background())
	require.Error(t, err)
	assert.NotContains(t, err.Error(), secret)
	assert.False(t, errors.Is(err, context.Canceled))
}

func TestLargeQueuesAreSplitIntoBatches(t *testing.T) {
	srv := newServer(t, func(c *stream.Config) { c.MaxEventsPerSecond = 0 }) // a clock that stands still refills nothing
	c := newClient(t, srv.URL, secret, withHTTP(httpClient(t)))
	const n = 2*esclient.MaxEventsPerSync + 88
	for i := range n {
		require.NoError(t, c.Send("n", strconv.Itoa(i)))
	}
	// 100 events of 1 KiB fill one request's 64 KiB before its 256 events.
	for range 100 {
		require.NoError(t, c.Send("big", strings.Repeat("b", 1000)))
	}
	ctx := context.Background()
	syncs := 0
	for c.Pending() > 0 {
		_, err := c.Sync(ctx)
		require.NoError(t, err, "a batch the server refused")
		syncs++
		require.Less(t, syncs, 10)
	}
	assert.Equal(t, 4, syncs, "256 + 256 + 88 and 100 KiB take four requests")

	srv.tick()
	reader := newClient(t, srv.URL, "reader", withHTTP(httpClient(t)))
	var got []string
	require.NoError(t, runUntil(t, reader, func(u esclient.Update) bool {
		for _, e := range u.Events {
			if e.Type == "n" {
				got = append(got, e.Body)
			}
		}
		return !u.More && u.T > 1
	}))
	require.Len(t, got, n)
	for i, b := range got {
		require.Equal(t, strconv.Itoa(i), b, "events arrive once, in the order they were sent")
	}
}

func TestFromTick(t *testing.T) {
	srv := newServer(t, nil)
	w := newClient(t, srv.URL, "writer", withHTTP(httpClient(t)))
	require.NoError(t, w.Send("old", ""))
	_, err := w.Sync(context.Background())
	require.NoError(t, err)
	srv.clock.Advance(time.Second) // t = 21
	require.NoError(t, w.Send("new", ""))
	_, err = w.Sync(context.Background())
	require.NoError(t, err)
	srv.tick()

	c := newClient(t, srv.URL, "watcher", withHTTP(httpClient(t)), func(c *esclient.Config) { c.FromTick = 21 })
	u, err := c.Sync(context.Background())
	require.NoError(t, err)
	assert.False(t, u.Reset)
	require.Len(t, u.Events, 1)
	assert.Equal(t, "new", u.Events[0].Type)
}

// outage answers 502 as a proxy with no server behind it would, while down.
type outage struct {
	next http.Handler
	down atomic.Bool
}

func (o *outage) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if o.down.Load() {
		http.Error(w, "no server is available", http.StatusBadGateway)
		return
	}
	o.next.ServeHTTP(w, r)
}

// expire has the server forget the stream: every client silent for the
// timeout, then the stream for its TTL.
func (s *server) expire(t *testing.T) {
	t.Helper()
	for _, d := range []time.Duration{10 * time.Second, time.Minute} {
		s.clock.Advance(d)
		_, err := s.store.Sweep(context.Background())
		require.NoError(t, err)
	}
}

// moves returns the bodies of the "move" events in the stream, read whole.
func (s *server) moves(t *testing.T) []string {
	t.Helper()
	s.tick()
	u, err := newClient(t, s.URL, "reader-"+strconv.Itoa(int(s.clock.Now().UnixNano())), withHTTP(httpClient(t))).Sync(context.Background())
	require.NoError(t, err)
	var out []string
	for _, e := range u.Events {
		if e.Type == "move" {
			out = append(out, e.Body)
		}
	}
	return out
}

func TestEventsQueuedDuringAnOutageAreDroppedOnANewEpoch(t *testing.T) {
	for _, keep := range []bool{false, true} {
		t.Run(fmt.Sprintf("keep=%v", keep), func(t *testing.T) {
			srv := newServer(t, nil)
			o := &outage{next: srv.handler}
			proxy := httptest.NewServer(o)
			t.Cleanup(proxy.Close)
			c := newClient(t, proxy.URL, secret, withHTTP(httpClient(t)), func(c *esclient.Config) { c.KeepQueueOnReset = keep })
			ctx := context.Background()
			first, err := c.Sync(ctx)
			require.NoError(t, err)

			// The server goes away with the stream; the player keeps playing.
			o.down.Store(true)
			require.NoError(t, c.Send("move", "in flight"))
			_, err = c.Sync(ctx)
			require.Error(t, err)
			require.NoError(t, c.Send("move", "queued"))
			srv.expire(t)
			o.down.Store(false)

			u, err := c.Sync(ctx)
			require.NoError(t, err)
			require.True(t, u.Reset)
			require.NotEqual(t, first.Epoch, u.Epoch)
			assert.Equal(t, u.Epoch, c.Epoch())
			if keep {
				assert.Zero(t, u.Dropped)
				assert.Equal(t, 2, c.Pending())
				for c.Pending() > 0 {
					_, err = c.Sync(ctx)
					require.NoError(t, err)
				}
				assert.Equal(t, []string{"in flight", "queued"}, srv.moves(t), "kept, and sent into the new game")
				return
			}
			assert.Equal(t, 2, u.Dropped)
			assert.Zero(t, c.Pending())
			_, err = c.Sync(ctx)
			require.NoError(t, err)
			assert.Empty(t, srv.moves(t), "nothing meant for the old game reached the new one")
		})
	}
}

func TestAFailedSyncKeepsItsBatchWhenTheEpochIsTheSame(t *testing.T) {
	srv := newServer(t, nil)
	o := &outage{next: srv.handler}
	proxy := httptest.NewServer(o)
	t.Cleanup(proxy.Close)
	c := newClient(t, proxy.URL, secret, withHTTP(httpClient(t)))
	ctx := context.Background()
	_, err := c.Sync(ctx)
	require.NoError(t, err)
	o.down.Store(true)
	require.NoError(t, c.Send("move", "x"))
	_, err = c.Sync(ctx)
	require.Error(t, err)
	o.down.Store(false)
	for c.Pending() > 0 {
		u, err := c.Sync(ctx)
		require.NoError(t, err)
		require.Zero(t, u.Dropped)
	}
	assert.Equal(t, []string{"x"}, srv.moves(t))
}

// limited answers 429 with Retry-After: 1 to the first request, recording
// when each came.
type limited struct {
	next  http.Handler
	mu    sync.Mutex
	times []time.Time
}

func (l *limited) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	l.mu.Lock()
	l.times = append(l.times, time.Now())
	first := len(l.times) == 1
	l.mu.Unlock()
	if first {
		w.Header().Set("Retry-After", "1")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = w.Write([]byte(`{"error":{"code":"rate_limited","message":"later"}}`))
		return
	}
	l.next.ServeHTTP(w, r)
}

func TestRunWaitsAsTheServerAsks(t *testing.T) {
	srv := newServer(t, nil)
	l := &limited{next: srv.handler}
	proxy := httptest.NewServer(l)
	t.Cleanup(proxy.Close)
	c := newClient(t, proxy.URL, secret, withHTTP(httpClient(t)), func(c *esclient.Config) {
		c.SyncInterval = time.Millisecond
		c.MaxBackoff = 10 * time.Millisecond // far below what the server asks
	})
	require.NoError(t, c.Send("move", "x"))
	require.NoError(t, runUntil(t, c, func(esclient.Update) bool { return c.Pending() == 0 }))
	l.mu.Lock()
	times := slices.Clone(l.times)
	l.mu.Unlock()
	require.GreaterOrEqual(t, len(times), 2)
	assert.GreaterOrEqual(t, times[1].Sub(times[0]), 900*time.Millisecond, "the retry came after Retry-After")

	_, err := newClient(t, proxy.URL, "other").Sync(context.Background())
	require.NoError(t, err, "only the first request was limited")
}
