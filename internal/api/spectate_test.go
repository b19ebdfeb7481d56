package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/goeventstream/eventstream/internal/api"
	"github.com/goeventstream/eventstream/internal/protocol"
	"github.com/goeventstream/eventstream/internal/redistest"
	"github.com/goeventstream/eventstream/internal/stream"
)

func spectatorToken(t testing.TB, sub string) string {
	return token(t, sub, "s", func(c jwt.MapClaims) { c["role"] = "spectator" })
}

// TestSpectatorRefusals: what a spectator may not do, on a stream that
// needs tokens ("s") and on an open one ("open-s"), is refused and leaves
// both streams exactly as they were: no event, no client, no stream.
func TestSpectatorRefusals(t *testing.T) { testSpectatorRefusals(t, "") }

// TestSpectatorRefusalsRedis: the same on the Redis store.
func TestSpectatorRefusalsRedis(t *testing.T) {
	testSpectatorRefusals(t, redisURL(redistest.Start(t).URL()))
}

func testSpectatorRefusals(t *testing.T, url redisURL) {
	spectator := bearer(spectatorToken(t, "v"))
	post := `{"batch":"b1","events":[{"type":"m","body":"x"}]}`
	tests := []struct {
		name       string
		method     string
		give       string
		body       string
		headers    []string
		wantStatus int
		wantCode   string
	}{
		{name: "open: posting events", give: "/open-s/v/1?spectate=1", body: post, wantStatus: 403, wantCode: protocol.CodeForbidden},
		{name: "open: an empty POST", give: "/open-s/v/1?spectate=1", wantStatus: 403, wantCode: protocol.CodeForbidden},
		{name: "open: a hash report", give: "/open-s/v/21?spectate=1", body: `{"hashes":[{"t":20,"h":"ab"}]}`, wantStatus: 403, wantCode: protocol.CodeForbidden},
		{name: "open: posting as a player's id", give: "/open-s/owner/1?spectate=1", body: post, wantStatus: 403, wantCode: protocol.CodeForbidden},
		{name: "open: uploading a snapshot", method: http.MethodPut, give: "/open-s/owner/snapshot/20?spectate=1", body: "state", wantStatus: 403, wantCode: protocol.CodeForbidden},
		{name: "open: uploading a dump", method: http.MethodPut, give: "/open-s/owner/dump/20?spectate=1", body: "state", wantStatus: 403, wantCode: protocol.CodeForbidden},
		{name: "open: spectate not 1", method: http.MethodGet, give: "/open-s/v/0?spectate=yes", wantStatus: 400, wantCode: protocol.CodeBadRequest},
		{name: "open: spectate twice", method: http.MethodGet, give: "/open-s/v/0?spectate=1&spectate=1", wantStatus: 400, wantCode: protocol.CodeBadRequest},
		{name: "open: a bad private id", method: http.MethodGet, give: "/open-s/bad$id/0?spectate=1", wantStatus: 400, wantCode: protocol.CodeBadClient},
		{name: "open: a stream that does not exist", method: http.MethodGet, give: "/open-new/v/0?spectate=1", wantStatus: 404, wantCode: protocol.CodeNotFound},
		{name: "token: posting events", give: "/s/v/1", body: post, headers: spectator, wantStatus: 403, wantCode: protocol.CodeForbidden},
		{name: "token: an empty POST", give: "/s/v/1", headers: spectator, wantStatus: 403, wantCode: protocol.CodeForbidden},
		{name: "token: a hash report", give: "/s/v/21", body: `{"hashes":[{"t":20,"h":"ab"}]}`, headers: spectator, wantStatus: 403, wantCode: protocol.CodeForbidden},
		{name: "token: ?spectate=1 changes nothing", give: "/s/v/1?spectate=1", body: post, headers: spectator, wantStatus: 403, wantCode: protocol.CodeForbidden},
		{name: "token: a player that asks to spectate may not post", give: "/s/p1/1?spectate=1", body: post, headers: bearer(token(t, "p1", "s")), wantStatus: 403, wantCode: protocol.CodeForbidden},
		{name: "token: uploading a snapshot", method: http.MethodPut, give: "/s/v/snapshot/20", body: "state", headers: spectator, wantStatus: 403, wantCode: protocol.CodeForbidden},
		{name: "token: uploading a dump", method: http.MethodPut, give: "/s/v/dump/20", body: "state", headers: spectator, wantStatus: 403, wantCode: protocol.CodeForbidden},
		{name: "token: a player's id", method: http.MethodGet, give: "/s/owner/0", headers: spectator, wantStatus: 403, wantCode: protocol.CodeForbidden},
		{name: "token: a stream that does not exist", method: http.MethodGet, give: "/new/v/0", headers: bearer(token(t, "v", "*", func(c jwt.MapClaims) { c["role"] = "spectator" })), wantStatus: 404, wantCode: protocol.CodeNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarnessOn(t, url, withAuth(t, "open-"))
			owner := bearer(token(t, "owner", "s"))
			h.sync("/s/owner/0", `{"events":[{"type":"m","body":"1"}]}`, owner...)
			h.sync("/open-s/owner/0", `{"events":[{"type":"m","body":"1"}]}`)
			h.clock.Advance(time.Second)
			before := h.read("s") + h.read("open-s")
			statsBefore, err := h.store.Stats(context.Background(), 10)
			require.NoError(t, err)

			method := tt.method
			if method == "" {
				method = http.MethodPost
			}
			rec := h.do(method, tt.give, tt.body, tt.headers...)
			require.Equal(t, tt.wantStatus, rec.Code, rec.Body.String())
			assert.Equal(t, tt.wantCode, errorCode(t, rec).Code)

			assert.Equal(t, before, h.read("s")+h.read("open-s"), "a refused request changed a stream")
			statsAfter, err := h.store.Stats(context.Background(), 10)
			require.NoError(t, err)
			assert.Equal(t, statsBefore.Streams, statsAfter.Streams, "a refused request created a stream")
			assert.Equal(t, statsBefore.Clients, statsAfter.Clients, "a refused request connected a client")
			assert.Equal(t, "2", h.sync("/open-s/newcomer/0", "").ID, "a refused request took a public id")
		})
	}
}

