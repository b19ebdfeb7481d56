package streamtest

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/goeventstream/eventstream/internal/protocol"
	"github.com/goeventstream/eventstream/internal/stream"
)

// runCheckpoints adds the checkpoint tests to Run.
func runCheckpoints(t *testing.T, newStore Factory) {
	t.Run("CheckpointAllReported", func(t *testing.T) { testCheckpointAllReported(t, newStore) })
	t.Run("CheckpointTimeout", func(t *testing.T) { testCheckpointTimeout(t, newStore) })
	t.Run("CheckpointTie", func(t *testing.T) { testCheckpointTie(t, newStore) })
	t.Run("CheckpointQuorum", func(t *testing.T) { testCheckpointQuorum(t, newStore) })
	t.Run("CheckpointIgnored", func(t *testing.T) { testCheckpointIgnored(t, newStore) })
	t.Run("CheckpointOff", func(t *testing.T) { testCheckpointOff(t, newStore) })
	t.Run("BadReport", func(t *testing.T) { testBadReport(t, newStore) })
	t.Run("Snapshot", func(t *testing.T) { testSnapshot(t, newStore) })
	t.Run("Compaction", func(t *testing.T) { testCompaction(t, newStore) })
	t.Run("Dumps", func(t *testing.T) { testDumps(t, newStore) })
	t.Run("DumpAskedAgain", func(t *testing.T) { testDumpAskedAgain(t, newStore) })
	t.Run("FullHistory", func(t *testing.T) { testFullHistory(t, newStore) })
	t.Run("Read", func(t *testing.T) { testRead(t, newStore) })
}

// report syncs as privateID from tick from, reporting hash h of checkpoint ck.
func (e *env) report(name, privateID string, from, ck int64, h string) Reply {
	e.t.Helper()
	return e.sync(&stream.SyncRequest{Stream: name, PrivateID: privateID, LastKnownTick: from,
		Hashes: []protocol.HashReport{{T: ck, H: h}}})
}

// desyncs returns the "_x" events of the stream, read from tick 0.
func (e *env) desyncs(name string) []protocol.Event {
	e.t.Helper()
	var out []protocol.Event
	for _, x := range e.all(name, "reader") {
		if x.Type == protocol.TypeDesync {
			out = append(out, x)
		}
	}
	return out
}

func xBody(t int64, ids ...string) string {
	b, _ := json.Marshal(protocol.Desync{T: t, IDs: ids})
	return string(b)
}

// at moves the clock to the start of tick k.
func (e *env) at(k int64) {
	e.clock.Set(Start.Add(time.Duration(k-1) * time.Second / time.Duration(e.cfg.TickRate)))
}

func testCheckpointAllReported(t *testing.T, newStore Factory) {
	e := newEnv(t, newStore, nil)
	for _, c := range []string{"a", "b", "c"} {
		e.poll("s", c, 0)
	}
	e.at(25)
	assert.EqualValues(t, 20, e.report("s", "a", 25, 20, "aa").Checkpoint, "every reply says the interval")
	r := e.report("s", "b", 25, 20, "aa")
	assert.Zero(t, r.Judged, "c has not reported")
	r = e.report("s", "c", 25, 20, "bb")
	assert.Equal(t, 1, r.Judged, "judged once every connected client reported")
	assert.Equal(t, 1, r.Diverged)
	e.at(26)
	assert.Equal(t, []protocol.Event{ev(25, "_x", "_", xBody(20, "3"))}, e.desyncs("s"))
}

