package streamtest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/goeventstream/eventstream/internal/protocol"
	"github.com/goeventstream/eventstream/internal/stream"
)

// runAdmission adds the tests of who may judge, upload and join (the
// attacks of issue 17) to Run.
func runAdmission(t *testing.T, newStore Factory) {
	t.Run("FreshIDsCannotJudge", func(t *testing.T) { testFreshIDsCannotJudge(t, newStore) })
	t.Run("VoterTenure", func(t *testing.T) { testVoterTenure(t, newStore) })
	t.Run("LateReportsKeepVerdicts", func(t *testing.T) { testLateReportsKeepVerdicts(t, newStore) })
	t.Run("UploadRefusals", func(t *testing.T) { testUploadRefusals(t, newStore) })
	t.Run("StreamByteRate", func(t *testing.T) { testStreamByteRate(t, newStore) })
	t.Run("JoinRate", func(t *testing.T) { testJoinRate(t, newStore) })
	t.Run("FloodCannotLockOut", func(t *testing.T) { testFloodCannotLockOut(t, newStore) })
	t.Run("FloodIsForgotten", func(t *testing.T) { testFloodIsForgotten(t, newStore) })
	t.Run("ForgottenVoter", func(t *testing.T) { testForgottenVoter(t, newStore) })
	t.Run("KnownOnly", func(t *testing.T) { testKnownOnly(t, newStore) })
	t.Run("CheckpointBudget", func(t *testing.T) { testCheckpointBudget(t, newStore) })
}

// view is what a refusal must leave as it was: a stream's events, read
// without a client, its desync reports and its snapshot.
type view struct {
	events  []protocol.Event
	desyncs []stream.DesyncReport
	snap    *stream.Snapshot
}

func (e *env) view(name string) view {
	e.t.Helper()
	ctx := context.Background()
	var v view
	req := &stream.SyncRequest{Stream: name}
	for {
		r, err := e.store.Read(ctx, req)
		require.NoError(e.t, err)
		v.events = append(v.events, Decode(e.t, r.Events)...)
		if !r.More {
			break
		}
		req.LastKnownTick, req.Epoch = r.T, r.Epoch
	}
	var err error
	v.desyncs, err = e.store.Desyncs(ctx, name)
	require.NoError(e.t, err)
	if v.snap, err = e.store.Snapshot(ctx, name); err != nil {
		require.ErrorIs(e.t, err, stream.ErrNotFound)
	}
	return v
}

// testFreshIDsCannotJudge: ids that join after a checkpoint, however many,
// have no say on it. Three of them against two honest players named both
// players (and, tied with two, every reporter) and had their forged
// snapshot stored, served and compacted to.
func testFreshIDsCannotJudge(t *testing.T, newStore Factory) {
	ctx := context.Background()
	e := newEnv(t, newStore, func(c *stream.Config) { c.SnapshotEvery = 1 })
	e.poll("s", "a", 0)
	e.poll("s", "b", 0)
	e.post("s", "a", 0, "1", "2")
	e.at(21)
	var st state
	for _, x := range e.all("s", "a") {
		st.apply(x)
	}
	e.ignoredAttack(20, st.hash(), []byte("the attacker's state"), st.bytes())
	e.at(30)
	assert.Empty(t, e.desyncs("s"), "nobody was named")
	_, stored, err := e.store.PutSnapshot(ctx, &stream.Upload{Stream: "s", PrivateID: "b", T: 20, Data: st.bytes()})
	require.NoError(t, err)
	assert.True(t, stored)
	snap, err := e.store.Snapshot(ctx, "s")
	require.NoError(t, err)
	assert.Equal(t, st.bytes(), snap.Data, "the players' state")

	// Joined within the stream's first voter tenure, they are founders and
	// vote on the next checkpoint: three are a majority of five, the trust
	// model's limit (testVoterTenure: ids that join a running game wait).
	e.at(41)
	for _, x := range []string{"x", "y", "z"} {
		e.report("s", x, 41, 40, "ee")
	}
	e.report("s", "a", 41, 40, "aa")
	e.report("s", "b", 41, 40, "aa")
	e.at(81) // judged 2 s after it was sealed: the reader that read the desyncs at 30 is a voter too, silent
	r := e.poll("s", "a", 81)
	assert.Equal(t, 1, r.Judged)
	assert.Equal(t, 2, r.Diverged, "a majority of the players present decides")
}

