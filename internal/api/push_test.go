package api_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/goeventstream/eventstream/internal/api"
	"github.com/goeventstream/eventstream/internal/protocol"
	"github.com/goeventstream/eventstream/internal/redistest"
	"github.com/goeventstream/eventstream/internal/stream"
)

// pushHarness serves a harness over a real listener, for WebSockets.
func pushHarness(t testing.TB, opts ...option) (*harness, string) {
	return pushHarnessOn(t, "", opts...)
}

// pushHarnessOn is pushHarness on the store at url (memory if "").
func pushHarnessOn(t testing.TB, url redisURL, opts ...option) (*harness, string) {
	h := newHarnessOn(t, url, opts...)
	srv := httptest.NewServer(h.server)
	t.Cleanup(func() { h.server.ClosePush(); srv.Close() })
	return h, "ws" + strings.TrimPrefix(srv.URL, "http")
}

func dial(t testing.TB, url string) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, url, nil)
	require.NoError(t, err)
	t.Cleanup(func() { c.CloseNow() })
	return c
}

// next reads messages until one passes keep, within a generous time.
func next(t *testing.T, c *websocket.Conn, keep func(protocol.SyncReply) bool) protocol.SyncReply {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for {
		_, b, err := c.Read(ctx)
		require.NoError(t, err)
		var r protocol.SyncReply
		require.NoError(t, json.Unmarshal(b, &r), "%s", b)
		if keep(r) {
			return r
		}
	}
}

func TestPushDeliversEachTick(t *testing.T) { testPushDeliversEachTick(t, "") }

// TestPushOnRedis: the push rules hold on the Redis store too.
func TestPushOnRedis(t *testing.T) {
	url := redisURL(redistest.Start(t).URL())
	t.Run("DeliversEachTick", func(t *testing.T) { testPushDeliversEachTick(t, url) })
	t.Run("MessagesAreSyncBodies", func(t *testing.T) { testPushMessagesAreSyncBodies(t, url) })
	t.Run("NewEpochNewID", func(t *testing.T) { testPushNewEpochNewID(t, url) })
	t.Run("NewEpochAfterTheWindow", func(t *testing.T) { testPushNewEpochAfterTheWindow(t, url) })
	t.Run("MessageOfTheOldEpoch", func(t *testing.T) { testPushMessageOfTheOldEpoch(t, url) })
}

func testPushDeliversEachTick(t *testing.T, store redisURL) {
	h, url := pushHarnessOn(t, store)
	c := dial(t, url+"/s/alice/0")
	first := next(t, c, func(protocol.SyncReply) bool { return true })
	assert.Equal(t, "1", first.ID)
	assert.EqualValues(t, 20, first.TPS)
	assert.EqualValues(t, 20, first.Ckpt)
	require.Len(t, first.Events, 1, "the stream from _a")
	assert.Equal(t, protocol.TypeReset, first.Events[0].Type)

	h.sync("/s/bob/0", `{"events":[{"type":"move","body":"left"}]}`)
	advance(t, h, 50*time.Millisecond) // tick 1 is sealed
	var got []protocol.Event
	last := next(t, c, func(r protocol.SyncReply) bool {
		got = append(got, r.Events...)
		return len(got) >= 3
	})
	assert.Equal(t, "1", last.ID)
	assert.Equal(t, first.Epoch, last.Epoch)
	assert.Equal(t, h.all("s", "reader")[1:4], got, "alice's and bob's _c and bob's move, once, in order")
}

func TestPushMessagesAreSyncBodies(t *testing.T) { testPushMessagesAreSyncBodies(t, "") }

