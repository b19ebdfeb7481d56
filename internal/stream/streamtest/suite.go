package streamtest

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/goeventstream/eventstream/internal/protocol"
	"github.com/goeventstream/eventstream/internal/stream"
)

const tick = 50 * time.Millisecond // at the default 20 ticks per second

func testTicks(t *testing.T, newStore Factory) {
	tests := []struct {
		name     string
		tickRate int
		give     time.Duration // time since the stream was created
		want     int64
	}{
		{name: "at creation", tickRate: 20, give: 0, want: 1},
		{name: "just before the first tick ends", tickRate: 20, give: 49 * time.Millisecond, want: 1},
		{name: "first tick ended", tickRate: 20, give: 50 * time.Millisecond, want: 2},
		{name: "one second", tickRate: 20, give: time.Second, want: 21},
		{name: "one minute", tickRate: 20, give: time.Minute, want: 1201},
		{name: "ten per second", tickRate: 10, give: 250 * time.Millisecond, want: 3},
		{name: "a rate that does not divide a second, before a tick", tickRate: 7, give: 142 * time.Millisecond, want: 1},
		{name: "a rate that does not divide a second, after a tick", tickRate: 7, give: 143 * time.Millisecond, want: 2},
		{name: "whole milliseconds count", tickRate: 20, give: 50*time.Millisecond - time.Microsecond, want: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, newStore, func(c *stream.Config) { c.TickRate = tt.tickRate })
			first := e.poll("s", "a", 0)
			require.Equal(t, int64(1), first.T)
			require.Equal(t, tt.tickRate, first.TickRate)
			e.clock.Advance(tt.give)
			assert.Equal(t, tt.want, e.poll("s", "a", 0).T)
		})
	}
}

func testTicksNeverGoBack(t *testing.T, newStore Factory) {
	e := newEnv(t, newStore, nil)
	e.poll("s", "a", 0)
	e.clock.Advance(time.Second)
	require.Equal(t, int64(21), e.poll("s", "a", 0).T)

	e.clock.Set(Start) // the wall clock steps back a second
	r := e.post("s", "a", 21, "late")
	assert.Equal(t, int64(21), r.T, "t went back")

	e.clock.Set(Start.Add(time.Second + tick))
	r = e.poll("s", "a", 21)
	assert.Equal(t, int64(22), r.T)
	assert.Equal(t, []protocol.Event{ev(21, "move", "1", "late")}, r.Events)
}

// testTicksNeverGoBackAfterARead: a tick a read reported (a push server
// sends it to its clients) is issued as a sync's is: when the clock steps
// back (an NTP step, a Redis failover to a node whose TIME lags), an event
// posted next is stamped at it, not below it, where the clients told that
// tick has passed would never see it.
func testTicksNeverGoBackAfterARead(t *testing.T, newStore Factory) {
	e := newEnv(t, newStore, nil)
	e.poll("s", "a", 0) // the last sync: tick 1
	e.clock.Advance(time.Second)
	read, err := e.store.Read(context.Background(), &stream.SyncRequest{Stream: "s", LastKnownTick: 1})
	require.NoError(t, err)
	require.Equal(t, int64(21), read.T)

	e.clock.Set(Start) // the clock steps back a second
	assert.Equal(t, int64(21), e.post("s", "a", 21, "late").T, "t went back below what the read reported")
	read, err = e.store.Read(context.Background(), &stream.SyncRequest{Stream: "s", LastKnownTick: 21})
	require.NoError(t, err)
	assert.Equal(t, int64(21), read.T)

	e.clock.Set(Start.Add(time.Second + tick))
	r := e.poll("s", "a", 21)
	assert.Equal(t, int64(22), r.T)
	assert.Equal(t, []protocol.Event{ev(21, "move", "1", "late")}, r.Events, "a client that was told t = 21 sees the event")
}

func testCreation(t *testing.T, newStore Factory) {
	e := newEnv(t, newStore, nil)
	r := e.poll("foo", "me", 0)
	assert.True(t, r.Created)
	assert.True(t, r.Connected)
	assert.Equal(t, "1", r.PublicID)
	assert.Equal(t, int64(1), r.T)
	assert.Equal(t, protocol.DefaultTickRate, r.TickRate)
	assert.False(t, r.More)
	_, err := uuid.Parse(r.Epoch)
	require.NoError(t, err, "epoch %q is not a UUID", r.Epoch)
	assert.Equal(t, []protocol.Event{ev(0, "_a", "_", r.Epoch)}, r.Events)

	again := e.poll("foo", "me", 0)
	assert.False(t, again.Created)
	assert.False(t, again.Connected)
	assert.Equal(t, r.Epoch, again.Epoch)

	e.clock.Advance(tick)
	assert.Equal(t, []protocol.Event{ev(1, "_c", "_", "1")}, e.poll("foo", "me", 1).Events)

	other := e.poll("bar", "me", 0)
	assert.True(t, other.Created)
	assert.NotEqual(t, r.Epoch, other.Epoch, "two streams share an epoch")
	assert.Equal(t, "1", other.PublicID, "public ids are per stream")
}