func testCheckpointTimeout(t *testing.T, newStore Factory) {
	e := newEnv(t, newStore, nil)
	for _, c := range []string{"a", "b", "c", "d"} {
		e.poll("s", c, 0)
	}
	e.at(30)
	e.report("s", "a", 30, 20, "aa")
	e.report("s", "b", 30, 20, "aa")
	e.at(60) // sealed at 21: judged from 21 + 2 s (40 ticks) on
	assert.Zero(t, e.poll("s", "c", 60).Judged)
	e.at(61)
	assert.Equal(t, 1, e.poll("s", "c", 60).Judged)
	e.at(62)
	assert.Empty(t, e.desyncs("s"), "c did not report: it did not diverge")

	r := e.report("s", "c", 62, 20, "aa")
	assert.Zero(t, r.Diverged, "a late report that agrees")
	e.report("s", "a", 62, 20, "cc") // a repeat: the first report counts
	e.at(70)
	assert.Empty(t, e.desyncs("s"))
	e.report("s", "reader", 70, 20, "bb") // connected at 62 (desyncs reads as it), after the checkpoint: ignored
	e.at(71)
	assert.Empty(t, e.desyncs("s"), "a client that connected after a checkpoint has no say on it")
	e.report("s", "d", 71, 20, "bb") // a late report that differs
	e.at(72)
	assert.Equal(t, []protocol.Event{ev(71, "_x", "_", xBody(20, "4"))}, e.desyncs("s"))
}

// testCheckpointTie: when hashes tie for the most there is no verdict and
// nobody is named: naming every reporter would let as many minted ids as
// there are players send the players to resync.
func testCheckpointTie(t *testing.T, newStore Factory) {
	ctx := context.Background()
	e := newEnv(t, newStore, nil)
	e.poll("s", "a", 0)
	e.poll("s", "b", 0)
	e.at(22)
	e.report("s", "a", 22, 20, "aa")
	r := e.report("s", "b", 22, 20, "bb")
	assert.Equal(t, 1, r.Judged)
	assert.Zero(t, r.Diverged, "a tie names nobody")
	e.at(23)
	assert.Empty(t, e.desyncs("s"))
	reps, err := e.store.Desyncs(ctx, "s")
	require.NoError(t, err)
	assert.Empty(t, reps, "and makes no desync report")
	e.at(30)
	assert.Zero(t, e.report("s", "a", 30, 20, "cc").Diverged, "a tie has no canonical hash for a late report to differ from")
}

func testCheckpointQuorum(t *testing.T, newStore Factory) {
	e := newEnv(t, newStore, nil)
	e.poll("s", "a", 0)
	e.poll("s", "b", 0)
	e.poll("s", "c", 0)
	e.at(22)
	e.report("s", "a", 22, 20, "aa")
	e.report("s", "c", 22, 0, "ff") // tick 0 is a checkpoint too, but c connected at tick 1: ignored
	e.at(42)
	e.report("s", "b", 42, 40, "bb")
	e.at(100)
	r := e.poll("s", "a", 100)
	assert.Equal(t, 2, r.Judged, "20 and 40; nobody could vote on 0")
	assert.Zero(t, r.Diverged, "one report of each is below the quorum of 2: no verdict, nobody diverged")

	// Alone, a client is its own quorum.
	e2 := newEnv(t, newStore, func(c *stream.Config) { c.SnapshotEvery = 1 })
	e2.poll("solo", "a", 0)
	e2.at(45)
	r = e2.report("solo", "a", 45, 40, "ab")
	assert.Equal(t, 1, r.Judged)
	require.NotNil(t, r.Snap, "a agreed with itself: it is asked for the snapshot")
	_, _, err := e2.store.PutSnapshot(context.Background(), &stream.Upload{Stream: "solo", PrivateID: "a", T: 40, Data: []byte("x")})
	assert.ErrorIs(t, err, stream.ErrSnapshotMismatch, "the canonical hash is ab")
}

func testCheckpointIgnored(t *testing.T, newStore Factory) {
	e := newEnv(t, newStore, nil)
	e.poll("s", "a", 0)
	e.poll("s", "b", 0)
	e.at(400)
	e.report("s", "a", 400, 400, "aa") // not sealed
	e.report("s", "a", 400, 200, "aa") // older than 10 s
	r := e.sync(&stream.SyncRequest{Stream: "s", PrivateID: "a", LastKnownTick: 400,
		Epoch: "00000000-0000-4000-8000-000000000000", Hashes: []protocol.HashReport{{T: 380, H: "aa"}}})
	assert.Zero(t, r.Judged, "a report of another epoch")
	e.report("s", "b", 400, 380, "bb")
	e.at(500)
	r = e.poll("s", "a", 500)
	assert.Zero(t, r.Diverged, "only b's report of 380 counted: below the quorum")
	assert.Empty(t, e.desyncs("s"))
}