func testPushMessagesAreSyncBodies(t *testing.T, store redisURL) {
	h, url := pushHarnessOn(t, store)
	c := dial(t, url+"/s/alice/0")
	next(t, c, func(protocol.SyncReply) bool { return true })
	ctx := context.Background()
	body := `{"batch":"b1","events":[{"type":"move","body":"x"}]}`
	require.NoError(t, c.Write(ctx, websocket.MessageText, []byte(body)))
	require.NoError(t, c.Write(ctx, websocket.MessageText, []byte(body))) // a retry: applied once
	require.NoError(t, c.Write(ctx, websocket.MessageText, []byte(`{"events":[{"type":"_x"}]}`)))

	// Both are acknowledged; the bad message is answered with its error;
	// the connection stays.
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	acks := 0
	for {
		_, b, err := c.Read(rctx)
		require.NoError(t, err)
		var e protocol.ErrorReply
		if json.Unmarshal(b, &e) == nil && e.Error.Code != "" {
			assert.Equal(t, protocol.CodeReservedType, e.Error.Code)
			break
		}
		if string(b) == `{"batch":"b1"}` {
			acks++
		}
	}
	assert.Equal(t, 2, acks)
	advance(t, h, 100*time.Millisecond)
	moves := 0
	next(t, c, func(r protocol.SyncReply) bool {
		for _, e := range r.Events {
			if e.Type == "move" {
				moves++
			}
		}
		return r.T >= 3
	})
	assert.Equal(t, 1, moves, "stamped once, pushed back once")
}

func TestPushRefusals(t *testing.T) {
	_, url := pushHarness(t, func(a *api.Config, _ *stream.Config) {
		a.Push = api.DefaultPushConfig()
		a.Push.MaxConnections = 1
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, resp, err := websocket.Dial(ctx, url+"/bad%20name/alice/0", nil)
	require.Error(t, err)
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode, "the same validation as a sync")

	dial(t, url+"/s/alice/0")
	_, resp, err = websocket.Dial(ctx, url+"/s/bob/0", nil)
	require.Error(t, err)
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, "past -max-ws-connections")
}

func TestPushGoingAway(t *testing.T) {
	h, url := pushHarness(t)
	c := dial(t, url+"/s/alice/0")
	next(t, c, func(protocol.SyncReply) bool { return true })
	h.server.ClosePush()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for {
		_, _, err := c.Read(ctx)
		if err != nil {
			assert.Equal(t, websocket.StatusGoingAway, websocket.CloseStatus(err), "%v", err)
			assert.False(t, errors.Is(err, context.DeadlineExceeded))
			return
		}
	}
}

// TestPushPresence: an open push connection keeps its client connected
// however long it sends nothing (the server's pings refresh its presence);
// a client that reconnects within the client timeout gets no _d and no
// second _c.
func TestPushPresence(t *testing.T) {
	g := newHoldStore("alice") // never held: it counts alice's syncs
	h, url := pushHarness(t, wrapStore(func(s stream.Store) stream.Store { g.Store = s; return g }),
		func(a *api.Config, _ *stream.Config) { a.Push.PingInterval = 20 * time.Millisecond })
	c := dial(t, url+"/s/alice/0")
	first := next(t, c, func(protocol.SyncReply) bool { return true })
	ctx := context.Background()
	reading := make(chan struct{})
	go func() { // a client reads all the time: pongs go out as it does
		defer close(reading)
		for {
			if _, _, err := c.Read(ctx); err != nil {
				return
			}
		}
	}()
	waitTickers(t, h, 1) // alice's pings
	for range 12 {       // 12 s of the store's time, each second with a ping
		syncs := g.syncs.Load()
		advance(t, h, time.Second)
		require.Eventually(t, func() bool { return g.syncs.Load() > syncs }, 5*time.Second, time.Millisecond,
			"the ping refreshes alice's presence")
		_, err := h.store.Sweep(ctx)
		require.NoError(t, err)
	}
	c.Close(websocket.StatusNormalClosure, "")
	<-reading
	h.clock.Advance(5 * time.Second) // back within the client timeout
	c = dial(t, url+"/s/alice/"+fmt.Sprint(first.T))
	next(t, c, func(protocol.SyncReply) bool { return true })
	advance(t, h, time.Second)
	_, err := h.store.Sweep(ctx)
	require.NoError(t, err)

	var presence []string
	for _, e := range h.all("s", "reader") {
		if e.Type == protocol.TypeConnect || e.Type == protocol.TypeDisconnect {
			presence = append(presence, e.Type+e.Body)
		}
	}
	assert.Equal(t, []string{"_c1"}, presence, "alice connected once and was never disconnected")
}