func testPublicIDs(t *testing.T, newStore Factory) {
	e := newEnv(t, newStore, nil)
	for i, id := range []string{"alice", "bob", "carol"} {
		r := e.poll("s", id, 0)
		assert.Equal(t, []string{"1", "2", "3"}[i], r.PublicID, id)
		e.clock.Advance(tick)
	}
	assert.Equal(t, "2", e.poll("s", "bob", 0).PublicID, "a known private id keeps its public id")

	all := e.all("s", "alice")
	assert.Equal(t, []protocol.Event{
		ev(0, "_a", "_", all[0].Body),
		ev(1, "_c", "_", "1"),
		ev(2, "_c", "_", "2"),
		ev(3, "_c", "_", "3"),
	}, all)
}

func testEventsComeBackNextSync(t *testing.T, newStore Factory) {
	e := newEnv(t, newStore, nil)
	r := e.sync(&stream.SyncRequest{Stream: "s", PrivateID: "a", Events: []stream.Event{
		{Type: "move", Body: Body("x")},
		{Type: "chat", Body: []byte(`"\u0041\u00e9 <&>"`)},
		{Type: "move", Body: Body("")},
	}})
	assert.Equal(t, 3, r.Appended)
	assert.Equal(t, []protocol.Event{ev(0, "_a", "_", r.Epoch)}, r.Events, "a request's own events are at t, not before it")

	e.clock.Advance(tick)
	r = e.poll("s", "a", 1)
	assert.Equal(t, []protocol.Event{
		ev(1, "_c", "_", "1"),
		ev(1, "move", "1", "x"),
		ev(1, "chat", "1", "Aé <&>"),
		ev(1, "move", "1", ""),
	}, r.Events)
	assert.Contains(t, string(r.SyncResult.Events), `"body":"\u0041\u00e9 <&>"`, "a body is returned byte for byte")
}

func testWindow(t *testing.T, newStore Factory) {
	e := newEnv(t, newStore, nil)
	for i := range 4 { // one event in each of ticks 1 to 4
		e.post("s", "a", 0, string(rune('w'+i)))
		e.clock.Advance(tick)
	}
	tests := []struct {
		give int64
		want []protocol.Event
	}{
		{give: 2, want: []protocol.Event{ev(2, "move", "1", "x"), ev(3, "move", "1", "y"), ev(4, "move", "1", "z")}},
		{give: 4, want: []protocol.Event{ev(4, "move", "1", "z")}},
		{give: 5, want: []protocol.Event{}},
	}
	for _, tt := range tests {
		r := e.poll("s", "a", tt.give)
		assert.Equal(t, int64(5), r.T)
		assert.Equal(t, tt.want, r.Events, "from %d", tt.give)
	}
	assert.Len(t, e.poll("s", "a", 0).Events, 6, "from 0: _a, _c and four moves")
}

func testReset(t *testing.T, newStore Factory) {
	e := newEnv(t, newStore, nil)
	first := e.post("s", "a", 0, "x")
	e.clock.Advance(10 * tick) // t = 11
	whole := []protocol.Event{ev(0, "_a", "_", first.Epoch), ev(1, "_c", "_", "1"), ev(1, "move", "1", "x")}

	tests := []struct {
		name  string
		from  int64
		epoch string
		want  []protocol.Event
	}{
		{name: "ahead of the server", from: 12, want: whole},
		{name: "far ahead", from: 1 << 62, want: whole},
		{name: "at t is not ahead", from: 11, want: []protocol.Event{}},
		{name: "another epoch", from: 5, epoch: uuid.NewString(), want: whole},
		{name: "this epoch", from: 1, epoch: first.Epoch, want: whole[1:]},
		{name: "no epoch", from: 1, want: whole[1:]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.sync(&stream.SyncRequest{Stream: "s", PrivateID: "a", LastKnownTick: tt.from, Epoch: tt.epoch})
			assert.Equal(t, int64(11), r.T)
			assert.Equal(t, tt.want, r.Events)
		})
	}
}

