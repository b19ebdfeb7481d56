package esclient_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/goeventstream/eventstream/internal/stream"
	"github.com/goeventstream/eventstream/pkg/esclient"
)

// TestCheckpointsRoundTrip: hash reports reach the server, a snapshot is
// asked for, uploaded and served back verified, and a client joining the
// compacted stream is told where it starts.
func TestCheckpointsRoundTrip(t *testing.T) {
	srv := newServer(t, func(c *stream.Config) { c.SnapshotEvery = 1; c.HistoryRetain = time.Second })
	ctx := context.Background()
	a, b := newClient(t, srv.URL, "a-secret"), newClient(t, srv.URL, "b-secret")
	_, err := a.Snapshot(ctx)
	require.ErrorIs(t, err, esclient.ErrNoSnapshot)
	for _, c := range []*esclient.Client{a, b} {
		require.NoError(t, c.Send("move", "x"))
		u, err := c.Sync(ctx)
		require.NoError(t, err)
		assert.EqualValues(t, 20, u.CheckpointEvery)
	}
	srv.clock.Advance(time.Second + 50*time.Millisecond) // tick 22
	for _, c := range []*esclient.Client{a, b} {
		_, err := c.Sync(ctx) // both have tick 20 now
		require.NoError(t, err)
	}
	state := []byte("state at 20")
	a.ReportHash(20, esclient.HashOf(state))
	a.ReportHash(40, "ab") // not sealed for a yet: waits
	b.ReportHash(20, esclient.HashOf(state))
	_, err = a.Sync(ctx)
	require.NoError(t, err)
	u, err := b.Sync(ctx)
	require.NoError(t, err)
	require.NotNil(t, u.Snap, "judged: b is asked for its snapshot")
	assert.EqualValues(t, 20, *u.Snap)

	var mismatch *esclient.Error
	_, err = b.PutSnapshot(ctx, 20, []byte("another state"))
	require.ErrorAs(t, err, &mismatch)
	assert.Equal(t, "snapshot_mismatch", mismatch.Code)
	stored, err := b.PutSnapshot(ctx, 20, state)
	require.NoError(t, err)
	assert.True(t, stored)
	snap, err := a.Snapshot(ctx)
	require.NoError(t, err)
	assert.Equal(t, int64(20), snap.T)
	assert.Equal(t, state, snap.Data)
	assert.Equal(t, a.Epoch(), snap.Epoch)

	srv.clock.Advance(2 * time.Second)
	_, err = a.Sync(ctx) // compacts
	require.NoError(t, err)
	late := newClient(t, srv.URL, "late-secret")
	u, err = late.Sync(ctx)
	require.NoError(t, err)
	require.NotNil(t, u.Base)
	assert.EqualValues(t, 20, *u.Base)
	assert.False(t, u.Reset, "the events start after the snapshot, not at _a")
	for _, e := range u.Events {
		assert.Greater(t, e.T, int64(20))
	}
}

// TestSnapshotChecksTheHash: bytes that do not hash to the hash the
// server verified are refused.
func TestSnapshotChecksTheHash(t *testing.T) {
	srv := newServer(t, func(c *stream.Config) { c.SnapshotEvery = 1 })
	ctx := context.Background()
	a := newClient(t, srv.URL, "a-secret")
	_, err := a.Sync(ctx)
	require.NoError(t, err)
	srv.clock.Advance(time.Second + 50*time.Millisecond)
	_, err = a.Sync(ctx)
	require.NoError(t, err)
	a.ReportHash(20, esclient.HashOf([]byte("s")))
	_, err = a.Sync(ctx)
	require.NoError(t, err)
	_, err = a.PutSnapshot(ctx, 20, []byte("s"))
	require.NoError(t, err)

	tamper := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		srv.handler.ServeHTTP(rec, r)
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = io.Copy(w, bytes.NewReader(bytes.ToUpper(rec.Body.Bytes())))
	}))
	t.Cleanup(tamper.Close)
	_, err = newClient(t, tamper.URL, "b-secret").Snapshot(ctx)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "does not have its hash")
}

