package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/goeventstream/eventstream/internal/api"
	"github.com/goeventstream/eventstream/internal/protocol"
	"github.com/goeventstream/eventstream/internal/stream"
)

// fullBudget is a push harness with room in flight for one sync, and no
// wait for it, whose room bob's sync fills until the returned function
// lets it go.
func fullBudget(t *testing.T) (h *harness, url string, fill func() (release func())) {
	g := newHoldStore("bob")
	h, url = pushHarness(t, wrapStore(func(s stream.Store) stream.Store { g.Store = s; return g }),
		func(a *api.Config, _ *stream.Config) {
			a.Push.PingInterval = time.Hour
			a.Limits.MaxSnapshotBytes = int64(a.Limits.MaxReplyBytes)
			a.Limits.MaxInflightBytes = a.Limits.MaxBodyBytes + int64(a.Limits.MaxReplyBytes)
			a.Limits.MaxInflightWait = 0
		})
	return h, url, func() func() {
		release := g.hold(false)
		done := make(chan *httptest.ResponseRecorder, 1)
		for held := false; !held; { // until no push holds room as bob's sync begins
			go func() { done <- h.do(http.MethodGet, "/s/bob/0", "") }()
			select {
			case <-g.held: // its sync holds all the room, in the store
				held = true
			case rec := <-done:
				require.Equal(t, http.StatusServiceUnavailable, rec.Code, rec.Body.String())
			case <-time.After(5 * time.Second):
				t.Fatal("bob's sync neither waits nor is refused")
			}
		}
		return func() {
			release()
			require.Equal(t, http.StatusOK, (<-done).Code)
		}
	}
}

// TestReadsOfSnapshotsReserveMemory: a GET of a snapshot or a dump holds
// it until it is written, so it reserves in-flight memory first and is
// refused when there is none (main served them without: 404 here).
func TestReadsOfSnapshotsReserveMemory(t *testing.T) {
	h, _, fill := fullBudget(t)
	release := fill()
	for _, target := range []string{"/s/snapshot", "/s/desyncs/20/1"} {
		rec := h.do(http.MethodGet, target, "")
		require.Equal(t, http.StatusServiceUnavailable, rec.Code, "%s: %s", target, rec.Body.String())
		assert.Equal(t, protocol.CodeServerBusy, errorCode(t, rec).Code)
	}
	release()
	assert.Equal(t, http.StatusNotFound, h.do(http.MethodGet, "/s/snapshot", "").Code, "served once there is room")
}

// TestPushReservesMemory: the upgrade's sync, a client's message and a
// push each hold their reply in flight, and are refused when there is no
// room: the upgrade 503 server_busy before it connects anyone, the
// message with its error, the push by closing its connection 1013 (main
// did all three without reserving).
func TestPushReservesMemory(t *testing.T) {
	h, url, fill := fullBudget(t)
	alice := dial(t, url+"/s/alice/0")
	next(t, alice, func(protocol.SyncReply) bool { return true })
	release := fill()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, resp, err := websocket.Dial(ctx, url+"/s/carol/0", nil)
	require.Error(t, err)
	require.NotNil(t, resp)
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, "the upgrade")

	require.NoError(t, alice.Write(ctx, websocket.MessageText, []byte(`{"batch":"b1","events":[{"type":"m"}]}`)))
	for {
		_, b, err := alice.Read(ctx)
		require.NoError(t, err)
		var e protocol.ErrorReply
		if json.Unmarshal(b, &e) == nil && e.Error.Code != "" {
			assert.Equal(t, protocol.CodeServerBusy, e.Error.Code, "the message")
			break
		}
		require.NotEqual(t, `{"batch":"b1"}`, string(b), "the message was applied")
	}

	advance(t, h, 50*time.Millisecond) // a tick to push to alice
	for {
		_, _, err := alice.Read(ctx)
		if err != nil {
			assert.Equal(t, websocket.StatusTryAgainLater, websocket.CloseStatus(err), "the push: %v", err)
			break
		}
	}
	release()
	h.clock.Advance(50 * time.Millisecond) // bob's tick is sealed
	connects, moves := 0, 0
	for _, e := range h.all("s", "reader") {
		switch e.Type {
		case protocol.TypeConnect:
			connects++
		case "m":
			moves++
		}
	}
	assert.Equal(t, 2, connects, "alice and bob; carol was never connected")
	assert.Zero(t, moves, "alice's refused message applied nothing")
}