// testPostToAnotherEpoch: a request that posts events naming an epoch that
// is not the stream's (a client retrying last game's batch after the
// stream was created anew) applies nothing, not even creating the stream
// or connecting the client; one that posts none is sent the stream from
// "_a", and one that names no epoch (v1) posts as before.
func testPostToAnotherEpoch(t *testing.T, newStore Factory) {
	ctx := context.Background()
	e := newEnv(t, newStore, nil)
	first := e.post("s", "a", 0, "x")
	gone := uuid.NewString()
	e.clock.Advance(tick)

	refused := []struct {
		name string
		give stream.SyncRequest
	}{
		{name: "a known client", give: stream.SyncRequest{Stream: "s", PrivateID: "a", LastKnownTick: 2, Epoch: gone, Batch: "b1", Events: Moves("old")}},
		{name: "a new client", give: stream.SyncRequest{Stream: "s", PrivateID: "b", LastKnownTick: 2, Epoch: gone, Events: Moves("old")}},
		{name: "a stream that is gone", give: stream.SyncRequest{Stream: "gone", PrivateID: "a", LastKnownTick: 2, Epoch: gone, Events: Moves("old")}},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.store.Sync(ctx, &tt.give)
			require.ErrorIs(t, err, stream.ErrEpochMismatch)
		})
	}
	st := e.stats()
	assert.Equal(t, 1, st.Streams, "no stream was created")
	assert.Equal(t, 1, st.Clients, "no client was connected")

	r := e.sync(&stream.SyncRequest{Stream: "s", PrivateID: "a", LastKnownTick: 2, Epoch: gone})
	assert.Equal(t, protocol.TypeReset, r.Events[0].Type, "without events: the stream from _a")
	assert.Equal(t, 1, e.sync(&stream.SyncRequest{Stream: "s", PrivateID: "a", LastKnownTick: 2, Epoch: first.Epoch,
		Batch: "b1", Events: Moves("y")}).Appended, "the stream's epoch; the refused batch id was not remembered")
	assert.Equal(t, 1, e.post("s", "a", 2, "z").Appended, "no epoch")

	e.clock.Advance(tick)
	assert.Equal(t, []protocol.Event{
		ev(0, "_a", "_", first.Epoch), ev(1, "_c", "_", "1"), ev(1, "move", "1", "x"),
		ev(2, "move", "1", "y"), ev(2, "move", "1", "z"),
	}, e.all("s", "a"))
}

func testPaging(t *testing.T, newStore Factory) {
	e := newEnv(t, newStore, func(c *stream.Config) { c.PageEvents = 3 })
	epoch := e.post("s", "a", 0, "x1", "x2").Epoch // _c, x1, x2 at tick 1
	e.clock.Advance(tick)
	e.post("s", "a", 0, "y1", "y2") // tick 2
	e.clock.Advance(tick)
	e.post("s", "a", 0, "z1") // tick 3
	e.clock.Advance(tick)     // t = 4

	tests := []struct {
		from     int64
		wantT    int64
		wantMore bool
		want     []protocol.Event
	}{
		// _a alone: tick 1 has three events and does not fit beside it.
		{from: 0, wantT: 1, wantMore: true, want: []protocol.Event{ev(0, "_a", "_", epoch)}},
		{from: 1, wantT: 2, wantMore: true, want: []protocol.Event{
			ev(1, "_c", "_", "1"), ev(1, "move", "1", "x1"), ev(1, "move", "1", "x2"),
		}},
		{from: 2, wantT: 4, want: []protocol.Event{
			ev(2, "move", "1", "y1"), ev(2, "move", "1", "y2"), ev(3, "move", "1", "z1"),
		}},
	}
	for _, tt := range tests {
		r := e.poll("s", "a", tt.from)
		assert.Equal(t, tt.wantT, r.T, "from %d", tt.from)
		assert.Equal(t, tt.wantMore, r.More, "from %d", tt.from)
		assert.Equal(t, tt.want, r.Events, "from %d", tt.from)
	}
}