func TestParseDesync(t *testing.T) {
	tick, ids, err := esclient.ParseDesync(`{"t":120,"ids":["3","7"]}`)
	require.NoError(t, err)
	assert.Equal(t, int64(120), tick)
	assert.Equal(t, []string{"3", "7"}, ids)
	_, _, err = esclient.ParseDesync(`nope`)
	assert.Error(t, err)
	assert.False(t, errors.Is(err, esclient.ErrNoSnapshot))
}

// TestLastCheckpoint: a client learns a checkpoint's canonical hash from
// the server's snapshot, the one it uploaded and the server stored or the
// one it fetched, and from nothing else; a new epoch forgets it.
func TestLastCheckpoint(t *testing.T) {
	srv := newServer(t, func(c *stream.Config) { c.SnapshotEvery = 1 })
	ctx := context.Background()
	a, b := newClient(t, srv.URL, "a-secret"), newClient(t, srv.URL, "b-secret")
	none := func(c *esclient.Client, msg string) {
		t.Helper()
		_, ok := c.LastCheckpoint()
		assert.False(t, ok, msg)
	}
	// judge has a and b report state for checkpoint ck, once it is sealed,
	// and returns the one the server asks for its snapshot.
	judge := func(ck int64, state []byte) (asked, other *esclient.Client) {
		t.Helper()
		for _, c := range []*esclient.Client{a, b} {
			require.NoError(t, c.Send("move", "x")) // events since the last snapshot: one is asked for
			_, err := c.Sync(ctx)
			require.NoError(t, err)
		}
		srv.clock.Advance(time.Second) // ck+2: sealed
		for _, c := range []*esclient.Client{a, b} {
			_, err := c.Sync(ctx)
			require.NoError(t, err)
			c.ReportHash(ck, esclient.HashOf(state))
		}
		for _, c := range []*esclient.Client{a, b} {
			u, err := c.Sync(ctx)
			require.NoError(t, err)
			if u.Snap != nil && *u.Snap == ck {
				asked = c
			}
		}
		require.NotNil(t, asked, "nobody was asked for the snapshot of %d", ck)
		if asked == a {
			return a, b
		}
		return b, a
	}

	none(a, "before any checkpoint")
	_, err := a.Sync(ctx)
	require.NoError(t, err)
	srv.clock.Advance(50 * time.Millisecond)
	state := []byte("state at 20")
	asked, other := judge(20, state)
	none(asked, "judged: the server asks for the snapshot, but says no hash")
	none(other, "judged: the server says nothing to the other")
	_, err = asked.PutSnapshot(ctx, 20, []byte("another state"))
	require.Error(t, err)
	none(asked, "a snapshot the server refused")
	stored, err := asked.PutSnapshot(ctx, 20, state)
	require.NoError(t, err)
	require.True(t, stored)
	want := esclient.Checkpoint{T: 20, Hash: esclient.HashOf(state), Epoch: asked.Epoch()}
	got, ok := asked.LastCheckpoint()
	assert.True(t, ok)
	assert.Equal(t, want, got, "the snapshot it uploaded, stored")
	none(other, "the other did not fetch the snapshot")
	_, err = other.Snapshot(ctx)
	require.NoError(t, err)
	got, _ = other.LastCheckpoint()
	assert.Equal(t, want, got, "the snapshot it fetched")

	state = []byte("state at 40")
	asked, other = judge(40, state)
	stored, err = asked.PutSnapshot(ctx, 40, state)
	require.NoError(t, err)
	require.True(t, stored)
	want = esclient.Checkpoint{T: 40, Hash: esclient.HashOf(state), Epoch: asked.Epoch()}
	got, _ = asked.LastCheckpoint()
	assert.Equal(t, want, got)
	got, _ = other.LastCheckpoint()
	assert.EqualValues(t, 20, got.T, "until it fetches the stream's snapshot")
	_, err = other.Snapshot(ctx)
	require.NoError(t, err)
	got, _ = other.LastCheckpoint()
	assert.Equal(t, want, got)

	srv.expire(t)
	u, err := a.Sync(ctx)
	require.NoError(t, err)
	require.True(t, u.Reset)
	none(a, "a checkpoint of the epoch that ended")
}
