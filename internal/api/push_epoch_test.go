package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/goeventstream/eventstream/internal/api"
	"github.com/goeventstream/eventstream/internal/clock"
	"github.com/goeventstream/eventstream/internal/protocol"
	"github.com/goeventstream/eventstream/internal/stream"
)

// holdStore is a store that holds, on demand, the reads of the push loops
// (those without a private id) and every call for one client, and tells
// the newest tick a loop has read.
type holdStore struct {
	stream.Store
	client string // the private id whose calls hold

	mu           sync.Mutex
	loops, calls chan struct{} // not nil: held until closed
	loopT        atomic.Int64  // the newest t a loop's read returned
	syncs        atomic.Int64  // the client's syncs
	held         chan string   // a held call began to wait: "loop" or the client
}

func newHoldStore(client string) *holdStore {
	return &holdStore{client: client, held: make(chan string, 16)}
}

func (g *holdStore) wait(ctx context.Context, who string, gate *chan struct{}) error {
	g.mu.Lock()
	c := *gate
	g.mu.Unlock()
	if c == nil {
		return nil
	}
	select {
	case g.held <- who:
	default:
	}
	select {
	case <-c:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (g *holdStore) Read(ctx context.Context, req *stream.SyncRequest) (*stream.SyncResult, error) {
	switch req.PrivateID {
	case "":
		if err := g.wait(ctx, "loop", &g.loops); err != nil {
			return nil, err
		}
		res, err := g.Store.Read(ctx, req)
		if err == nil {
			g.loopT.Store(res.T)
		}
		return res, err
	case g.client:
		if err := g.wait(ctx, g.client, &g.calls); err != nil {
			return nil, err
		}
	}
	return g.Store.Read(ctx, req)
}

func (g *holdStore) Sync(ctx context.Context, req *stream.SyncRequest) (*stream.SyncResult, error) {
	if req.PrivateID == g.client {
		if err := g.wait(ctx, g.client, &g.calls); err != nil {
			return nil, err
		}
		defer g.syncs.Add(1)
	}
	return g.Store.Sync(ctx, req)
}

// hold makes the loops' reads (or the client's calls) wait, and returns
// the function that lets them go.
func (g *holdStore) hold(loops bool) (release func()) {
	gate := &g.calls
	if loops {
		gate = &g.loops
	}
	c := make(chan struct{})
	g.mu.Lock()
	*gate = c
	g.mu.Unlock()
	return func() {
		g.mu.Lock()
		*gate = nil
		g.mu.Unlock()
		close(c)
	}
}

// waitHeld waits until a call of who waits at the gate.
func (g *holdStore) waitHeld(t *testing.T, who string) {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case w := <-g.held:
			if w == who {
				return
			}
		case <-timeout:
			t.Fatalf("no call of %s waits", who)
		}
	}
}

// recreate expires stream s (none of its clients heard from for the
// client timeout, then the stream TTL) while its loop's reads are held,
// and has bob create it anew: the loop's next read finds the new epoch,
// not a missing stream.
func recreate(t *testing.T, h *harness, g *holdStore) {
	t.Helper()
	release := g.hold(true)
	advanced := false
	require.Eventually(t, func() bool { // the loop reads at its next tick, and waits
		select {
		case who := <-g.held:
			return who == "loop"
		default:
		}
		if !advanced && h.clock.Timers() > 0 {
			h.clock.Advance(50 * time.Millisecond)
			advanced = true
		}
		return false
	}, 5*time.Second, time.Millisecond)
	ctx := context.Background()
	for _, d := range []time.Duration{11 * time.Second, 61 * time.Second} {
		h.clock.Advance(d)
		_, err := h.store.Sweep(ctx)
		require.NoError(t, err)
	}
	st, err := h.store.Stats(ctx, 10)
	require.NoError(t, err)
	require.Zero(t, st.Streams, "the stream expired")
	require.Equal(t, "1", h.sync("/s/bob/0", "").ID, "bob is the first client of the new stream")
	release()
}