func testPagingLargeTick(t *testing.T, newStore Factory) {
	e := newEnv(t, newStore, func(c *stream.Config) { c.PageEvents = 2 })
	e.post("s", "a", 0, "e1", "e2", "e3", "e4", "e5") // _c and five moves at tick 1
	e.clock.Advance(tick)
	e.post("s", "a", 0, "f1") // tick 2
	e.clock.Advance(tick)     // t = 3

	r := e.poll("s", "a", 1)
	assert.True(t, r.More)
	assert.Equal(t, int64(2), r.T, "t is the first tick not sent")
	assert.Len(t, r.Events, 6, "a tick larger than a page is sent whole")
	for _, got := range r.Events {
		assert.Equal(t, int64(1), got.T)
	}

	r = e.poll("s", "a", 2)
	assert.False(t, r.More)
	assert.Equal(t, int64(3), r.T)
	assert.Equal(t, []protocol.Event{ev(2, "move", "1", "f1")}, r.Events)
	assert.Len(t, e.all("s", "a"), 8, "following pages yields every event once")
}

func testBatches(t *testing.T, newStore Factory) {
	e := newEnv(t, newStore, nil)
	batch := func(privateID, id string, bodies ...string) Reply {
		return e.sync(&stream.SyncRequest{Stream: "s", PrivateID: privateID, Batch: id, Events: Moves(bodies...)})
	}
	assert.Equal(t, 1, batch("a", "b1", "x").Appended)
	retry := batch("a", "b1", "x")
	assert.Equal(t, 0, retry.Appended, "a repeated batch appends nothing")
	assert.Equal(t, "1", retry.PublicID, "and is answered normally")

	assert.Equal(t, 1, batch("b", "b1", "y").Appended, "batch ids are per client")
	// The edge of the batch memory: b1 is remembered with BatchMemory-1
	// newer batches, and forgotten with BatchMemory.
	for i := 2; i <= protocol.BatchMemory; i++ {
		require.Equal(t, 1, batch("a", fmt.Sprint("b", i), "filler").Appended)
	}
	assert.Equal(t, 0, batch("a", "b1", "x").Appended, "b1 and BatchMemory-1 newer batches are remembered")
	require.Equal(t, 1, batch("a", fmt.Sprint("b", protocol.BatchMemory+1), "filler").Appended)
	assert.Equal(t, 1, batch("a", "b1", "z").Appended, "a batch resent after BatchMemory newer ones is appended again")
	assert.Equal(t, 0, batch("a", fmt.Sprint("b", protocol.BatchMemory+1), "z").Appended)

	e.clock.Advance(tick)
	var bodies []string
	for _, got := range e.all("s", "a") {
		if got.Type == "move" && got.Body != "filler" {
			bodies = append(bodies, got.Origin+":"+got.Body)
		}
	}
	assert.Equal(t, []string{"1:x", "2:y", "1:z"}, bodies)
}

func testMaxStreams(t *testing.T, newStore Factory) {
	e := newEnv(t, newStore, func(c *stream.Config) { c.MaxStreams = 2 })
	e.poll("s1", "a", 0)
	e.poll("s2", "a", 0)
	_, err := e.store.Sync(context.Background(), &stream.SyncRequest{Stream: "s3", PrivateID: "a"})
	require.ErrorIs(t, err, stream.ErrServerFull)
	assert.Equal(t, 2, e.stats().Streams)
	assert.Equal(t, "2", e.poll("s1", "b", 0).PublicID, "existing streams still serve")
}

func testMaxClients(t *testing.T, newStore Factory) {
	e := newEnv(t, newStore, func(c *stream.Config) { c.MaxClientsPerStream = 2 })
	e.poll("s", "a", 0)
	e.poll("s", "b", 0)
	_, err := e.store.Sync(context.Background(), &stream.SyncRequest{Stream: "s", PrivateID: "c", Events: Moves("x")})
	require.ErrorIs(t, err, stream.ErrClientCap)

	// b goes silent and is disconnected: its slot comes back.
	e.clock.Advance(5 * time.Second)
	e.poll("s", "a", 0)
	e.clock.Advance(5 * time.Second)
	require.Len(t, e.sweep().Disconnected, 1)
	assert.Equal(t, "3", e.poll("s", "c", 0).PublicID, "the cap counts the clients connected now: b's slot is c's")
	_, err = e.store.Sync(context.Background(), &stream.SyncRequest{Stream: "s", PrivateID: "b"})
	require.ErrorIs(t, err, stream.ErrClientCap, "b comes back to a full stream")

	// c goes silent in turn; b comes back with its public id.
	e.clock.Advance(5 * time.Second)
	e.poll("s", "a", 0)
	e.clock.Advance(5 * time.Second)
	require.Len(t, e.sweep().Disconnected, 1)
	assert.Equal(t, "2", e.poll("s", "b", 0).PublicID, "a client keeps its public id")

	e.clock.Advance(tick)
	for _, got := range e.all("s", "a") {
		assert.NotEqual(t, "move", got.Type, "a refused request appended %v", got)
		assert.NotEqual(t, "4", got.Body, "a refused client got a public id")
	}
}