func testCheckpointOff(t *testing.T, newStore Factory) {
	e := newEnv(t, newStore, func(c *stream.Config) { c.CheckpointInterval = 0 })
	e.poll("s", "a", 0)
	e.at(30)
	assert.Zero(t, e.poll("s", "a", 30).Checkpoint)
	_, err := e.store.Sync(context.Background(), &stream.SyncRequest{Stream: "s", PrivateID: "a", LastKnownTick: 30,
		Hashes: []protocol.HashReport{{T: 20, H: "aa"}}})
	assert.ErrorIs(t, err, stream.ErrBadReport, "checkpoints are off")
	assert.ErrorContains(t, err, "checkpoints are off on this server", "the reply says why, not only which ticks are checkpoints")
}

// testBadReport: a report of a tick that is not a checkpoint fails the
// whole request.
func testBadReport(t *testing.T, newStore Factory) {
	e := newEnv(t, newStore, nil)
	e.poll("s", "a", 0)
	e.at(30)
	_, err := e.store.Sync(context.Background(), &stream.SyncRequest{Stream: "s", PrivateID: "a", LastKnownTick: 30,
		Events: Moves("x"), Hashes: []protocol.HashReport{{T: 20, H: "aa"}, {T: 21, H: "aa"}}})
	require.ErrorIs(t, err, stream.ErrBadReport)
	e.at(31)
	assert.Empty(t, e.poll("s", "a", 30).Events, "nothing applied")
}

// state is a tiny deterministic simulation: the events it applied, folded.
type state struct {
	n   uint64
	sum [32]byte
}

func (s *state) apply(x protocol.Event) {
	h := sha256.New()
	h.Write(s.sum[:])
	h.Write([]byte(eventJSON(x)))
	copy(s.sum[:], h.Sum(nil))
	s.n++
}

func (s *state) bytes() []byte { return binary.BigEndian.AppendUint64(s.sum[:], s.n) }

func (s *state) hash() string { return sha256Hex(s.bytes()) }

// sha256Hex is the hash of a snapshot as the protocol defines it.
func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func restore(b []byte) state {
	var s state
	copy(s.sum[:], b[:32])
	s.n = binary.BigEndian.Uint64(b[32:])
	return s
}

func testSnapshot(t *testing.T, newStore Factory) {
	ctx := context.Background()
	e := newEnv(t, newStore, func(c *stream.Config) { c.SnapshotEvery = 5 })
	_, err := e.store.Snapshot(ctx, "s")
	require.ErrorIs(t, err, stream.ErrNotFound)
	e.poll("s", "a", 0)
	e.poll("s", "b", 0)
	e.post("s", "a", 0, "1", "2", "3")
	e.at(21)
	var st state
	for _, x := range e.all("s", "a") {
		st.apply(x)
	}
	e.report("s", "a", 21, 20, st.hash())
	r := e.report("s", "b", 21, 20, st.hash())
	require.Equal(t, 1, r.Judged)
	require.NotNil(t, r.Snap, "b agreed: it is asked for the snapshot")
	assert.EqualValues(t, 20, *r.Snap)
	assert.Nil(t, e.poll("s", "a", 21).Snap, "one client is asked at a time")

	up := &stream.Upload{Stream: "s", PrivateID: "b", T: 20, Data: []byte("not the state")}
	_, _, err = e.store.PutSnapshot(ctx, up)
	require.ErrorIs(t, err, stream.ErrSnapshotMismatch)
	_, err = e.store.Snapshot(ctx, "s")
	require.ErrorIs(t, err, stream.ErrNotFound, "nothing stored")
	_, _, err = e.store.PutSnapshot(ctx, &stream.Upload{Stream: "s", PrivateID: "nobody", T: 20, Data: st.bytes()})
	require.ErrorIs(t, err, stream.ErrNotFound)

	up.Data = st.bytes()
	got, stored, err := e.store.PutSnapshot(ctx, up)
	require.NoError(t, err)
	assert.EqualValues(t, 20, got)
	assert.True(t, stored)
	got, stored, err = e.store.PutSnapshot(ctx, up)
	require.NoError(t, err)
	assert.EqualValues(t, 20, got)
	assert.False(t, stored, "stored already")
	snap, err := e.store.Snapshot(ctx, "s")
	require.NoError(t, err)
	assert.Equal(t, &stream.Snapshot{T: 20, Hash: st.hash(), Epoch: r.Epoch, Data: st.bytes()}, snap)

	e.at(22 + 40) // b was asked at 21; another may be asked from 2 s later
	assert.Nil(t, e.poll("s", "a", 62).Snap, "stored: nobody is asked again")
}

