package streamtest

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/goeventstream/eventstream/internal/protocol"
	"github.com/goeventstream/eventstream/internal/stream"
)

// runAdmission adds the tests of who may judge, upload and join (the
// attacks of issue 17) to Run.
func runAdmission(t *testing.T, newStore Factory) {
	t.Run("FreshIDsCannotJudge", func(t *testing.T) { testFreshIDsCannotJudge(t, newStore) })
	t.Run("LateReportsKeepVerdicts", func(t *testing.T) { testLateReportsKeepVerdicts(t, newStore) })
	t.Run("UploadRefusals", func(t *testing.T) { testUploadRefusals(t, newStore) })
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
	forged := []byte("the attacker's state")
	for _, x := range []string{"x", "y", "z"} {
		r := e.report("s", x, 0, 20, sha256Hex(forged))
		assert.Zero(t, r.Judged, "%s joined at 21: its report of 20 is ignored", x)
		assert.Nil(t, r.Snap)
	}
	e.report("s", "a", 21, 20, st.hash())
	r := e.report("s", "b", 21, 20, st.hash())
	assert.Equal(t, 1, r.Judged, "judged once both voters reported")
	assert.Zero(t, r.Diverged)
	require.NotNil(t, r.Snap, "b agreed: it is asked for the snapshot")

	for _, x := range []string{"x", "y", "z"} {
		before := e.view("s")
		_, _, err := e.store.PutSnapshot(ctx, &stream.Upload{Stream: "s", PrivateID: x, T: 20, Data: forged})
		require.ErrorIs(t, err, stream.ErrForbidden)
		_, _, err = e.store.PutSnapshot(ctx, &stream.Upload{Stream: "s", PrivateID: x, T: 20, Data: st.bytes()})
		require.ErrorIs(t, err, stream.ErrForbidden, "not even the right one: %s was not asked", x)
		assert.Equal(t, before, e.view("s"), "a refused upload changes nothing")
	}
	e.at(30)
	assert.Empty(t, e.desyncs("s"), "nobody was named")
	_, stored, err := e.store.PutSnapshot(ctx, &stream.Upload{Stream: "s", PrivateID: "b", T: 20, Data: st.bytes()})
	require.NoError(t, err)
	assert.True(t, stored)
	snap, err := e.store.Snapshot(ctx, "s")
	require.NoError(t, err)
	assert.Equal(t, st.bytes(), snap.Data, "the players' state")

	// Present at the next checkpoint, three are a majority of five: the
	// trust model's limit, which the join rates keep from coming in seconds.
	e.at(41)
	for _, x := range []string{"x", "y", "z"} {
		e.report("s", x, 41, 40, "ee")
	}
	e.report("s", "a", 41, 40, "aa")
	e.report("s", "b", 41, 40, "aa")
	e.at(81) // judged 2 s after it was sealed: the reader that read the desyncs at 30 is a voter too, silent
	r = e.poll("s", "a", 81)
	assert.Equal(t, 1, r.Judged)
	assert.Equal(t, 2, r.Diverged, "a majority of the players present decides")
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