// epochHarness is a push harness over store whose pings never come
// within a test (so alice is silent in the store's time).
func epochHarness(t *testing.T, store redisURL, g *holdStore) (*harness, string) {
	return pushHarnessOn(t, store, wrapStore(func(s stream.Store) stream.Store { g.Store = s; return g }),
		func(a *api.Config, _ *stream.Config) { a.Push.PingInterval = time.Hour })
}

// TestPushNewEpochNewID: when the stream is created anew under a push
// connection, its pushes of the new stream carry the client's public id
// there, from _a on (main kept the old id, "1", which was now bob's).
func TestPushNewEpochNewID(t *testing.T) { testPushNewEpochNewID(t, "") }

func testPushNewEpochNewID(t *testing.T, store redisURL) {
	g := newHoldStore("alice")
	h, url := epochHarness(t, store, g)
	c := dial(t, url+"/s/alice/0")
	first := next(t, c, func(protocol.SyncReply) bool { return true })
	require.Equal(t, "1", first.ID)

	recreate(t, h, g)
	advance(t, h, 50*time.Millisecond)
	fresh := next(t, c, func(r protocol.SyncReply) bool { return r.Epoch != first.Epoch })
	assert.Equal(t, "2", fresh.ID, "alice's id in the new stream, not bob's")
	require.NotEmpty(t, fresh.Events)
	assert.Equal(t, protocol.TypeReset, fresh.Events[0].Type, "the new stream from its start")
	advance(t, h, 50*time.Millisecond)
	later := next(t, c, func(r protocol.SyncReply) bool { return r.T > fresh.T })
	assert.Equal(t, "2", later.ID)

	var connects []string
	for _, e := range h.all("s", "reader") {
		if e.Type == protocol.TypeConnect {
			connects = append(connects, e.Body)
		}
	}
	assert.Equal(t, []string{"1", "2"}, connects, "bob, then alice, connected in the new stream")
}

// TestPushNewEpochAfterTheWindow: a connection whose writer was held up
// while the stream was created anew and the loop read past its window
// still moves to the new stream (main served it nothing, forever: its
// cursor of the old epoch matched no slice of the window).
func TestPushNewEpochAfterTheWindow(t *testing.T) { testPushNewEpochAfterTheWindow(t, "") }

func testPushNewEpochAfterTheWindow(t *testing.T, store redisURL) {
	g := newHoldStore("alice")
	h, url := pushHarnessOn(t, store, wrapStore(func(s stream.Store) stream.Store { g.Store = s; return g }),
		func(a *api.Config, _ *stream.Config) { a.Push.PingInterval = 10 * time.Millisecond })
	c := dial(t, url+"/s/alice/0")
	replies := readAll(t, c) // alice reads all the time, so that her pongs go out
	first := <-replies

	releaseAlice := g.hold(false)
	waitTickers(t, h, 1) // her writer's pings
	advance(t, h, 10*time.Millisecond)
	g.waitHeld(t, "alice") // her writer waits in a presence sync
	recreate(t, h, g)
	for range 70 { // more ticks than the window holds, each read by the loop
		want := g.loopT.Load() + 1
		advance(t, h, 50*time.Millisecond)
		require.Eventually(t, func() bool { return g.loopT.Load() >= want }, 5*time.Second, time.Millisecond)
	}
	releaseAlice()
	advance(t, h, 50*time.Millisecond)
	timeout := time.After(5 * time.Second)
	for {
		select {
		case r := <-replies:
			if r.Epoch != first.Epoch {
				assert.Equal(t, "2", r.ID)
				return
			}
		case <-timeout:
			t.Fatal("no push of the new stream")
		}
	}
}

// readAll reads c's replies onto a channel until c ends.
func readAll(t *testing.T, c *websocket.Conn) <-chan protocol.SyncReply {
	out := make(chan protocol.SyncReply, 256)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() {
		for {
			_, b, err := c.Read(ctx)
			if err != nil {
				return
			}
			var r protocol.SyncReply
			if json.Unmarshal(b, &r) == nil && r.Epoch != "" {
				out <- r
			}
		}
	}()
	return out
}