// TestPushOutlivesServerTimeouts: the http.Server's read and write
// timeouts (15 s in eventstreamd) do not cut a push connection: its
// deadlines are cleared when it is upgraded.
func TestPushOutlivesServerTimeouts(t *testing.T) {
	h := newHarness(t)
	srv := httptest.NewUnstartedServer(h.server)
	srv.Config.ReadTimeout, srv.Config.WriteTimeout = 100*time.Millisecond, 100*time.Millisecond
	srv.Start()
	t.Cleanup(func() { h.server.ClosePush(); srv.Close() })
	c := dial(t, "ws"+strings.TrimPrefix(srv.URL, "http")+"/s/alice/0")
	next(t, c, func(protocol.SyncReply) bool { return true })
	time.Sleep(500 * time.Millisecond) // past both timeouts
	h.sync("/s/bob/0", `{"events":[{"type":"move","body":"late"}]}`)
	advance(t, h, 50*time.Millisecond)
	next(t, c, func(r protocol.SyncReply) bool {
		return slices.ContainsFunc(r.Events, func(e protocol.Event) bool { return e.Body == "late" })
	})
}

// TestPushOriginRefusedBeforeAnything: a browser from an origin
// -cors-origins does not list is refused, and nothing happens to the stream.
func TestPushOriginRefusedBeforeAnything(t *testing.T) {
	h, url := pushHarness(t, func(a *api.Config, _ *stream.Config) { a.CORSOrigins = []string{"https://game.example"} })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, resp, err := websocket.Dial(ctx, url+"/s/alice/0", &websocket.DialOptions{
		HTTPHeader: http.Header{"Origin": []string{"https://evil.example"}}})
	require.Error(t, err)
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)
	st, err := h.store.Stats(ctx, 10)
	require.NoError(t, err)
	assert.Zero(t, st.Streams, "no stream created, no client connected")

	c, _, err := websocket.Dial(ctx, url+"/s/alice/0", &websocket.DialOptions{
		HTTPHeader: http.Header{"Origin": []string{"https://game.example"}}})
	require.NoError(t, err, "a listed origin")
	c.CloseNow()
}

// TestPushSlowReaderIsClosed: a client that stops reading while pushes
// keep coming is closed (once a push waits more than -ws-max-lag to go
// out), and it holds up nobody: a client of the same stream that reads
// gets every event.
func TestPushSlowReaderIsClosed(t *testing.T) {
	h, url := pushHarness(t, func(a *api.Config, s *stream.Config) {
		a.Push = api.DefaultPushConfig()
		a.Push.MaxLag = 200 * time.Millisecond
		s.MaxSyncsPerSecond, s.MaxEventsPerSecond, s.MaxStreamBytesPerSecond = 0, 0, 0
	})
	slow := dial(t, url+"/s/slow/0")
	slow.SetReadLimit(-1)
	next(t, slow, func(protocol.SyncReply) bool { return true })
	reader := dial(t, url+"/s/reader/0")
	reader.SetReadLimit(-1)
	next(t, reader, func(protocol.SyncReply) bool { return true })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var got atomic.Int64
	go func() { // the reader reads all
		for {
			_, b, err := reader.Read(ctx)
			if err != nil {
				return
			}
			got.Add(int64(strings.Count(string(b), `"type":"big"`)))
		}
	}()
	body := strings.Repeat("x", 16<<10)
	req := `{"events":[` + strings.Repeat(`{"type":"big","body":"`+body+`"},`, 2) + `{"type":"big","body":"` + body + `"}]}`
	sent := int64(0)
	for tick := 0; tick < 10; tick++ { // about 1 MB a tick, more than the connection holds
		for range 20 {
			h.sync("/s/writer/0", req)
			sent += 3
		}
		advance(t, h, 50*time.Millisecond)
		require.Eventually(t, func() bool { return got.Load() >= sent }, 10*time.Second, time.Millisecond,
			"the reader keeps up, tick by tick")
	}
	advance(t, h, 50*time.Millisecond)
	// The slow client was closed: reading what its connection held ends
	// in an error, not in more pushes forever.
	rctx, rcancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer rcancel()
	var err error
	for err == nil {
		_, _, err = slow.Read(rctx)
	}
	assert.NotErrorIs(t, err, context.DeadlineExceeded, "the server closed the slow client")
	assert.Equal(t, sent, got.Load(), "the reader got every event, once")
}

// rawUpgrade opens a push connection by hand on a TCP connection, writing
// extra right after the handshake in the same write, and returns the
// connection with a reader positioned after the server's 101.
func rawUpgrade(t *testing.T, wsURL, path string, extra []byte) (net.Conn, *bufio.Reader) {
	t.Helper()
	nc, br, status, err := upgradeRaw(wsURL, path, extra, 0)
	require.NoError(t, err)
	t.Cleanup(func() { nc.Close() })
	require.Equal(t, http.StatusSwitchingProtocols, status)
	return nc, br
}