func testCompaction(t *testing.T, newStore Factory) {
	ctx := context.Background()
	e := newEnv(t, newStore, func(c *stream.Config) {
		c.SnapshotEvery = 1
		c.HistoryRetain = time.Second
		c.MaxEventsPerStream = 12
	})
	e.poll("s", "a", 0)
	e.post("s", "a", 0, "1", "2", "3")
	e.at(15)
	e.post("s", "a", 0, "4", "5")
	e.at(21)
	var st state
	for _, x := range e.all("s", "a") {
		st.apply(x)
	}
	r := e.report("s", "a", 21, 20, st.hash())
	require.NotNil(t, r.Snap)
	_, _, err := e.store.PutSnapshot(ctx, &stream.Upload{Stream: "s", PrivateID: "a", T: 20, Data: st.bytes()})
	require.NoError(t, err)
	e.post("s", "a", 21, "6")

	e.at(35) // events older than 1 s (20 ticks), at or below the snapshot's tick, go: to 14
	r = e.poll("s", "b", 0)
	assert.Equal(t, 4, r.Compacted, "a's _c, the moves of tick 1 (_a at tick 0 went at tick 21)")
	require.NotNil(t, r.Base, "a client that asks for compacted ticks starts from the snapshot")
	assert.EqualValues(t, 20, *r.Base)
	assert.Equal(t, []protocol.Event{ev(21, "move", "1", "6")}, r.Events)
	r = e.poll("s", "a", 15)
	assert.Nil(t, r.Base, "a client past the compacted ticks carries on")
	assert.Equal(t, []protocol.Event{ev(15, "move", "1", "4"), ev(15, "move", "1", "5"), ev(21, "move", "1", "6")}, r.Events)
	e.at(41)
	r = e.poll("s", "c", 0)
	assert.Equal(t, 2, r.Compacted)
	require.NotNil(t, r.Base)
	assert.Equal(t, []protocol.Event{ev(21, "move", "1", "6"), ev(35, "_c", "_", "2")}, r.Events)
	assert.Nil(t, e.poll("s", "a", 21).Base, "a client past the snapshot carries on")

	// The client that joins loads the snapshot and reaches the same state.
	snap, err := e.store.Snapshot(ctx, "s")
	require.NoError(t, err)
	joined := restore(snap.Data)
	assert.Equal(t, st, joined)

	// The caps apply to what is kept: 3 events are, 9 more fit.
	kept := append(r.Events, ev(41, "_c", "_", "3"))
	size := 0
	for _, x := range kept {
		size += len(eventJSON(x))
	}
	assert.EqualValues(t, 3, e.stats().PerStream[0].Events)
	assert.EqualValues(t, size, e.stats().PerStream[0].Bytes, "the bytes of what is kept")
	e.post("s", "a", 42, "7", "8", "9", "10", "11", "12", "13", "14")
	_, err = e.store.Sync(ctx, &stream.SyncRequest{Stream: "s", PrivateID: "a", LastKnownTick: 42, Events: Moves("15", "16")})
	require.ErrorIs(t, err, stream.ErrEventCap)
}