// TestPushReportOfTheOldEpoch: a message the client sent before it read
// the push of a new epoch reports a checkpoint of the old stream, past the
// t the connection was last sent: the report is dropped, and the events
// and batch beside it are applied (main refused the whole message).
func TestPushReportOfTheOldEpoch(t *testing.T) {
	g := newHoldStore("alice")
	h, url := epochHarness(t, "", g)
	c := dial(t, url+"/s/alice/0")
	first := next(t, c, func(protocol.SyncReply) bool { return true })
	for range 25 {
		advance(t, h, 50*time.Millisecond)
	}
	next(t, c, func(r protocol.SyncReply) bool { return r.T > 21 }) // alice may report checkpoint 20
	recreate(t, h, g)
	advance(t, h, 50*time.Millisecond)
	fresh := next(t, c, func(r protocol.SyncReply) bool { return r.Epoch != first.Epoch })
	require.Less(t, fresh.T, int64(20))

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	msg := `{"batch":"b1","events":[{"type":"move","body":"x"}],"hashes":[{"t":20,"h":"ab"}]}`
	require.NoError(t, c.Write(ctx, websocket.MessageText, []byte(msg)))
	for {
		_, b, err := c.Read(ctx)
		require.NoError(t, err)
		require.NotContains(t, string(b), `"error"`)
		if string(b) == `{"batch":"b1"}` {
			break
		}
	}
	advance(t, h, 50*time.Millisecond)
	var moves []protocol.Event
	for _, e := range h.all("s", "reader") {
		if e.Type == "move" {
			moves = append(moves, e)
		}
	}
	require.Len(t, moves, 1, "the events beside the report were applied")
	assert.Equal(t, fresh.ID, moves[0].Origin)
}

// waitTickers waits until n tickers run on the harness's clock: the push
// writers that ping on it have started.
func waitTickers(t *testing.T, h *harness, n int) {
	t.Helper()
	require.Eventually(t, func() bool { return h.clock.Tickers() >= n }, 5*time.Second, time.Millisecond)
}

// advance moves the harness's clock on by d once its push loop waits for
// its next read (a fake timer is armed), so that the loop does not take
// the move for part of the read it is in, and wait a tick to read again.
func advance(t *testing.T, h *harness, d time.Duration) {
	t.Helper()
	require.Eventually(t, func() bool { return h.clock.Timers() > 0 }, 5*time.Second, time.Millisecond, "a push loop waits")
	h.clock.Advance(d)
}

// failingReads is a store whose push loops' reads fail while failing is
// set, and which counts them.
type failingReads struct {
	stream.Store
	failing atomic.Bool
	reads   atomic.Int64
}

func (f *failingReads) Read(ctx context.Context, req *stream.SyncRequest) (*stream.SyncResult, error) {
	if req.PrivateID == "" {
		f.reads.Add(1)
		if f.failing.Load() {
			return nil, stream.ErrUnavailable
		}
	}
	return f.Store.Read(ctx, req)
}

// TestPushLoopWaitsAfterAFailedRead: a stream's loop whose read fails
// tries again a tick later, not at once (it read the failing store in a
// loop, on every core, for as long as an outage lasted).
func TestPushLoopWaitsAfterAFailedRead(t *testing.T) {
	f := &failingReads{}
	h, url := pushHarness(t, wrapStore(func(s stream.Store) stream.Store { f.Store = s; return f }))
	c := dial(t, url+"/s/alice/0")
	next(t, c, func(protocol.SyncReply) bool { return true })
	tick := func() (reads int64) { // advances a tick, once the loop has read and waits
		reads = f.reads.Load()
		advance(t, h, 50*time.Millisecond)
		require.Eventually(t, func() bool { return f.reads.Load() > reads && h.clock.Timers() > 0 }, 5*time.Second, time.Millisecond,
			"the loop reads, and waits for the next tick")
		return reads
	}
	tick()
	f.failing.Store(true)
	for i := range 3 {
		reads := tick()
		assert.Equal(t, reads+1, f.reads.Load(), "one read a tick, %d", i)
	}
	f.failing.Store(false)
	h.sync("/s/bob/0", `{"events":[{"type":"move"}]}`)
	advance(t, h, 50*time.Millisecond)
	next(t, c, func(r protocol.SyncReply) bool {
		return slices.ContainsFunc(r.Events, func(e protocol.Event) bool { return e.Type == "move" })
	})
}