// upgradeRaw sends a WebSocket handshake for path, and extra in the same
// write, on a new TCP connection whose receive buffer is rcvBuf bytes (0:
// the system's), and returns the connection with a reader positioned
// after the server's answer, and its status. On any status but 101 the
// connection is closed. Safe off the test's goroutine.
func upgradeRaw(wsURL, path string, extra []byte, rcvBuf int) (net.Conn, *bufio.Reader, int, error) {
	nc, err := net.Dial("tcp", strings.TrimPrefix(wsURL, "ws://"))
	if err != nil {
		return nil, nil, 0, err
	}
	if rcvBuf > 0 {
		if err := nc.(*net.TCPConn).SetReadBuffer(rcvBuf); err != nil {
			nc.Close()
			return nil, nil, 0, err
		}
	}
	req := "GET " + path + " HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	br := bufio.NewReaderSize(nc, 512)
	var resp *http.Response
	if _, err = nc.Write(append([]byte(req), extra...)); err == nil {
		resp, err = http.ReadResponse(br, nil)
	}
	if err != nil {
		nc.Close()
		return nil, nil, 0, err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		nc.Close()
	}
	return nc, br, resp.StatusCode, nil
}

// maskedText is a client's text frame.
func maskedText(payload string) []byte { return maskedFrame(0x1, payload) }

// maskedFrame is a client's final frame of opcode op.
func maskedFrame(op byte, payload string) []byte {
	if len(payload) >= 126 {
		panic("short payloads only")
	}
	key := [4]byte{1, 2, 3, 4}
	b := append([]byte{0x80 | op, 0x80 | byte(len(payload))}, key[:]...)
	for i := range len(payload) {
		b = append(b, payload[i]^key[i%4])
	}
	return b
}

// readFrameHead reads the head of the server's next frame (unmasked), and
// returns its first byte (FIN and opcode) and its payload's length.
func readFrameHead(br *bufio.Reader) (byte, int64, error) {
	var head [2]byte
	if _, err := io.ReadFull(br, head[:]); err != nil {
		return 0, 0, err
	}
	n := int64(head[1] & 0x7f)
	var err error
	switch n {
	case 126:
		var ext [2]byte
		_, err = io.ReadFull(br, ext[:])
		n = int64(binary.BigEndian.Uint16(ext[:]))
	case 127:
		var ext [8]byte
		_, err = io.ReadFull(br, ext[:])
		n = int64(binary.BigEndian.Uint64(ext[:]))
	}
	return head[0], n, err
}

// readText reads the server's next text frame.
func readText(t *testing.T, br *bufio.Reader) string {
	t.Helper()
	first, n, err := readFrameHead(br)
	require.NoError(t, err)
	require.Equal(t, byte(0x81), first, "a final text frame")
	payload := make([]byte, n)
	_, err = io.ReadFull(br, payload)
	require.NoError(t, err)
	return string(payload)
}

// TestPushFirstMessageWithTheHandshake: a message the client sends in the
// same packet as its handshake, which the HTTP server reads with the
// request, is applied like any other.
func TestPushFirstMessageWithTheHandshake(t *testing.T) {
	h, url := pushHarness(t)
	nc, br := rawUpgrade(t, url, "/s/alice/0", maskedText(`{"batch":"b1","events":[{"type":"move","body":"up"}]}`))
	require.NoError(t, nc.SetReadDeadline(time.Now().Add(5*time.Second)))
	assert.Contains(t, readText(t, br), `"events":[`, "the first push")
	assert.JSONEq(t, `{"batch":"b1"}`, readText(t, br))
	advance(t, h, 50*time.Millisecond) // the tick of the move is sealed
	var types []string
	for _, e := range h.all("s", "reader") {
		types = append(types, e.Type)
	}
	assert.Equal(t, []string{protocol.TypeReset, protocol.TypeConnect, "move"}, types[:3])
}