func testMaxEvents(t *testing.T, newStore Factory) {
	e := newEnv(t, newStore, func(c *stream.Config) { c.MaxEventsPerStream = 6 })
	e.post("s", "a", 0, "1", "2", "3") // _a, _c, three moves: 5 events
	_, err := e.store.Sync(context.Background(), &stream.SyncRequest{Stream: "s", PrivateID: "b", Events: Moves("4")})
	require.ErrorIs(t, err, stream.ErrEventCap, "b's _c and event would make 7")

	r := e.poll("s", "c", 0) // c's _c makes 6
	assert.Equal(t, "2", r.PublicID, "the refused client used no public id")
	_, err = e.store.Sync(context.Background(), &stream.SyncRequest{Stream: "s", PrivateID: "a", Events: Moves("5")})
	require.ErrorIs(t, err, stream.ErrEventCap)
	e.poll("s", "a", 0) // a full stream still serves reads

	e.clock.Advance(tick)
	all := e.all("s", "a")
	assert.Equal(t, []protocol.Event{
		ev(0, "_a", "_", r.Epoch), ev(1, "_c", "_", "1"),
		ev(1, "move", "1", "1"), ev(1, "move", "1", "2"), ev(1, "move", "1", "3"),
		ev(1, "_c", "_", "2"),
	}, all)
}

func testPresence(t *testing.T, newStore Factory) {
	e := newEnv(t, newStore, nil)
	e.poll("s", "a", 0)
	e.poll("s", "b", 0)
	e.poll("s", "c", 0)
	for i := 1; i <= 9; i++ { // c syncs every second; b once, at 5 s
		e.clock.Advance(time.Second)
		e.poll("s", "c", 0)
		if i == 5 {
			e.poll("s", "b", 0)
		}
	}
	e.clock.Advance(900 * time.Millisecond)
	assert.Empty(t, e.sweep().Disconnected, "before the deadline")

	e.clock.Advance(100 * time.Millisecond) // 10 s since a was last heard from
	assert.Equal(t, []stream.Disconnect{{Stream: "s", PublicID: "1", T: 201}}, e.sweep().Disconnected)
	assert.Empty(t, e.sweep().Disconnected, "a client is disconnected once")

	for range 4 {
		e.clock.Advance(time.Second)
		e.poll("s", "c", 0)
		assert.Empty(t, e.sweep().Disconnected)
	}
	e.clock.Advance(time.Second)
	e.poll("s", "c", 0)
	// 15 s: b is 10 s silent.
	assert.Equal(t, []stream.Disconnect{{Stream: "s", PublicID: "2", T: 301}}, e.sweep().Disconnected)

	e.clock.Advance(tick)
	var got []protocol.Event
	for _, x := range e.all("s", "c") {
		if x.Type == "_d" {
			got = append(got, x)
		}
	}
	assert.Equal(t, []protocol.Event{ev(201, "_d", "_", "1"), ev(301, "_d", "_", "2")}, got, "c kept syncing and got no _d")
	assert.Equal(t, 1, e.stats().Clients)
}

func testReconnect(t *testing.T, newStore Factory) {
	e := newEnv(t, newStore, nil)
	e.poll("s", "a", 0)
	e.poll("s", "b", 0)
	e.clock.Advance(10 * time.Second)
	require.Len(t, e.sweep().Disconnected, 2)

	e.clock.Advance(time.Second)
	r := e.poll("s", "b", 0)
	assert.True(t, r.Connected)
	assert.Equal(t, "2", r.PublicID, "a returning client keeps its public id")
	assert.Equal(t, int64(221), r.T)

	e.clock.Advance(tick)
	assert.Equal(t, []protocol.Event{ev(221, "_c", "_", "2")}, e.poll("s", "b", 221).Events)
	assert.Equal(t, "3", e.poll("s", "c", 0).PublicID)
}