// ignoredAttack runs, at tick ck+1 of stream "s", the attack of issue 17
// on checkpoint ck, which x, y and z may not vote on: they report the hash
// of forged, the players a and b report h. It requires that only a and b
// were judged, that b was asked for the snapshot, and that uploads of
// forged (and of honest, unless nil) by x, y and z are refused and change
// nothing.
func (e *env) ignoredAttack(ck int64, h string, forged, honest []byte) {
	t := e.t
	t.Helper()
	for _, x := range []string{"x", "y", "z"} {
		r := e.report("s", x, ck+1, ck, sha256Hex(forged))
		assert.Zero(t, r.Judged, "%s may not vote on %d: its report is ignored", x, ck)
		assert.Nil(t, r.Snap, "%s is not asked for the snapshot", x)
	}
	e.report("s", "a", ck+1, ck, h)
	r := e.report("s", "b", ck+1, ck, h)
	assert.Equal(t, 1, r.Judged, "judged once both voters reported")
	assert.Zero(t, r.Diverged)
	require.NotNil(t, r.Snap, "b agreed: it is asked for the snapshot")
	for _, x := range []string{"x", "y", "z"} {
		for _, data := range [][]byte{forged, honest} {
			if data == nil {
				continue
			}
			before := e.view("s")
			_, _, err := e.store.PutSnapshot(context.Background(), &stream.Upload{Stream: "s", PrivateID: x, T: ck, Data: data})
			require.ErrorIs(t, err, stream.ErrForbidden, "%s was not asked, whatever it uploads", x)
			assert.Equal(t, before, e.view("s"), "a refused upload changes nothing")
		}
	}
}

// testVoterTenure: ids that join a running game shortly before a
// checkpoint have no say on it until they have been in the stream for
// VoterTenure; the founders vote from the start. Three of them, joined 2 s
// before a checkpoint, named both honest players of an open stream and
// were asked for its snapshot.
func testVoterTenure(t *testing.T, newStore Factory) {
	e := newEnv(t, newStore, func(c *stream.Config) {
		c.SnapshotEvery = 1
		c.VoterTenure = 3 * time.Second // 60 ticks: a and b, joined at 0, are founders
	})
	e.poll("s", "a", 0)
	e.poll("s", "b", 0)

	e.at(100) // 2 s before checkpoint 140
	for _, x := range []string{"x", "y", "z"} {
		e.poll("s", x, 0)
	}
	e.post("s", "a", 100, "1", "2")
	e.at(141)
	e.ignoredAttack(140, "bb", []byte("the attacker's state"), nil)
	assert.Empty(t, e.desyncs("s"), "nobody was named")

	// In the stream since 100, they vote from checkpoint 160 on: on an open
	// stream a majority that stays long enough decides (tokens are the
	// defence; docs/protocol.md, Trust model).
	e.at(161)
	e.post("s", "a", 161, "3")
	for _, x := range []string{"x", "y", "z"} {
		e.report("s", x, 161, 160, "ee")
	}
	e.report("s", "a", 161, 160, "cc")
	r := e.report("s", "b", 161, 160, "cc")
	assert.Equal(t, 1, r.Judged, "judged once all five voters reported")
	assert.Equal(t, 2, r.Diverged, "the majority, in the stream for the tenure, decides")
}

