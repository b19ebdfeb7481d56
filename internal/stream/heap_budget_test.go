package stream_test

import (
	"context"
	"fmt"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/goeventstream/eventstream/internal/clock"
	"github.com/goeventstream/eventstream/internal/stream"
	"github.com/goeventstream/eventstream/internal/stream/streamtest"
)

// heapAfter returns the live heap after fn, less the live heap before it.
func heapAfter(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	fn()
	runtime.GC()
	runtime.ReadMemStats(&after)
	return after.HeapAlloc - before.HeapAlloc
}

// TestMemoryPerEvent checks the budget: the heap a stored event costs is
// at most twice its encoded JSON.
func TestMemoryPerEvent(t *testing.T) {
	if testing.Short() {
		t.Skip("stores 200k events; skipped with -short")
	}
	cfg := stream.DefaultConfig()
	fake := clock.NewFake(streamtest.Start)
	cfg.Clock = fake
	store, err := stream.NewMemoryStore(cfg)
	require.NoError(t, err)
	ctx := context.Background()
	const n = 200_000
	events := streamtest.Moves("left", "right", "jump", `{"x":12,"y":-3}`)
	var encoded int
	heap := heapAfter(func() {
		var from int64
		for i := 0; i < n; i += len(events) {
			res, err := store.Sync(ctx, &stream.SyncRequest{Stream: "s", PrivateID: "p", LastKnownTick: from, Events: events})
			require.NoError(t, err)
			from = res.T
			fake.Advance(cfg.TickDuration())
		}
	})
	fake.Advance(cfg.TickDuration())
	res, err := store.Sync(ctx, &stream.SyncRequest{Stream: "s", PrivateID: "p"})
	require.NoError(t, err)
	for res.More {
		encoded += len(res.Events)
		res, err = store.Sync(ctx, &stream.SyncRequest{Stream: "s", PrivateID: "p", LastKnownTick: res.T})
		require.NoError(t, err)
	}
	encoded += len(res.Events)
	perEvent, jsonPerEvent := float64(heap)/n, float64(encoded)/n
	t.Logf("heap per event %.1f bytes, JSON per event %.1f bytes: %.2f×", perEvent, jsonPerEvent, perEvent/jsonPerEvent)
	assert.LessOrEqual(t, perEvent, 2*jsonPerEvent)
	runtime.KeepAlive(store)
}

// TestMemoryIdleStream checks the budget: an idle stream with 10 connected
// clients costs at most 8 KiB.
func TestMemoryIdleStream(t *testing.T) {
	cfg := stream.DefaultConfig()
	cfg.Clock = clock.NewFake(streamtest.Start)
	store, err := stream.NewMemoryStore(cfg)
	require.NoError(t, err)
	ctx := context.Background()
	const streams = 1000
	heap := heapAfter(func() {
		for s := range streams {
			for c := range 10 {
				_, err := store.Sync(ctx, &stream.SyncRequest{
					Stream:    fmt.Sprintf("game-%04d", s),
					PrivateID: fmt.Sprintf("4c1b2f3e-7d0a-4a8e-9b6c-%012d", c),
				})
				require.NoError(t, err)
			}
		}
	})
	perStream := float64(heap) / streams
	t.Logf("an idle stream with 10 clients: %.0f bytes", perStream)
	assert.LessOrEqual(t, perStream, 8192.0)
	runtime.KeepAlive(store)
}
