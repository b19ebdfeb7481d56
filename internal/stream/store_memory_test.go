package stream_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/goeventstream/eventstream/internal/clock"
	"github.com/goeventstream/eventstream/internal/stream"
	"github.com/goeventstream/eventstream/internal/stream/streamtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// memoryFactory is the memory store's streamtest.Factory.
func memoryFactory(t testing.TB, cfg stream.Config) stream.Store {
	s, err := stream.NewMemoryStore(cfg)
	require.NoError(t, err)
	return s
}

func TestMemoryStoreConformance(t *testing.T) {
	streamtest.Run(t, memoryFactory)
}

// TestMemoryStoreLongLife runs a stream for 24 hours of stream time at
// 100 events a second (8.6M events) on the fake clock.
func TestMemoryStoreLongLife(t *testing.T) {
	d := 24 * time.Hour
	if testing.Short() {
		d = time.Hour
	}
	streamtest.LongLife(t, memoryFactory, d)
}

// TestMemoryNewest: the memory store tells where a stream's newest event
// is (stream.Watcher): the tick of the last event added, whoever added
// it, and the epoch of the stream it is in ("" once it is gone).
func TestMemoryNewest(t *testing.T) {
	clk := clock.NewFake(streamtest.Start)
	cfg := stream.DefaultConfig()
	cfg.Clock = clk
	cfg.ClientTimeout = time.Second
	cfg.StreamTTL = time.Second
	st, err := stream.NewMemoryStore(cfg)
	require.NoError(t, err)
	ctx := context.Background()

	ep, newest, ok := stream.NewestOf(st, "s")
	require.True(t, ok)
	require.Empty(t, ep, "no stream yet")
	require.Zero(t, newest)
	res, err := st.Sync(ctx, &stream.SyncRequest{Stream: "s", PrivateID: "alice"})
	require.NoError(t, err)
	ep, newest, _ = stream.NewestOf(st, "s")
	require.Equal(t, res.Epoch, ep)
	require.LessOrEqual(t, newest, int64(1), "_a at tick 0, and alice's _c")

	clk.Advance(500 * time.Millisecond)
	moved, err := st.Sync(ctx, &stream.SyncRequest{Stream: "s", PrivateID: "alice", Epoch: res.Epoch,
		Events: []stream.Event{{Type: "move", Body: []byte(`"x"`)}}})
	require.NoError(t, err)
	_, newest, _ = stream.NewestOf(st, "s")
	require.Equal(t, moved.T, newest, "a client's event, at the tick in progress")

	clk.Advance(2 * time.Second)
	_, err = st.Sweep(ctx)
	require.NoError(t, err)
	if ep, newest, _ = stream.NewestOf(st, "s"); ep != "" {
		require.Greater(t, newest, moved.T, "the sweep's _d")
	}
	clk.Advance(5 * time.Second)
	_, err = st.Sweep(ctx)
	require.NoError(t, err)
	ep, _, _ = stream.NewestOf(st, "s")
	require.Empty(t, ep, "the stream expired")
}