// testLateReportsKeepVerdicts: a client's late reports that differ are
// answered ("_x" names it) but cannot push the reports of the stream's
// verdicts out of the maxDesyncReports kept.
func testLateReportsKeepVerdicts(t *testing.T, newStore Factory) {
	ctx := context.Background()
	e := newEnv(t, newStore, nil)
	for _, c := range []string{"a", "b", "c"} {
		e.poll("s", c, 0)
	}
	for k := int64(20); k <= 80; k += 20 { // four verdicts that c diverged
		e.at(k + 1)
		e.report("s", "a", k+1, k, "aa")
		e.report("s", "b", k+1, k, "aa")
		require.Equal(t, 1, e.report("s", "c", k+1, k, "cc").Diverged)
	}
	verdicts, err := e.store.Desyncs(ctx, "s")
	require.NoError(t, err)
	require.Len(t, verdicts, 4)
	for k := int64(100); k <= 160; k += 20 { // agreed on by a and b, c silent
		e.at(k + 1)
		e.report("s", "a", k+1, k, "aa")
		e.report("s", "b", k+1, k, "aa")
	}
	e.at(250) // all judged, by the timeout
	e.poll("s", "a", 250)
	for k := int64(100); k <= 160; k += 20 {
		assert.Equal(t, 1, e.report("s", "c", 250, k, "cc").Diverged, "c's late report of %d differs", k)
	}
	got, err := e.store.Desyncs(ctx, "s")
	require.NoError(t, err)
	assert.Equal(t, verdicts, got, "the verdicts' reports are kept")
}

// testUploadRefusals: every upload the server did not ask for is refused
// and leaves the stream as it was.
func testUploadRefusals(t *testing.T, newStore Factory) {
	ctx := context.Background()
	e := newEnv(t, newStore, func(c *stream.Config) { c.SnapshotEvery = 1 })
	r := e.divergeC() // a, b agree on aa at 20, c diverges: the report asks a and c for dumps
	require.NotNil(t, r.Dump)
	snapAsked := ""
	for _, c := range []string{"a", "b"} {
		if r := e.poll("s", c, 21); r.Snap != nil {
			snapAsked = c
		}
	}
	require.NotEmpty(t, snapAsked, "one client that agreed is asked for the snapshot")
	notAsked := map[string]string{"a": "b", "b": "a"}[snapAsked]
	tests := []struct {
		name string
		give stream.Upload
		dump bool
		want error
	}{
		{name: "snapshot by a client that agreed but was not asked", give: stream.Upload{PrivateID: notAsked, T: 20, Data: []byte("s")}, want: stream.ErrForbidden},
		{name: "snapshot by the client that diverged", give: stream.Upload{PrivateID: "c", T: 20, Data: []byte("s")}, want: stream.ErrForbidden},
		{name: "snapshot by an id the stream does not know", give: stream.Upload{PrivateID: "nobody", T: 20, Data: []byte("s")}, want: stream.ErrNotFound},
		{name: "snapshot of another checkpoint", give: stream.Upload{PrivateID: snapAsked, T: 0, Data: []byte("s")}, want: stream.ErrForbidden},
		{name: "snapshot that is not the canonical state", give: stream.Upload{PrivateID: snapAsked, T: 20, Data: []byte("s")}, want: stream.ErrSnapshotMismatch},
		{name: "dump by a client not asked", give: stream.Upload{PrivateID: "b", T: 20, Data: []byte("d")}, dump: true, want: stream.ErrForbidden},
		{name: "dump of a checkpoint without a report", give: stream.Upload{PrivateID: "c", T: 40, Data: []byte("d")}, dump: true, want: stream.ErrNotFound},
		{name: "dump by an id the stream does not know", give: stream.Upload{PrivateID: "nobody", T: 20, Data: []byte("d")}, dump: true, want: stream.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := e.view("s")
			up := tt.give
			up.Stream = "s"
			var err error
			if tt.dump {
				err = e.store.PutDump(ctx, &up)
			} else {
				_, _, err = e.store.PutSnapshot(ctx, &up)
			}
			require.ErrorIs(t, err, tt.want)
			assert.Equal(t, before, e.view("s"))
		})
	}
}

// rateLimited requires err to be a *stream.RateLimitError of what, and
// returns its wait.
func rateLimited(t *testing.T, err error, what string) time.Duration {
	t.Helper()
	var rl *stream.RateLimitError
	require.ErrorAs(t, err, &rl)
	assert.Equal(t, what, rl.What)
	assert.Positive(t, rl.Wait)
	return rl.Wait
}

