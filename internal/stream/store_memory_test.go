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

// TestMemoryWatch: the memory store tells where a stream's newest event
// is, and when it gains one (stream.Watcher): the tick of the last event
// added, whoever added it, a channel closed by the next event or the
// stream's end and not before, and the epoch of the stream ("" once it is
// gone).
func TestMemoryWatch(t *testing.T) {
	clk := clock.NewFake(streamtest.Start)
	cfg := stream.DefaultConfig()
	cfg.Clock = clk
	cfg.ClientTimeout = time.Second
	cfg.StreamTTL = time.Second
	st, err := stream.NewMemoryStore(cfg)
	require.NoError(t, err)
	ctx := context.Background()
	closed := func(ch <-chan struct{}) bool {
		select {
		case <-ch:
			return true
		default:
			return false
		}
	}

	ep, _, changed, ok := stream.WatchOf(st, "s")
	require.True(t, ok)
	require.Empty(t, ep, "no stream yet")
	require.Nil(t, changed)
	res, err := st.Sync(ctx, &stream.SyncRequest{Stream: "s", PrivateID: "alice"})
	require.NoError(t, err)
	ep, newest, changed, _ := stream.WatchOf(st, "s")
	require.Equal(t, res.Epoch, ep)
	require.LessOrEqual(t, newest, int64(1), "_a at tick 0, and alice's _c")

	clk.Advance(500 * time.Millisecond)
	_, err = st.Sync(ctx, &stream.SyncRequest{Stream: "s", PrivateID: "alice", Epoch: res.Epoch})
	require.NoError(t, err)
	require.False(t, closed(changed), "a sync that adds no event")
	moved, err := st.Sync(ctx, &stream.SyncRequest{Stream: "s", PrivateID: "alice", Epoch: res.Epoch,
		Events: []stream.Event{{Type: "move", Body: []byte(`"x"`)}}})
	require.NoError(t, err)
	require.True(t, closed(changed), "a client's event")
	_, newest, changed, _ = stream.WatchOf(st, "s")
	require.Equal(t, moved.T, newest, "at the tick in progress")
	require.False(t, closed(changed), "a new channel for the next")

	clk.Advance(2 * time.Second)
	_, err = st.Sweep(ctx)
	require.NoError(t, err)
	require.True(t, closed(changed), "the sweep's _d")
	ep, _, changed, _ = stream.WatchOf(st, "s")
	require.NotEmpty(t, ep, "the stream lives on for its TTL")
	clk.Advance(5 * time.Second)
	_, err = st.Sweep(ctx)
	require.NoError(t, err)
	require.True(t, closed(changed), "the stream's end")
	ep, _, _, _ = stream.WatchOf(st, "s")
	require.Empty(t, ep, "the stream expired")
}