// TestPushIdleConnectionMemory holds the heap and stacks of idle push
// connections to docs/performance.md's figures (budget 9): the clients
// here are bare TCP connections, so nearly all that is measured is the
// server's (and the test's log observer, about 1 KiB a connection).
func TestPushIdleConnectionMemory(t *testing.T) {
	_, url := pushHarness(t)
	const n, streams = 200, 20
	for i := range streams { // the streams and their loops, not measured
		rawUpgrade(t, url, fmt.Sprintf("/s%d/warm/0", i), nil)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	conns := make([]net.Conn, n)
	for i := range n {
		conns[i], _ = rawUpgrade(t, url, fmt.Sprintf("/s%d/c%d/0", i%streams, i), nil)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	heap := (int64(after.HeapAlloc) - int64(before.HeapAlloc)) / n
	stacks := (int64(after.StackInuse) - int64(before.StackInuse)) / n
	t.Logf("per idle push connection: %.1f KiB of heap, %.1f KiB of stacks", float64(heap)/1024, float64(stacks)/1024)
	// Before the handler let go of its request: 23 KiB and 20 KiB. The
	// race detector makes both larger.
	heapBound, stackBound := int64(10<<10), int64(10<<10)
	if raceEnabled {
		heapBound, stackBound = 12<<10, 20<<10
	}
	assert.LessOrEqual(t, heap, heapBound)
	assert.LessOrEqual(t, stacks, stackBound)
	runtime.KeepAlive(conns)
}

// TestPushUpgradeIsARequest: the upgrade is counted and timed as a
// request when it is done, not when the connection ends, so that a push
// connection's life does not show as one very slow sync.
func TestPushUpgradeIsARequest(t *testing.T) {
	h, url := pushHarness(t)
	c := dial(t, url+"/s/alice/0")
	next(t, c, func(protocol.SyncReply) bool { return true })
	// The handler returns once the connection is accepted, and is counted
	// then; the connection's goroutine may send its first push before.
	var err error
	assert.Eventually(t, func() bool {
		err = testutil.GatherAndCompare(h.reg, strings.NewReader(`
# HELP eventstreamd_http_requests_total HTTP requests by route pattern, method and status code.
# TYPE eventstreamd_http_requests_total counter
eventstreamd_http_requests_total{method="GET",route="/{stream}/{client}/{tick}",status="101"} 1
`), "eventstreamd_http_requests_total")
		return err == nil
	}, 5*time.Second, time.Millisecond)
	assert.NoError(t, err, "counted while the connection is open")
}

// readGate is a store whose first Read waits until the test lets it go.
type readGate struct {
	stream.Store
	reading chan struct{} // a Read began
	release chan struct{} // closed: Reads go on
}

func (g *readGate) Read(ctx context.Context, req *stream.SyncRequest) (*stream.SyncResult, error) {
	select {
	case g.reading <- struct{}{}:
	default:
	}
	<-g.release
	return g.Store.Read(ctx, req)
}

// TestPushShutdownWhileSendingHistory: a connection still being sent its
// history when the server begins to shut down is closed with going away
// when it would join its stream, and ClosePush does not wait for it
// forever.
func TestPushShutdownWhileSendingHistory(t *testing.T) {
	g := &readGate{reading: make(chan struct{}, 1), release: make(chan struct{})}
	h, url := pushHarness(t, wrapStore(func(s stream.Store) stream.Store { g.Store = s; return g }),
		func(_ *api.Config, s *stream.Config) { s.PageEvents = 2 })
	for range 3 {
		h.sync("/s/writer/0", `{"events":[{"type":"m"},{"type":"m"}]}`)
		h.clock.Advance(50 * time.Millisecond)
	}
	c := dial(t, url+"/s/alice/0")
	first := next(t, c, func(protocol.SyncReply) bool { return true })
	require.True(t, first.More, "the history takes pages")
	<-g.reading // the connection waits for its second page

	closed := make(chan struct{})
	go func() { h.server.ClosePush(); close(closed) }()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.Eventually(t, func() bool { // the server refuses new connections: it is closing
		_, resp, err := websocket.Dial(ctx, url+"/s/probe/0", nil)
		return err != nil && resp != nil && resp.StatusCode == http.StatusServiceUnavailable
	}, 5*time.Second, 10*time.Millisecond)
	close(g.release)

	for {
		_, _, err := c.Read(ctx)
		if err != nil {
			assert.Equal(t, websocket.StatusGoingAway, websocket.CloseStatus(err), "%v", err)
			break
		}
	}
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("ClosePush still waits for the connection")
	}
}

// TestPushRefusedHandshakeConnectsNobody: a GET that asks for a WebSocket
// but lacks the rest of the handshake is refused with a JSON error, before
// the sync: no stream is created, no client connected.
func TestPushRefusedHandshakeConnectsNobody(t *testing.T) {
	h := newHarness(t)
	full := []string{"Upgrade", "websocket", "Connection", "Upgrade",
		"Sec-WebSocket-Version", "13", "Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="}
	without := func(name string) []string {
		var out []string
		for i := 0; i < len(full); i += 2 {
			if full[i] != name {
				out = append(out, full[i], full[i+1])
			}
		}
		return out
	}
	tests := []struct {
		name       string
		give       []string
		wantStatus int
	}{
		{name: "no Connection", give: without("Connection"), wantStatus: http.StatusUpgradeRequired},
		{name: "no version", give: without("Sec-WebSocket-Version"), wantStatus: http.StatusBadRequest},
		{name: "old version", give: append(without("Sec-WebSocket-Version"), "Sec-WebSocket-Version", "8"), wantStatus: http.StatusBadRequest},
		{name: "no key", give: without("Sec-WebSocket-Key"), wantStatus: http.StatusBadRequest},
		{name: "short key", give: append(without("Sec-WebSocket-Key"), "Sec-WebSocket-Key", "c2hvcnQ="), wantStatus: http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := h.do(http.MethodGet, "/s/alice/0", "", tt.give...)
			require.Equal(t, tt.wantStatus, rec.Code, rec.Body.String())
			assert.Equal(t, "application/json", rec.Header().Get("Content-Type"))
			assert.Equal(t, tt.wantStatus, protocol.Status(errorCode(t, rec).Code), "the code's status")
			st, err := h.store.Stats(context.Background(), 10)
			require.NoError(t, err)
			assert.Zero(t, st.Streams, "no stream created, no client connected")
		})
	}
}