// spectate polls target (a sync path) from tick 0 to the tick in
// progress as a spectator, page by page, and returns the events and the
// replies' ids.
func (h *harness) spectate(prefix, query string, headers ...string) (events []protocol.Event, ids []string) {
	h.t.Helper()
	from := int64(0)
	for {
		rec := h.do(http.MethodGet, fmt.Sprintf("%s/%d%s", prefix, from, query), "", headers...)
		require.Equal(h.t, http.StatusOK, rec.Code, rec.Body.String())
		var r protocol.SyncReply
		require.NoError(h.t, json.Unmarshal(rec.Body.Bytes(), &r))
		events, ids = append(events, r.Events...), append(ids, r.ID)
		from = r.T
		if !r.More {
			return events, ids
		}
	}
}

// TestSpectatorPollsLikeAPlayer: a spectator's polls, by ?spectate=1 or by
// its token's role, get the events a player gets (the same ticks, the
// same order, page by page) with "id":"", and the spectator never appears
// in the stream: no _c, no client, no public id taken.
func TestSpectatorPollsLikeAPlayer(t *testing.T) { testSpectatorPollsLikeAPlayer(t, "") }

// TestSpectatorPollsLikeAPlayerRedis: the same on the Redis store.
func TestSpectatorPollsLikeAPlayerRedis(t *testing.T) {
	testSpectatorPollsLikeAPlayer(t, redisURL(redistest.Start(t).URL()))
}