func testExpiry(t *testing.T, newStore Factory) {
	e := newEnv(t, newStore, nil)
	old := e.post("s", "a", 0, "x")
	e.clock.Advance(10 * time.Second)
	require.Len(t, e.sweep().Disconnected, 1)

	e.clock.Advance(59*time.Second + 900*time.Millisecond)
	assert.Empty(t, e.sweep().Expired, "before the TTL")
	assert.Equal(t, 1, e.stats().Streams)

	e.clock.Advance(100 * time.Millisecond)
	assert.Equal(t, []string{"s"}, e.sweep().Expired)
	assert.Equal(t, 0, e.stats().Streams)

	r := e.poll("s", "b", 0)
	assert.True(t, r.Created)
	assert.NotEqual(t, old.Epoch, r.Epoch)
	assert.Equal(t, "1", r.PublicID, "the mapping went with the stream")
	assert.Equal(t, int64(1), r.T)
	assert.Equal(t, []protocol.Event{ev(0, "_a", "_", r.Epoch)}, r.Events)
}

func testExpiryCancelled(t *testing.T, newStore Factory) {
	e := newEnv(t, newStore, nil)
	e.poll("s", "a", 0)
	e.clock.Advance(10 * time.Second)
	require.Len(t, e.sweep().Disconnected, 1) // empty from 10 s

	e.clock.Advance(20 * time.Second)
	e.poll("s", "a", 0) // back at 30 s
	e.clock.Advance(10 * time.Second)
	require.Len(t, e.sweep().Disconnected, 1) // empty again from 40 s

	e.clock.Advance(30 * time.Second) // 70 s: 60 s after the first disconnect
	assert.Empty(t, e.sweep().Expired)
	e.clock.Advance(30 * time.Second) // 100 s: 60 s after the second
	assert.Equal(t, []string{"s"}, e.sweep().Expired)
}

func testStats(t *testing.T, newStore Factory) {
	e := newEnv(t, newStore, nil)
	for _, id := range []string{"a", "b", "c"} {
		e.poll("crowded", id, 0)
	}
	e.poll("quiet", "a", 0)
	e.poll("also-quiet", "a", 0)
	e.clock.Advance(time.Second)

	st, err := e.store.Stats(context.Background(), 2)
	require.NoError(t, err)
	assert.Equal(t, 3, st.Streams)
	assert.Equal(t, 5, st.Clients)
	assert.Equal(t, []stream.StreamStats{
		// _a (78 bytes) and a _c (43) per client
		{Stream: "crowded", T: 21, Clients: 3, Events: 4, Bytes: 78 + 3*43},
		{Stream: "also-quiet", T: 21, Clients: 1, Events: 2, Bytes: 78 + 43},
	}, st.PerStream)

	e.clock.Advance(9 * time.Second)
	e.poll("crowded", "a", 0)
	e.sweep()
	st = e.stats()
	assert.Equal(t, 1, st.Clients)
	assert.Equal(t, 3, st.Streams, "disconnected streams live until their TTL")
}

// testFullStreamStillServesReads: the disconnects a sweep appends may take
// a stream past its event cap; its connected clients can still read it.
func testFullStreamStillServesReads(t *testing.T, newStore Factory) {
	e := newEnv(t, newStore, func(c *stream.Config) { c.MaxEventsPerStream = 4 })
	e.poll("s", "a", 0) // _a, _c
	e.poll("s", "b", 0) // _c: 3
	e.post("s", "a", 0, "x")
	e.clock.Advance(5 * time.Second)
	e.poll("s", "a", 0)
	e.clock.Advance(5 * time.Second)
	require.Len(t, e.sweep().Disconnected, 1, "b's _d makes 5, past the cap of 4")
	e.clock.Advance(tick)

	r := e.poll("s", "a", 0)
	assert.Len(t, r.Events, 5, "an empty sync is served")
	_, err := e.store.Sync(context.Background(), &stream.SyncRequest{Stream: "s", PrivateID: "a", Events: Moves("y")})
	require.ErrorIs(t, err, stream.ErrEventCap, "but appends nothing more")
	_, err = e.store.Sync(context.Background(), &stream.SyncRequest{Stream: "s", PrivateID: "b"})
	require.ErrorIs(t, err, stream.ErrEventCap, "b's return would append its _c")
}