// testStreamByteRate: the clients of a stream together post at most
// MaxStreamBytesPerSecond (a burst of a page); a request past it is 429
// with the wait, applies nothing, and goes through after the wait.
func testStreamByteRate(t *testing.T, newStore Factory) {
	ctx := context.Background()
	e := newEnv(t, newStore, func(c *stream.Config) {
		c.MaxStreamBytesPerSecond, c.PageBytes = 2000, 1000 // a burst of 2000 bytes
		c.TickRate = 1000                                   // a tick a millisecond, each holding a page
	})
	body := strings.Repeat("x", 100) // an event of about 150 bytes
	posted := 0
	var err error
	for i := 0; err == nil; i++ { // many ids, each within its own share
		e.clock.Advance(time.Millisecond) // 2 bytes more
		var res *stream.SyncResult
		res, err = e.store.Sync(ctx, &stream.SyncRequest{Stream: "s", PrivateID: fmt.Sprint("id", i), Events: Moves(body)})
		if err == nil {
			posted += res.Appended
		}
		require.Less(t, i, 100, "never limited")
	}
	rateLimited(t, err, "stream bytes")
	assert.InDelta(t, 13, posted, 1, "2000 bytes of about 150")
	e.clock.Advance(time.Millisecond)

	before := e.view("s")
	_, err = e.store.Sync(ctx, &stream.SyncRequest{Stream: "s", PrivateID: "id0", Events: Moves(body)})
	wait := rateLimited(t, err, "stream bytes")
	assert.LessOrEqual(t, wait, 80*time.Millisecond, "150 bytes at 2000 a second")
	assert.Equal(t, before, e.view("s"), "a refused post applies nothing")
	e.poll("s", "late", 0) // joining and reading need no bytes
	e.clock.Advance(wait)
	e.post("s", "id0", 0, body)

	// Over 10 s of flood the stream takes its rate and no more.
	start := e.stats().PerStream[0].Bytes
	sent := 0
	for range 1000 {
		e.clock.Advance(10 * time.Millisecond)
		for i := range 5 {
			if _, err := e.store.Sync(ctx, &stream.SyncRequest{Stream: "s", PrivateID: fmt.Sprint("id", i), Events: Moves(body)}); err == nil {
				sent++
			} else {
				rateLimited(t, err, "stream bytes")
			}
		}
	}
	grown := e.stats().PerStream[0].Bytes - start
	assert.LessOrEqual(t, grown, int64(2000*10+2000), "the rate and a burst")
	assert.Greater(t, grown, int64(2000*10-2000), "and the rate is used")
	assert.Positive(t, sent)
}

// testJoinRate: a stream takes at most MaxJoinsPerSecond new ids, after a
// burst of MaxClientsPerStream; known ids coming back are not new.
func testJoinRate(t *testing.T, newStore Factory) {
	ctx := context.Background()
	e := newEnv(t, newStore, func(c *stream.Config) { c.MaxJoinsPerSecond, c.MaxClientsPerStream = 0.1, 3 })
	e.poll("s", "a", 0) // a burst of 3
	e.poll("s", "b", 0)
	e.poll("s", "c", 0)
	e.clock.Advance(10 * time.Second) // one more; a, b and c go silent: their slots come back
	require.Len(t, e.sweep().Disconnected, 3)
	assert.Equal(t, "4", e.poll("s", "d", 0).PublicID)
	before := e.view("s")
	_, err := e.store.Sync(ctx, &stream.SyncRequest{Stream: "s", PrivateID: "e", Events: Moves("x")})
	wait := rateLimited(t, err, "new clients")
	assert.Equal(t, before, e.view("s"), "a refused join applies nothing")
	assert.Equal(t, "1", e.poll("s", "a", 0).PublicID, "a known id is not new")
	e.clock.Advance(wait)
	assert.Equal(t, "5", e.poll("s", "e", 0).PublicID, "e joins once the bucket holds one")
}