// divergeC connects a, b and c to stream "s"; at tick 21 a and b report
// hash "aa" of checkpoint 20 and c, last, "cc". It returns c's reply.
func (e *env) divergeC() Reply {
	e.t.Helper()
	for _, c := range []string{"a", "b", "c"} {
		e.poll("s", c, 0)
	}
	e.at(21)
	e.report("s", "a", 21, 20, "aa")
	e.report("s", "b", 21, 20, "aa")
	return e.report("s", "c", 21, 20, "cc")
}

func testDumps(t *testing.T, newStore Factory) {
	ctx := context.Background()
	e := newEnv(t, newStore, nil)
	_, err := e.store.Desyncs(ctx, "s")
	require.ErrorIs(t, err, stream.ErrNotFound)
	r := e.divergeC()
	require.NotNil(t, r.Dump, "c diverged: asked for a dump at once")
	assert.EqualValues(t, 20, *r.Dump)
	r = e.poll("s", "a", 21)
	require.NotNil(t, r.Dump, "a agreed: asked for the dump to compare with")
	assert.Nil(t, e.poll("s", "a", 21).Dump, "not asked again at once")
	assert.Nil(t, e.poll("s", "b", 21).Dump, "one client that agreed is asked")

	require.ErrorIs(t, e.store.PutDump(ctx, &stream.Upload{Stream: "s", PrivateID: "b", T: 20, Data: []byte("b")}), stream.ErrForbidden,
		"b was not asked")
	require.ErrorIs(t, e.store.PutDump(ctx, &stream.Upload{Stream: "s", PrivateID: "b", T: 40, Data: []byte("b")}), stream.ErrNotFound,
		"no report of 40")
	require.NoError(t, e.store.PutDump(ctx, &stream.Upload{Stream: "s", PrivateID: "c", T: 20, Data: []byte("state of c")}))
	reps, err := e.store.Desyncs(ctx, "s")
	require.NoError(t, err)
	assert.Equal(t, []stream.DesyncReport{{T: 20, At: 21, Hash: "aa", Clients: []stream.DesyncClient{
		{PublicID: "1", Hash: "aa"}, {PublicID: "3", Hash: "cc", Dump: true}}}}, reps)
	d, err := e.store.Dump(ctx, "s", 20, "3")
	require.NoError(t, err)
	assert.Equal(t, "state of c", string(d))
	_, err = e.store.Dump(ctx, "s", 20, "1")
	assert.ErrorIs(t, err, stream.ErrNotFound, "not uploaded yet")

	// The newest reports are kept.
	for k := int64(40); k <= 120; k += 20 {
		e.at(k + 1)
		e.report("s", "a", k+1, k, "aa")
		e.report("s", "b", k+1, k, "aa")
		e.report("s", "c", k+1, k, "cc")
	}
	reps, err = e.store.Desyncs(ctx, "s")
	require.NoError(t, err)
	require.Len(t, reps, 4)
	assert.EqualValues(t, 60, reps[0].T)
	_, err = e.store.Dump(ctx, "s", 20, "3")
	assert.ErrorIs(t, err, stream.ErrNotFound, "gone with its report")
}