// TestPushConfigPartial: a PushConfig with some fields set takes the
// defaults of the others (a zero PingInterval reached time.NewTicker and
// panicked); a negative field is refused.
func TestPushConfigPartial(t *testing.T) {
	h, url := pushHarness(t, func(a *api.Config, _ *stream.Config) { a.Push = api.PushConfig{MaxConnections: 10} })
	c := dial(t, url+"/s/alice/0")
	next(t, c, func(protocol.SyncReply) bool { return true })
	h.sync("/s/bob/0", `{"events":[{"type":"move"}]}`)
	advance(t, h, 50*time.Millisecond)
	next(t, c, func(r protocol.SyncReply) bool {
		return slices.ContainsFunc(r.Events, func(e protocol.Event) bool { return e.Type == "move" })
	})

	for _, give := range []api.PushConfig{{MaxConnections: -1}, {PingInterval: -time.Second}, {MaxLag: -time.Second},
		{QuietInterval: -time.Second}, {QuietInterval: api.MaxQuietInterval + time.Millisecond},
		{WriteBuffer: -1}, {WriteBuffer: api.MinWriteBuffer - 1}} {
		assert.Error(t, give.Validate(), "%+v", give)
	}
	assert.NoError(t, api.PushConfig{}.Validate(), "zero fields take their defaults")
}

// TestPushMessagesStandInForPresence: a client whose message was applied
// since the last ping has its presence not refreshed again: the message's
// sync did it. One that sent nothing for a ping interval has (main synced
// every client every interval).
func TestPushMessagesStandInForPresence(t *testing.T) {
	g := newHoldStore("alice") // never held: it counts alice's syncs
	h, url := pushHarness(t, wrapStore(func(s stream.Store) stream.Store { g.Store = s; return g }),
		func(a *api.Config, _ *stream.Config) { a.Push.PingInterval = time.Second })
	c := dial(t, url+"/s/alice/0")
	next(t, c, func(protocol.SyncReply) bool { return true })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { // reads all the time: pongs go out as it does
		for {
			if _, _, err := c.Read(ctx); err != nil {
				return
			}
		}
	}()
	waitTickers(t, h, 1) // alice's pings
	const rounds = 6
	start := g.syncs.Load()
	for i := range rounds { // a ping interval, with a message half way
		h.clock.Advance(500 * time.Millisecond)
		syncs := g.syncs.Load()
		msg := fmt.Sprintf(`{"batch":"b%d","events":[{"type":"move"}]}`, i)
		require.NoError(t, c.Write(ctx, websocket.MessageText, []byte(msg)))
		require.Eventually(t, func() bool { return g.syncs.Load() > syncs }, 5*time.Second, time.Millisecond, "applied")
		h.clock.Advance(500 * time.Millisecond) // the ping
	}
	h.clock.Advance(time.Second) // an interval with none
	require.Eventually(t, func() bool { return g.syncs.Load() > start+rounds }, 5*time.Second, time.Millisecond,
		"the interval without a message refreshes alice's presence")
	assert.Equal(t, start+rounds+1, g.syncs.Load(), "a sync a message, and one for the interval without")
}