// TestPushMessageOfTheOldEpoch: a message that names the epoch its client
// composed it in is refused with epoch_mismatch when the stream was
// created anew meanwhile, even though the connection has moved to the new
// stream; nothing of it lands in the new game (main applied it there: a
// message had no epoch of its own, and took the connection's).
func TestPushMessageOfTheOldEpoch(t *testing.T) { testPushMessageOfTheOldEpoch(t, "") }

func testPushMessageOfTheOldEpoch(t *testing.T, store redisURL) {
	g := newHoldStore("alice")
	h, url := epochHarness(t, store, g)
	c := dial(t, url+"/s/alice/0")
	first := next(t, c, func(protocol.SyncReply) bool { return true })

	recreate(t, h, g)
	advance(t, h, 50*time.Millisecond)
	fresh := next(t, c, func(r protocol.SyncReply) bool { return r.Epoch != first.Epoch })
	advance(t, h, 50*time.Millisecond) // alice's _c in the new stream is sealed
	before := h.read("s")

	send(t, c, `{"batch":"old","epoch":"`+first.Epoch+`","events":[{"type":"move","body":"last game"}]}`)
	e := errorMessage(t, c)
	assert.Equal(t, protocol.CodeEpochMismatch, e.Code)
	assert.Equal(t, "old", e.Batch, "the refused message's batch")
	advance(t, h, 50*time.Millisecond)
	assert.Equal(t, before, h.read("s"), "a message of the old epoch changed the new stream")

	send(t, c, `{"batch":"new","epoch":"`+fresh.Epoch+`","events":[{"type":"move","body":"this game"}]}`)
	assert.Equal(t, `{"batch":"new"}`, nextText(t, c))
	advance(t, h, 50*time.Millisecond)
	got := next(t, c, func(r protocol.SyncReply) bool { return len(r.Events) > 0 && r.Events[len(r.Events)-1].Type == "move" })
	assert.Equal(t, `this game`, got.Events[len(got.Events)-1].Body)
}

// watchedReads is failingReads on a store that tells where a stream's
// newest event is (stream.Watcher), as the memory store does.
type watchedReads struct{ failingReads }

func (w *watchedReads) Watch(name string) (string, int64, <-chan struct{}, bool) {
	return stream.WatchOf(w.Store, name)
}

// TestPushLoopReadsWhatChanged: on a store that tells where a stream's
// newest event is, the loop reads the stream only when it has events not
// read yet, or a quiet push is due: once every two ticks while nothing
// happens (main read every tick), and a tick with events is still pushed
// when it ends.
func TestPushLoopReadsWhatChanged(t *testing.T) {
	f := &watchedReads{}
	h, url := pushHarness(t, wrapStore(func(s stream.Store) stream.Store { f.Store = s; return f }))
	pushes := readAll(t, dial(t, url+"/s/alice/0"))
	learnPhase(t, h) // the loop reads every tick until it has learned where ticks begin
	waitPush := func(what string) protocol.SyncReply {
		t.Helper()
		select {
		case r := <-pushes:
			return r
		case <-time.After(5 * time.Second):
			require.FailNow(t, "no push", what)
			return protocol.SyncReply{}
		}
	}
	var last protocol.SyncReply
	for len(pushes) > 0 || last.T == 0 {
		last = waitPush("of the first two seconds")
	}
	require.Eventually(t, func() bool { return h.clock.Timers() > 0 }, 5*time.Second, time.Millisecond)
	// Every push of the two seconds has arrived: the last one's t is where
	// the clock is, less a quiet interval at most.
	reads := f.reads.Load()
	for range 1000 { // 20 quiet ticks, a millisecond at a time
		advance(t, h, time.Millisecond)
	}
	require.Eventually(t, func() bool { return h.clock.Timers() > 0 }, 5*time.Second, time.Millisecond)
	assert.Equal(t, int64(10), f.reads.Load()-reads, "20 quiet ticks, read once a quiet push")
	for i := range 10 {
		r := waitPush(fmt.Sprintf("quiet push %d", i))
		assert.Equal(t, last.T+2, r.T, "a quiet push every two ticks")
		last = r
	}

	moved := h.sync("/s/bob/0", `{"events":[{"type":"move"}]}`)
	for range 60 { // past the end of the move's tick
		advance(t, h, time.Millisecond)
	}
	r := waitPush("the move")
	for !slices.ContainsFunc(r.Events, func(e protocol.Event) bool { return e.Type == "move" }) {
		r = waitPush("the move")
	}
	assert.Equal(t, moved.T+1, r.T, "pushed when the tick with events ended, not at the quiet interval")
}