func testSpectatorPollsLikeAPlayer(t *testing.T, url redisURL) {
	h := newHarnessOn(t, url, withAuth(t, "open-"), func(_ *api.Config, s *stream.Config) { s.PageEvents = 5 })
	a, b := bearer(token(t, "a", "s")), bearer(token(t, "b", "s"))
	for i := range 6 {
		h.sync("/s/a/0", fmt.Sprintf(`{"events":[{"type":"m","body":"a%d"},{"type":"m","body":"a%d'"}]}`, i, i), a...)
		h.sync("/s/b/0", fmt.Sprintf(`{"events":[{"type":"m","body":"b%d"}]}`, i), b...)
		h.sync("/open-s/a/0", fmt.Sprintf(`{"events":[{"type":"m","body":"a%d"}]}`, i))
		h.clock.Advance(70 * time.Millisecond)
	}
	h.clock.Advance(time.Second)
	stored := h.read("s") + h.read("open-s")
	stats, err := h.store.Stats(context.Background(), 10)
	require.NoError(t, err)

	tests := []struct {
		name    string
		stream  string
		prefix  string
		query   string
		headers []string
	}{
		{name: "by its token's role", stream: "s", prefix: "/s/v", headers: bearer(spectatorToken(t, "v"))},
		{name: "a player's token that asks", stream: "s", prefix: "/s/a", query: "?spectate=1", headers: a},
		{name: "open, by ?spectate=1", stream: "open-s", prefix: "/open-s/v", query: "?spectate=1"},
		{name: "open, naming a player's private id", stream: "open-s", prefix: "/open-s/a", query: "?spectate=1"},
	}
	polls := 0
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var player []protocol.Event
			if tt.stream == "s" {
				player = h.all("s", "a", a...)
			} else {
				player = h.all("open-s", "a")
			}
			got, ids := h.spectate(tt.prefix, tt.query, tt.headers...)
			polls += len(ids)
			require.Greater(t, len(ids), 1, "the stream fits a page: paging is not tested")
			assert.Equal(t, player, got, "a spectator sees other events than a player")
			for _, id := range ids {
				assert.Empty(t, id, "a spectator has a public id")
			}
		})
	}
	assert.Equal(t, stored, h.read("s")+h.read("open-s"), "spectators changed a stream")
	after, err := h.store.Stats(context.Background(), 10)
	require.NoError(t, err)
	assert.Equal(t, stats.Clients, after.Clients, "a spectator is a connected client")
	assert.NoError(t, testutil.GatherAndCompare(h.reg, strings.NewReader(fmt.Sprintf(`
# HELP eventstreamd_spectator_polls_total Spectators' polls answered: reads of a stream by no client of it.
# TYPE eventstreamd_spectator_polls_total counter
eventstreamd_spectator_polls_total %d
`, polls)), "eventstreamd_spectator_polls_total"))
}

// TestSpectatorKeepsNobodyPresent: a spectator's polls that name a
// player's private id do not keep that player present: it gets its _d
// when it goes silent, and the stream expires when no player is left,
// however many spectators watch it.
func TestSpectatorKeepsNobodyPresent(t *testing.T) { testSpectatorKeepsNobodyPresent(t, "") }

// TestSpectatorKeepsNobodyPresentRedis: the same on the Redis store.
func TestSpectatorKeepsNobodyPresentRedis(t *testing.T) {
	testSpectatorKeepsNobodyPresent(t, redisURL(redistest.Start(t).URL()))
}

func testSpectatorKeepsNobodyPresent(t *testing.T, url redisURL) {
	h := newHarnessOn(t, url)
	h.sync("/s/owner/0", "")
	for range 13 {
		h.clock.Advance(time.Second)
		rec := h.do(http.MethodGet, "/s/owner/0?spectate=1", "")
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	}
	res, err := h.store.Sweep(context.Background())
	require.NoError(t, err)
	require.Len(t, res.Disconnected, 1, "a spectator kept the player present")
	for range 70 {
		h.clock.Advance(time.Second)
		h.do(http.MethodGet, "/s/v/0?spectate=1", "")
	}
	res, err = h.store.Sweep(context.Background())
	require.NoError(t, err)
	assert.Equal(t, []string{"s"}, res.Expired, "spectators kept the stream alive")
	rec := h.do(http.MethodGet, "/s/v/0?spectate=1", "")
	assert.Equal(t, http.StatusNotFound, rec.Code, "a spectator created the stream")
}