// TestPushOnePingAtATime: a client that answers no ping is not pinged
// again while the last ping waits for its pong (pongWait, 10 s): its
// connection holds one ping's goroutine, and its presence is refreshed
// every interval all the same. Main started a goroutine every interval,
// each waiting out its pongWait: two to four a stalled connection, five
// here.
func TestPushOnePingAtATime(t *testing.T) {
	h, g, _, pings := pingedClient(t)
	start := g.syncs.Load()
	for i := range int64(5) {
		h.clock.Advance(time.Second)
		require.Eventually(t, func() bool { return g.syncs.Load() > start+i }, 5*time.Second, time.Millisecond,
			"each interval refreshes alice's presence")
	}
	require.Eventually(t, func() bool { return pings.Load() > 0 }, 5*time.Second, time.Millisecond, "alice is pinged")
	assert.Equal(t, 1, goroutinesIn("(*pushConn).keepAlive.func"), "the goroutines of pings that wait for their pong")
	assert.EqualValues(t, 1, pings.Load(), "pings sent")
}

// TestPushPingsClientsThatSend: a client that sends a message every
// interval is pinged all the same, though its presence is not refreshed
// again: what it sends says nothing of whether it reads, and one that
// never reads was never pinged, so never cut on a quiet stream, and stayed
// present (main: no ping).
func TestPushPingsClientsThatSend(t *testing.T) {
	h, g, nc, pings := pingedClient(t)
	start := g.syncs.Load()
	for i := range int64(3) { // a message each interval
		h.clock.Advance(500 * time.Millisecond)
		_, err := nc.Write(maskedText(fmt.Sprintf(`{"batch":"b%d"}`, i)))
		require.NoError(t, err)
		require.Eventually(t, func() bool { return g.syncs.Load() > start+i }, 5*time.Second, time.Millisecond, "applied")
		h.clock.Advance(500 * time.Millisecond) // the ping
	}
	require.Eventually(t, func() bool { return pings.Load() > 0 }, 5*time.Second, time.Millisecond, "alice is pinged")
	assert.Equal(t, start+3, g.syncs.Load(), "a sync a message, and none for presence")
}

// pingedClient connects alice by a raw upgrade to a server that pings
// every second, and reads all the server sends her, answering no ping:
// the store that counts her syncs, her connection, and the pings she got.
func pingedClient(t *testing.T) (*harness, *holdStore, net.Conn, *atomic.Int64) {
	g := newHoldStore("alice") // never held: it counts alice's syncs
	h, url := pushHarness(t, wrapStore(func(s stream.Store) stream.Store { g.Store = s; return g }),
		func(a *api.Config, _ *stream.Config) { a.Push.PingInterval = time.Second })
	nc, br := rawUpgrade(t, url, "/s/alice/0", nil)
	pings := new(atomic.Int64)
	go func() {
		for {
			op, _, _, err := skipFrame(br)
			if err != nil {
				return
			}
			if op == 0x9 {
				pings.Add(1)
			}
		}
	}()
	waitTickers(t, h, 1) // alice's pings
	return h, g, nc, pings
}

// goroutinesIn counts the goroutines whose stack holds fn.
func goroutinesIn(fn string) int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, fn) {
			count++
		}
	}
	return count
}