// testFloodCannotLockOut: ids that take every slot give them back when
// they go silent, and ids that post as fast as they may leave an honest
// player 429s, never a 409 stream_full.
func testFloodCannotLockOut(t *testing.T, newStore Factory) {
	ctx := context.Background()
	e := newEnv(t, newStore, func(c *stream.Config) {
		c.MaxClientsPerStream = 20
		c.MaxStreamBytes = 64 << 10
		c.MaxStreamBytesPerSecond, c.PageBytes = 1000, 1000
		c.TickRate = 1000
	})
	e.poll("s", "honest", 0)
	body := strings.Repeat("x", 100)
	for i := range 19 {
		e.clock.Advance(time.Millisecond)
		_, err := e.store.Sync(ctx, &stream.SyncRequest{Stream: "s", PrivateID: fmt.Sprint("id", i), Events: Moves(body)})
		if err != nil {
			rateLimited(t, err, "stream bytes")
			e.poll("s", fmt.Sprint("id", i), 0)
		}
	}
	_, err := e.store.Sync(ctx, &stream.SyncRequest{Stream: "s", PrivateID: "newcomer"})
	require.ErrorIs(t, err, stream.ErrClientCap, "19 ids and the honest player fill the stream")
	full := 0
	for range 60 * 20 { // a minute of flood, every 50 ms
		e.clock.Advance(30 * time.Millisecond)
		for i := range 19 {
			_, err := e.store.Sync(ctx, &stream.SyncRequest{Stream: "s", PrivateID: fmt.Sprint("id", i), Events: Moves(body)})
			if errors.Is(err, stream.ErrStreamFull) {
				full++
			}
			e.clock.Advance(time.Millisecond)
		}
		_, err := e.store.Sync(ctx, &stream.SyncRequest{Stream: "s", PrivateID: "honest", Events: Moves("move")})
		if err != nil {
			rateLimited(t, err, "stream bytes")
		}
	}
	assert.Zero(t, full, "the rate keeps the stream below its cap: 1000 bytes a second for a minute is 60 000 of 65 536")
	e.clock.Advance(time.Second)
	e.post("s", "honest", 0, "move")

	// The ids go silent: their slots come back.
	e.clock.Advance(5 * time.Second)
	e.poll("s", "honest", 0)
	e.clock.Advance(5 * time.Second)
	require.Len(t, e.sweep().Disconnected, 19)
	e.poll("s", "newcomer", 0)
}

// testFloodIsForgotten: ids that joined and went silent cannot lock new
// players out for the stream's life. With a cap of 3 clients, a stream
// remembers 24 ids; a new id that finds 24 remembered takes the place of
// the one disconnected longest (the earliest "_d", then the smallest
// public id), which, if it returns, is a new client. A new id refused by
// the client cap forgets nobody.
func testFloodIsForgotten(t *testing.T, newStore Factory) {
	ctx := context.Background()
	const slots = 3
	e := newEnv(t, newStore, func(c *stream.Config) { c.MaxClientsPerStream, c.MaxJoinsPerSecond = slots, 0 })
	id := func(i int) string { return fmt.Sprint("id", i) }
	for g := range 8 { // 8 groups of 3 ids, each disconnected at its own tick
		for i := range slots {
			assert.Equal(t, fmt.Sprint(g*slots+i+1), e.poll("s", id(g*slots+i), 0).PublicID)
		}
		e.clock.Advance(11 * time.Second)
		require.Len(t, e.sweep().Disconnected, slots)
	}

	// Three slots taken, 21 ids disconnected: the client cap refuses a new
	// id, and it forgets nobody.
	for i := range slots {
		assert.Equal(t, fmt.Sprint(i+1), e.poll("s", id(i), 0).PublicID, "%s is remembered", id(i))
	}
	before := e.view("s")
	_, err := e.store.Sync(ctx, &stream.SyncRequest{Stream: "s", PrivateID: "new", Events: Moves("x")})
	require.ErrorIs(t, err, stream.ErrClientCap)
	assert.Equal(t, before, e.view("s"), "a refusal changes nothing")
	e.clock.Advance(11 * time.Second)
	require.Len(t, e.sweep().Disconnected, slots)
	// id0, id1 and id2 left last now; id3 (public id 4) left first.

	r := e.poll("s", "new", 0)
	assert.Equal(t, "25", r.PublicID, "24 remembered, all disconnected: the new id is admitted")
	r = e.poll("s", id(3), 0)
	assert.Equal(t, "26", r.PublicID, "id3, disconnected longest, was forgotten: it is a new client")
	e.clock.Advance(tick)
	assert.True(t, slices.ContainsFunc(e.view("s").events, func(x protocol.Event) bool {
		return x.Type == protocol.TypeConnect && x.Body == "26"
	}), "a new \"_c\"")
	// id3 took the place of id4 (public id 5, the same "_d" as 4, the next
	// public id); id5 (6) is still remembered.
	assert.Equal(t, "6", e.poll("s", id(5), 0).PublicID, "id5 is remembered")
	e.clock.Advance(11 * time.Second)
	require.Len(t, e.sweep().Disconnected, slots)
	assert.Equal(t, "27", e.poll("s", id(4), 0).PublicID, "id4 was forgotten")
	assert.Equal(t, "1", e.poll("s", id(0), 0).PublicID, "id0 left late: it is remembered")
}