// TestSpectatorPush: a spectator's push connection is sent what a
// player's is (the same ticks, the same order, paged history included)
// with "id":"", never appears in the stream, and every message it sends
// is refused with nothing applied.
func TestSpectatorPush(t *testing.T) { testSpectatorPush(t, "") }

// TestSpectatorPushRedis: the same on the Redis store.
func TestSpectatorPushRedis(t *testing.T) {
	testSpectatorPush(t, redisURL(redistest.Start(t).URL()))
}

func testSpectatorPush(t *testing.T, url redisURL) {
	h, ws := pushHarnessOn(t, url, func(_ *api.Config, s *stream.Config) { s.PageEvents = 4 })
	for i := range 5 {
		h.sync("/s/alice/0", fmt.Sprintf(`{"events":[{"type":"m","body":"a%d"},{"type":"m","body":"a%d'"}]}`, i, i))
		h.sync("/s/bob/0", fmt.Sprintf(`{"events":[{"type":"m","body":"b%d"}]}`, i))
		h.clock.Advance(60 * time.Millisecond)
	}
	h.clock.Advance(time.Second)
	ctx := context.Background()
	stats, err := h.store.Stats(ctx, 10)
	require.NoError(t, err)

	// The spectator names alice's private id: it is never looked up.
	c := dial(t, ws+"/s/alice/0?spectate=1")
	var got []protocol.Event
	collect := func(n int) protocol.SyncReply {
		return next(t, c, func(r protocol.SyncReply) bool {
			assert.Empty(t, r.ID, "a spectator's push has a public id")
			got = append(got, r.Events...)
			return len(got) >= n
		})
	}
	want := h.all("s", "alice")
	first := collect(len(want))
	assert.Equal(t, want, got, "the history, page by page")

	before := h.read("s")
	for _, msg := range []string{
		`{"batch":"b1","events":[{"type":"m","body":"x"}]}`,
		`{"hashes":[{"t":20,"h":"ab"}]}`,
		`{}`,
	} {
		require.NoError(t, c.Write(ctx, websocket.MessageText, []byte(msg)))
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		for {
			_, b, err := c.Read(rctx)
			require.NoError(t, err)
			var e protocol.ErrorReply
			if json.Unmarshal(b, &e) == nil && e.Error.Code != "" {
				assert.Equal(t, protocol.CodeForbidden, e.Error.Code, msg)
				break
			}
			var r protocol.SyncReply
			require.NoError(t, json.Unmarshal(b, &r))
			got = append(got, r.Events...)
		}
		cancel()
	}
	assert.Equal(t, before, h.read("s"), "a spectator's message changed the stream")

	h.sync("/s/bob/0", `{"events":[{"type":"m","body":"live"}]}`)
	advance(t, h, 100*time.Millisecond) // once the loop waits on its timer
	want = h.all("s", "alice")
	collect(len(want))
	assert.Equal(t, want, got, "live pushes")
	assert.Equal(t, first.Epoch, h.sync("/s/alice/0", "").Epoch)

	after, err := h.store.Stats(ctx, 10)
	require.NoError(t, err)
	assert.Equal(t, stats.Clients, after.Clients, "a spectator is a connected client")
	for _, e := range got {
		if e.Type == protocol.TypeConnect {
			assert.Contains(t, []string{"1", "2"}, e.Body, "a _c of someone else than alice and bob")
		}
	}
}