// testMaxStreamBytes: the byte cap counts every event's JSON.
func testMaxStreamBytes(t *testing.T, newStore Factory) {
	e := newEnv(t, newStore, func(c *stream.Config) { c.MaxStreamBytes = stream.MinStreamBytes })
	r := e.poll("s", "a", 0) // _a and _c
	e.clock.Advance(tick)
	size := 0
	for _, got := range e.all("s", "a") {
		size += len(eventJSON(got))
	}
	// {"t":2,"type":"move","origin":"1","body":"…"} is 44 bytes and the body.
	room := stream.MinStreamBytes - size - 44
	_, err := e.store.Sync(context.Background(), &stream.SyncRequest{Stream: "s", PrivateID: "a", LastKnownTick: 2, Events: Moves(strings.Repeat("x", room+1))})
	require.ErrorIs(t, err, stream.ErrByteCap, "one byte too many")
	assert.Equal(t, 0, e.post("s", "a", 2).Appended, "nothing was applied")
	assert.Equal(t, 1, e.post("s", "a", 2, strings.Repeat("x", room)).Appended, "the cap itself fits")
	_, err = e.store.Sync(context.Background(), &stream.SyncRequest{Stream: "s", PrivateID: "b"})
	require.ErrorIs(t, err, stream.ErrByteCap, "a new client's _c does not fit")
	_, err = e.store.Sync(context.Background(), &stream.SyncRequest{Stream: "s", PrivateID: "a"})
	require.NoError(t, err, "a full stream serves reads")
	assert.Equal(t, r.Epoch, e.poll("s", "a", 0).Epoch)
}

// eventJSON is an event as the stores encode it.
func eventJSON(e protocol.Event) string {
	typ, _ := json.Marshal(e.Type)
	origin, _ := json.Marshal(e.Origin)
	body, _ := json.Marshal(e.Body)
	return fmt.Sprintf(`{"t":%d,"type":%s,"origin":%s,"body":%s}`, e.T, typ, origin, body)
}

// testPagingBytes: a page ends before the tick that would take it past
// PageBytes; a first tick larger is sent whole; the same pages from every
// store, however often they are read (a replica may cache sealed ticks).
func testPagingBytes(t *testing.T, newStore Factory) {
	body := strings.Repeat("b", 56) // each move is 100 bytes: {"t":N,"type":"move","origin":"1","body":"…"}
	e := newEnv(t, newStore, func(c *stream.Config) { c.PageBytes = 250 })
	e.poll("s", "a", 0)
	for i := range 6 { // six clients, one a tick
		e.clock.Advance(tick)
		e.poll("s", fmt.Sprint("b", i), 0)
	}
	e.clock.Advance(tick)
	const first = 8
	e.post("s", "a", 0, body, body) // tick 8: 201 bytes with the comma
	e.clock.Advance(tick)
	e.post("s", "a", 0, body) // tick 9: 100
	e.clock.Advance(9 * time.Second)
	e.poll("s", "a", 0)
	e.clock.Advance(1500 * time.Millisecond)
	gone := e.sweep().Disconnected
	require.Len(t, gone, 6)
	dTick := gone[0].T // six disconnects in one tick: 275 bytes, larger than a page
	e.clock.Advance(tick)
	e.post("s", "a", 0, body)
	last := dTick + 1
	e.clock.Advance(tick)

	tests := []struct {
		from     int64
		wantT    int64
		wantMore bool
		wantN    int
	}{
		{from: first, wantT: first + 1, wantMore: true, wantN: 2}, // 201 + 1 + 100 > 250
		{from: first + 1, wantT: dTick, wantMore: true, wantN: 1},
		{from: dTick, wantT: dTick + 1, wantMore: true, wantN: 6}, // a first tick larger than a page: whole
		{from: dTick + 1, wantT: last + 1, wantMore: false, wantN: 1},
	}
	for range 2 {
		for _, tt := range tests {
			r := e.poll("s", "reader", tt.from)
			assert.Equal(t, tt.wantT, r.T, "from %d", tt.from)
			assert.Equal(t, tt.wantMore, r.More, "from %d", tt.from)
			assert.Len(t, r.Events, tt.wantN, "from %d", tt.from)
		}
	}
}

// testTickFull: the events of one tick take at most a page, so that every
// reply fits one; the next tick has room again.
func testTickFull(t *testing.T, newStore Factory) {
	body := strings.Repeat("b", 56) // 100 bytes a move
	e := newEnv(t, newStore, func(c *stream.Config) { c.PageBytes = 250 })
	e.poll("s", "a", 0)
	e.clock.Advance(tick)
	e.post("s", "a", 0, body, body) // 201 bytes in this tick
	_, err := e.store.Sync(context.Background(), &stream.SyncRequest{Stream: "s", PrivateID: "a", Events: Moves(body)})
	require.ErrorIs(t, err, stream.ErrTickFull)
	_, err = e.store.Sync(context.Background(), &stream.SyncRequest{Stream: "s", PrivateID: "b"})
	assert.NoError(t, err, "b's _c (45 bytes) still fits")
	assert.Equal(t, 0, e.post("s", "a", 0).Appended, "an empty sync is served")
	e.clock.Advance(tick)
	assert.Equal(t, 1, e.post("s", "a", 0, body).Appended, "the next tick has room")
	e.clock.Advance(tick)
	var moves int
	for _, got := range e.all("s", "a") {
		if got.Type == "move" {
			moves++
		}
	}
	assert.Equal(t, 3, moves, "the refused move was not appended")
}