// TestPushQuietInterval: ticks without events are pushed once
// QuietInterval has passed since the last push: every 2 ticks of 20 a
// second by default, every 3 with 150 ms, every 4 with 200 ms.
func TestPushQuietInterval(t *testing.T) {
	for _, tc := range []struct {
		quiet time.Duration
		ticks int64
	}{{0, 2}, {150 * time.Millisecond, 3}, {200 * time.Millisecond, 4}} {
		t.Run(fmt.Sprint(tc.quiet), func(t *testing.T) {
			h, url := pushHarness(t, func(a *api.Config, _ *stream.Config) { a.Push.QuietInterval = tc.quiet })
			c := dial(t, url+"/s/alice/0")
			next(t, c, func(protocol.SyncReply) bool { return true })
			for range 10 {
				advance(t, h, 50*time.Millisecond)
			}
			joined := next(t, c, func(protocol.SyncReply) bool { return true })
			require.Len(t, joined.Events, 1, "alice's _c")
			quiet := next(t, c, func(protocol.SyncReply) bool { return true })
			assert.Equal(t, joined.T+tc.ticks, quiet.T, "the first quiet push")
			assert.Empty(t, quiet.Events)
			assert.Equal(t, joined.T+2*tc.ticks, next(t, c, func(protocol.SyncReply) bool { return true }).T, "the next")
		})
	}
	// A loop that reads late, two ticks at once, counts both: the quiet
	// interval is of ticks, not of reads (main pushed two reads later).
	h, url := pushHarness(t)
	c := dial(t, url+"/s/alice/0")
	next(t, c, func(protocol.SyncReply) bool { return true })
	advance(t, h, 50*time.Millisecond)
	joined := next(t, c, func(protocol.SyncReply) bool { return true })
	require.Len(t, joined.Events, 1, "alice's _c")
	advance(t, h, 100*time.Millisecond)
	advance(t, h, 100*time.Millisecond)
	assert.Equal(t, joined.T+2, next(t, c, func(protocol.SyncReply) bool { return true }).T, "pushed at the first read past the interval")
}

// TestPushHistoryPagesCarryTheID: every page of a connection's history
// names its client (main sent the pages after the first with "id":"").
func TestPushHistoryPagesCarryTheID(t *testing.T) {
	h, url := pushHarness(t, func(_ *api.Config, s *stream.Config) { s.PageEvents = 2 })
	for range 3 {
		h.sync("/s/writer/0", `{"events":[{"type":"m"},{"type":"m"}]}`)
		h.clock.Advance(50 * time.Millisecond)
	}
	c := dial(t, url+"/s/alice/0")
	pages := 0
	next(t, c, func(r protocol.SyncReply) bool {
		pages++
		assert.Equal(t, "2", r.ID, "page %d", pages)
		return !r.More
	})
	assert.Greater(t, pages, 2)
}

// TestPushErrorEchoesTheBatch: a refused message's error names its batch
// id when it had one that could be read, so that a client tells which of
// its messages was refused (main's errors named none).
func TestPushErrorEchoesTheBatch(t *testing.T) {
	_, url := pushHarness(t)
	c := dial(t, url+"/s/alice/0")
	next(t, c, func(protocol.SyncReply) bool { return true })
	tests := []struct {
		name      string
		give      string
		wantCode  string
		wantBatch string
	}{
		{name: "reserved type", give: `{"batch":"b7","events":[{"type":"_x"}]}`, wantCode: protocol.CodeReservedType, wantBatch: "b7"},
		{name: "batch after the bad event", give: `{"events":[{"type":"_x"}],"batch":"b8"}`, wantCode: protocol.CodeReservedType, wantBatch: "b8"},
		{name: "no batch", give: `{"events":[{"type":"_x"}]}`, wantCode: protocol.CodeReservedType},
		{name: "not JSON", give: `{"batch":"b9",`, wantCode: protocol.CodeBadRequest},
		{name: "batch too long", give: `{"batch":"` + strings.Repeat("b", protocol.MaxBatchLen+1) + `"}`, wantCode: protocol.CodeBadRequest},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.NoError(t, c.Write(ctx, websocket.MessageText, []byte(tt.give)))
			for {
				_, b, err := c.Read(ctx)
				require.NoError(t, err)
				var e struct {
					Error struct {
						Code  string `json:"code"`
						Batch string `json:"batch"`
					} `json:"error"`
				}
				if json.Unmarshal(b, &e) != nil || e.Error.Code == "" {
					continue // a push
				}
				assert.Equal(t, tt.wantCode, e.Error.Code)
				assert.Equal(t, tt.wantBatch, e.Error.Batch, "%s", b)
				return
			}
		})
	}
}