// testForgottenVoter: a voter forgotten before its checkpoint is judged
// has no say on it, like any voter that left.
func testForgottenVoter(t *testing.T, newStore Factory) {
	e := newEnv(t, newStore, func(c *stream.Config) {
		c.MaxClientsPerStream, c.MaxJoinsPerSecond, c.ClientTimeout = 2, 0, 60*time.Millisecond
	})
	e.poll("s", "a", 0)
	e.poll("s", "b", 0)
	e.at(21)
	e.report("s", "a", 21, 20, "aa")
	e.poll("s", "b", 21)
	e.at(24)
	require.Len(t, e.sweep().Disconnected, 2)
	for i := range 14 { // 16 remembered, all disconnected
		e.poll("s", fmt.Sprint("id", i), 0)
		if i%2 == 1 {
			e.clock.Advance(70 * time.Millisecond)
			require.Len(t, e.sweep().Disconnected, 2)
		}
	}
	assert.Equal(t, "17", e.poll("s", "x", 0).PublicID, "x takes a's place")
	assert.Equal(t, "18", e.poll("s", "y", 0).PublicID, "y takes b's place")
	e.at(61) // checkpoint 20 is due
	r := e.poll("s", "x", 0)
	assert.Equal(t, 1, r.Judged)
	assert.Zero(t, r.Diverged)
	d, err := e.store.Desyncs(context.Background(), "s")
	require.NoError(t, err)
	assert.Empty(t, d)
}

// testKnownOnly: a request with KnownOnly from an id the stream does not
// know applies nothing, not even creating the stream.
func testKnownOnly(t *testing.T, newStore Factory) {
	ctx := context.Background()
	e := newEnv(t, newStore, nil)
	_, err := e.store.Sync(ctx, &stream.SyncRequest{Stream: "s", PrivateID: "a", KnownOnly: true, Events: Moves("x")})
	require.ErrorIs(t, err, stream.ErrNewClient)
	_, err = e.store.Read(ctx, &stream.SyncRequest{Stream: "s"})
	require.ErrorIs(t, err, stream.ErrNotFound, "no stream created")
	assert.Zero(t, e.stats().Streams)

	e.poll("s", "a", 0)
	before := e.view("s")
	_, err = e.store.Sync(ctx, &stream.SyncRequest{Stream: "s", PrivateID: "b", KnownOnly: true})
	require.ErrorIs(t, err, stream.ErrNewClient)
	assert.Equal(t, before, e.view("s"))
	r := e.sync(&stream.SyncRequest{Stream: "s", PrivateID: "a", KnownOnly: true, Events: Moves("y")})
	assert.Equal(t, 1, r.Appended, "a known id syncs as ever")
	assert.Equal(t, "2", e.poll("s", "b", 0).PublicID, "the refused id took no public id")
}

// diverge connects a, b and c to each stream named, created now; at their
// tick 21 a and b report the hash of data for checkpoint 20 and c another.
// a is then asked for the snapshot and a dump, c for a dump.
func (e *env) diverge(data []byte, names ...string) {
	e.t.Helper()
	for _, name := range names {
		for _, c := range []string{"a", "b", "c"} {
			e.poll(name, c, 0)
		}
	}
	e.clock.Advance(time.Second) // to tick 21
	for _, name := range names {
		e.divergeOne(name, data)
	}
}