// testPagingAgain reads the same pages twice: a replica that caches the
// sealed ticks it read must cut them where the first read did.
func testPagingAgain(t *testing.T, newStore Factory) {
	e := newEnv(t, newStore, func(c *stream.Config) { c.PageEvents = 4 })
	e.poll("s", "a", 0)
	e.clock.Advance(tick)
	e.post("s", "a", 0, "x1", "x2") // tick 2
	e.clock.Advance(tick)
	e.post("s", "a", 0, "y1", "y2", "y3") // tick 3
	e.clock.Advance(tick)                 // t = 4
	for i := range 3 {
		r := e.poll("s", "b", 2)
		assert.True(t, r.More, "read %d", i)
		assert.Equal(t, int64(3), r.T, "read %d", i)
		assert.Equal(t, []protocol.Event{ev(2, "move", "1", "x1"), ev(2, "move", "1", "x2")}, r.Events, "read %d", i)
	}
	r := e.poll("s", "b", 3)
	assert.Len(t, r.Events, 3)
	assert.False(t, r.More)
}

// testFairUse: each client has its own buckets of syncs and of events; a
// request that finds too few is refused, takes none, and says when to come
// back; the others are not slowed.
func testFairUse(t *testing.T, newStore Factory) {
	e := newEnv(t, newStore, func(c *stream.Config) {
		c.MaxSyncsPerSecond, c.MaxEventsPerSecond, c.EventBurst = 5, 10, 20
	})
	refused := func(req *stream.SyncRequest) *stream.RateLimitError {
		t.Helper()
		_, err := e.store.Sync(context.Background(), req)
		var rl *stream.RateLimitError
		require.ErrorAs(t, err, &rl)
		require.ErrorIs(t, err, stream.ErrRateLimited)
		return rl
	}
	for range 5 {
		e.poll("s", "a", 0)
	}
	rl := refused(&stream.SyncRequest{Stream: "s", PrivateID: "a"})
	assert.Equal(t, "syncs", rl.What)
	assert.Equal(t, 200*time.Millisecond, rl.Wait, "one sync comes back in a fifth of a second")
	e.poll("s", "b", 0) // another client is not slowed

	e.clock.Advance(200 * time.Millisecond)
	e.poll("s", "a", 0)
	e.clock.Advance(time.Second)
	assert.Equal(t, 20, e.post("s", "a", 0, make([]string, 20)...).Appended, "a burst of events")
	rl = refused(&stream.SyncRequest{Stream: "s", PrivateID: "a", Events: Moves("x")})
	assert.Equal(t, "events", rl.What)
	assert.Equal(t, 100*time.Millisecond, rl.Wait)
	e.clock.Advance(100 * time.Millisecond)
	assert.Equal(t, 1, e.post("s", "a", 0, "x").Appended)
	e.clock.Advance(200 * time.Millisecond)
	rl = refused(&stream.SyncRequest{Stream: "s", PrivateID: "a", Events: Moves("1", "2", "3")})
	assert.Equal(t, 100*time.Millisecond, rl.Wait, "two of three events are there")
	_, err := e.store.Sync(context.Background(), &stream.SyncRequest{Stream: "s", PrivateID: "new", Events: Moves(make([]string, 21)...)})
	require.ErrorIs(t, err, stream.ErrRateLimited, "no client posts more than the burst at once")

	e.clock.Advance(tick)
	var moves int
	for _, got := range e.all("s", "b") {
		if got.Type == "move" {
			moves++
		}
	}
	assert.Equal(t, 21, moves, "refused requests appended nothing")
}

// testFairUseOff: with the limits off, a client may go as fast as it likes.
func testFairUseOff(t *testing.T, newStore Factory) {
	e := newEnv(t, newStore, func(c *stream.Config) { c.MaxSyncsPerSecond, c.MaxEventsPerSecond = 0, 0 })
	for i := range 200 { // 200 syncs and 2000 events in a tenth of a second
		e.post("s", "a", 0, make([]string, 10)...)
		if i%100 == 99 {
			e.clock.Advance(tick)
		}
	}
}