// testDumpAskedAgain: a dump whose ask or upload was lost is asked for
// again, judgeAfter (2 s) after each ask, until it is stored; the report
// then has it.
func testDumpAskedAgain(t *testing.T, newStore Factory) {
	ctx := context.Background()
	e := newEnv(t, newStore, nil)
	r := e.divergeC()
	require.NotNil(t, r.Dump, "c diverged: asked for its dump; this reply is lost")
	assert.Nil(t, e.poll("s", "c", 21).Dump, "not again at once: an upload may be under way")
	e.at(60)
	assert.Nil(t, e.poll("s", "c", 60).Dump, "not again before 2 s")
	e.at(61)
	r = e.poll("s", "c", 61)
	require.NotNil(t, r.Dump, "asked again 2 s later: the dump did not come")
	assert.EqualValues(t, 20, *r.Dump)
	e.at(101)
	r = e.poll("s", "c", 101)
	require.NotNil(t, r.Dump, "and again, until it comes")
	require.NoError(t, e.store.PutDump(ctx, &stream.Upload{Stream: "s", PrivateID: "c", T: 20, Data: []byte("state of c")}))
	e.at(200)
	assert.Nil(t, e.poll("s", "c", 200).Dump, "stored: not asked again")
	reps, err := e.store.Desyncs(ctx, "s")
	require.NoError(t, err)
	require.Len(t, reps, 1)
	assert.Equal(t, []stream.DesyncClient{{PublicID: "1", Hash: "aa"}, {PublicID: "3", Hash: "cc", Dump: true}}, reps[0].Clients)

	r = e.poll("s", "a", 200) // a, which agreed, had not synced since
	require.NotNil(t, r.Dump)
	assert.EqualValues(t, 20, *r.Dump)
	e.at(240)
	assert.NotNil(t, e.poll("s", "a", 240).Dump, "a never uploads: asked every 2 s")
	assert.Nil(t, e.poll("s", "b", 240).Dump, "b was never asked")
}

// testFullHistory: with SnapshotEvery 0 no client is asked for a
// snapshot, one uploaded unasked is refused, and nothing is compacted.
func testFullHistory(t *testing.T, newStore Factory) {
	ctx := context.Background()
	e := newEnv(t, newStore, func(c *stream.Config) { c.SnapshotEvery, c.HistoryRetain = 0, 0 })
	e.post("s", "a", 0, "1")
	e.at(21)
	var st state
	for _, x := range e.all("s", "a") {
		st.apply(x)
	}
	assert.Nil(t, e.report("s", "a", 21, 20, st.hash()).Snap, "never asked")
	_, _, err := e.store.PutSnapshot(ctx, &stream.Upload{Stream: "s", PrivateID: "a", T: 20, Data: st.bytes()})
	require.ErrorIs(t, err, stream.ErrForbidden, "only the client asked may upload")
	_, err = e.store.Snapshot(ctx, "s")
	require.ErrorIs(t, err, stream.ErrNotFound)
	e.at(500)
	r := e.poll("s", "b", 0)
	assert.Nil(t, r.Base)
	assert.Zero(t, r.Compacted)
	assert.Equal(t, protocol.TypeReset, r.Events[0].Type, "the whole history, from _a")
}

// testRead: a read returns what a sync would, without a client: no
// stream created, nothing appended, no presence.
func testRead(t *testing.T, newStore Factory) {
	ctx := context.Background()
	e := newEnv(t, newStore, func(c *stream.Config) { c.PageEvents = 3 })
	_, err := e.store.Read(ctx, &stream.SyncRequest{Stream: "s"})
	require.ErrorIs(t, err, stream.ErrNotFound)
	assert.Zero(t, e.stats().Streams, "a read creates no stream")

	e.post("s", "a", 0, "1", "2")
	e.at(5)
	e.post("s", "a", 0, "3")
	e.at(9)
	r, err := e.store.Read(ctx, &stream.SyncRequest{Stream: "s"})
	require.NoError(t, err)
	got := Decode(t, r.Events)
	assert.Equal(t, "_a", got[0].Type)
	assert.True(t, r.More, "paged as a sync is: 3 events")
	assert.EqualValues(t, 20, r.Checkpoint)
	all := got
	for r.More {
		r, err = e.store.Read(ctx, &stream.SyncRequest{Stream: "s", LastKnownTick: r.T, Epoch: r.Epoch})
		require.NoError(t, err)
		all = append(all, Decode(t, r.Events)...)
	}
	assert.EqualValues(t, 9, r.T)
	assert.Equal(t, e.all("s", "a"), all, "the same events as a sync")

	st := e.stats()
	assert.Equal(t, 1, st.Clients, "a read is no client")
	assert.EqualValues(t, 5, st.PerStream[0].Events, "_a, _c and three moves: nothing appended")
}