func (e *env) divergeOne(name string, data []byte) {
	e.t.Helper()
	e.report(name, "a", 21, 20, sha256Hex(data))
	e.report(name, "b", 21, 20, sha256Hex(data))
	require.NotNil(e.t, e.report(name, "c", 21, 20, "cc").Dump)
	r := e.poll(name, "a", 21)
	require.NotNil(e.t, r.Snap)
	require.NotNil(e.t, r.Dump)
}

// testCheckpointBudget: the snapshots and dumps of all streams hold at most
// MaxCheckpointBytes (each upload counting its bytes and 64): an upload
// past it drops the oldest dumps, never a snapshot, and one that cannot fit
// even so is refused and stores nothing. 48 dumps of 4 MiB took a server
// from 12 to 330 MB.
func testCheckpointBudget(t *testing.T, newStore Factory) {
	ctx := context.Background()
	e := newEnv(t, newStore, func(c *stream.Config) {
		c.SnapshotEvery, c.MaxSnapshotBytes, c.MaxCheckpointBytes = 1, 1000, 3000
	})
	data := []byte(strings.Repeat("s", 900)) // costs 964: three fit
	e.diverge(data, "s1", "s2", "s3", "s4")
	dump := func(name, id string) error {
		return e.store.PutDump(ctx, &stream.Upload{Stream: name, PrivateID: id, T: 20, Data: data})
	}
	snapshot := func(name string) error {
		_, _, err := e.store.PutSnapshot(ctx, &stream.Upload{Stream: name, PrivateID: "a", T: 20, Data: data})
		return err
	}
	require.NoError(t, dump("s1", "c"))
	require.NoError(t, dump("s1", "a"))
	require.NoError(t, dump("s2", "c"))
	assert.EqualValues(t, 3*964, e.stats().CheckpointBytes)
	require.NoError(t, dump("s2", "a"), "the oldest dump makes room")
	assert.EqualValues(t, 3*964, e.stats().CheckpointBytes)
	_, err := e.store.Dump(ctx, "s1", 20, "3")
	require.ErrorIs(t, err, stream.ErrNotFound, "s1's c's dump, the oldest, was dropped")
	reps, err := e.store.Desyncs(ctx, "s1")
	require.NoError(t, err)
	assert.Equal(t, []stream.DesyncClient{{PublicID: "1", Hash: sha256Hex(data), Dump: true}, {PublicID: "3", Hash: "cc"}}, reps[0].Clients)
	e.clock.Advance(4 * time.Second)
	assert.Nil(t, e.poll("s1", "c", 100).Dump, "a dump dropped is not asked for again")

	require.NoError(t, snapshot("s1"), "drops s1's a's dump")
	require.NoError(t, snapshot("s2"), "drops s2's c's")
	require.NoError(t, snapshot("s3"), "drops s2's a's, the last")
	assert.EqualValues(t, 3*964, e.stats().CheckpointBytes)
	before := e.view("s4")
	require.ErrorIs(t, snapshot("s4"), stream.ErrCheckpointBudget, "snapshots are never dropped")
	require.ErrorIs(t, dump("s4", "c"), stream.ErrCheckpointBudget)
	assert.Equal(t, before, e.view("s4"), "refused: nothing stored")
	assert.EqualValues(t, 3*964, e.stats().CheckpointBytes)
	for _, name := range []string{"s1", "s2", "s3"} {
		snap, err := e.store.Snapshot(ctx, name)
		require.NoError(t, err)
		assert.Equal(t, data, snap.Data)
	}

	// A stream that expires gives its bytes back.
	e.clock.Advance(10 * time.Second)
	e.sweep()
	e.clock.Advance(60 * time.Second)
	require.Len(t, e.sweep().Expired, 4)
	assert.Zero(t, e.stats().CheckpointBytes)
	e.diverge(data, "s5")
	require.NoError(t, snapshot("s5"))
}