// learnPhase moves the harness's clock on two seconds, a millisecond at a
// time, so that its push loops learn where ticks begin (tickPhase): a loop
// lets quiet ticks pass unread only once it has.
func learnPhase(t *testing.T, h *harness) {
	t.Helper()
	for range 2000 {
		advance(t, h, time.Millisecond)
	}
}

// timedReads records when, on the harness's clock, the push loops read
// (a store that tells where a stream's newest event is, as the memory
// store does).
type timedReads struct {
	stream.Store
	clk *clock.Fake
	mu  sync.Mutex
	at  []time.Time
}

func (r *timedReads) Read(ctx context.Context, req *stream.SyncRequest) (*stream.SyncResult, error) {
	if req.PrivateID == "" {
		r.mu.Lock()
		r.at = append(r.at, r.clk.Now())
		r.mu.Unlock()
	}
	return r.Store.Read(ctx, req)
}

func (r *timedReads) Watch(name string) (string, int64, <-chan struct{}, bool) {
	return stream.WatchOf(r.Store, name)
}

func (r *timedReads) reads() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.at)
}

// TestPushLoopReadsWhenTheTickEnds: a loop that lets quiet ticks pass
// unread still reads a tick with events right after it ends, once it has
// learned where ticks begin (it let ticks pass before it had, and read at
// the middle of its guess: half a tick late, for good).
func TestPushLoopReadsWhenTheTickEnds(t *testing.T) {
	r := &timedReads{}
	h, url := pushHarness(t, wrapStore(func(s stream.Store) stream.Store { r.Store = s; return r }))
	r.clk = h.clock
	created := h.clock.Now()
	c := dial(t, url+"/s/alice/0") // creates the stream now: tick k begins at created + k × 50 ms
	next(t, c, func(protocol.SyncReply) bool { return true })
	learnPhase(t, h)
	for i := range 5 {
		h.sync("/s/bob/0", fmt.Sprintf(`{"events":[{"type":"move","body":"%d"}]}`, i))
		posted := h.clock.Now().Sub(created)
		end := created.Add((posted/(50*time.Millisecond) + 1) * 50 * time.Millisecond) // of the tick it lands in
		reads := r.reads()
		for h.clock.Now().Before(end.Add(30 * time.Millisecond)) {
			advance(t, h, time.Millisecond)
		}
		require.Eventually(t, func() bool { return h.clock.Timers() > 0 }, 5*time.Second, time.Millisecond)
		r.mu.Lock()
		var first time.Time
		for _, at := range r.at[reads:] {
			if !at.Before(end) {
				first = at
				break
			}
		}
		r.mu.Unlock()
		require.False(t, first.IsZero(), "the tick with the move is read")
		assert.LessOrEqual(t, first.Sub(end), 2*time.Millisecond, "read right after its tick ended (move %d)", i)
		for range 137 { // to another moment of another tick
			advance(t, h, time.Millisecond)
		}
	}
}