// TestSpectatorPushRefusals: a spectator's upgrade to a stream that does
// not exist, or past -max-spectators-per-stream, is refused before it
// connects anything, with 404 not_found and 503 server_full; a connection
// that ends gives its place back.
func TestSpectatorPushRefusals(t *testing.T) {
	h, ws := pushHarness(t, func(a *api.Config, _ *stream.Config) { a.Push.MaxSpectatorsPerStream = 1 })
	ctx := context.Background()
	refused := func(target string) *http.Response {
		t.Helper()
		dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		_, resp, err := websocket.Dial(dctx, ws+target, nil)
		require.Error(t, err)
		require.NotNil(t, resp)
		return resp
	}
	assert.Equal(t, http.StatusNotFound, refused("/s/v/0?spectate=1").StatusCode)
	st, err := h.store.Stats(ctx, 10)
	require.NoError(t, err)
	assert.Zero(t, st.Streams, "a spectator created a stream")

	h.sync("/s/alice/0", "")
	before := h.read("s")
	c := dial(t, ws+"/s/v/0?spectate=1")
	next(t, c, func(protocol.SyncReply) bool { return true })
	resp := refused("/s/w/0?spectate=1")
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	assert.Equal(t, "5", resp.Header.Get("Retry-After"))
	var e protocol.ErrorReply
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&e))
	assert.Equal(t, protocol.CodeServerFull, e.Error.Code)
	h.sync("/other/alice/0", "")
	dial(t, ws+"/other/v/0?spectate=1") // another stream has a count of its own
	assert.NoError(t, testutil.GatherAndCompare(h.reg, strings.NewReader(`
# HELP eventstreamd_spectator_connections Spectators' push connections open on this replica, in all streams (each stream holds at most -max-spectators-per-stream).
# TYPE eventstreamd_spectator_connections gauge
eventstreamd_spectator_connections 2
`), "eventstreamd_spectator_connections"))
	assert.Equal(t, before, h.read("s"), "a refused spectator changed the stream")

	require.NoError(t, c.Close(websocket.StatusNormalClosure, ""))
	require.Eventually(t, func() bool {
		dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		c, _, err := websocket.Dial(dctx, ws+"/s/w/0?spectate=1", nil)
		if err == nil {
			c.CloseNow()
		}
		return err == nil
	}, 5*time.Second, 10*time.Millisecond, "the place of a spectator that left")
}

// TestSpectatorPushNewEpoch: when the stream is created anew under a
// spectator's push connection, the connection follows by a read: the new
// stream from _a, with no id, and no _c of the spectator in it.
func TestSpectatorPushNewEpoch(t *testing.T) { testSpectatorPushNewEpoch(t, "") }

// TestSpectatorPushNewEpochRedis: the same on the Redis store.
func TestSpectatorPushNewEpochRedis(t *testing.T) {
	testSpectatorPushNewEpoch(t, redisURL(redistest.Start(t).URL()))
}

func testSpectatorPushNewEpoch(t *testing.T, store redisURL) {
	g := newHoldStore("alice")
	h, url := epochHarness(t, store, g)
	h.sync("/s/alice/0", "")
	c := dial(t, url+"/s/v/0?spectate=1")
	first := next(t, c, func(protocol.SyncReply) bool { return true })
	require.Empty(t, first.ID)

	recreate(t, h, g) // alice leaves, the stream expires, bob creates it anew
	advance(t, h, 50*time.Millisecond)
	fresh := next(t, c, func(r protocol.SyncReply) bool { return r.Epoch != first.Epoch })
	assert.Empty(t, fresh.ID, "a spectator's id in the new stream")
	require.NotEmpty(t, fresh.Events)
	assert.Equal(t, protocol.TypeReset, fresh.Events[0].Type, "the new stream from its start")
	h.sync("/s/bob/0", `{"events":[{"type":"m"}]}`) // a tick with events is pushed at once
	advance(t, h, 50*time.Millisecond)
	later := next(t, c, func(r protocol.SyncReply) bool { return r.T > fresh.T && len(r.Events) > 0 })
	assert.Empty(t, later.ID)

	var connects []string
	for _, e := range h.all("s", "bob") {
		if e.Type == protocol.TypeConnect {
			connects = append(connects, e.Body)
		}
	}
	assert.Equal(t, []string{"1"}, connects, "bob alone connected in the new stream")
}
