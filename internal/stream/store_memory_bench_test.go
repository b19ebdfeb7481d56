package stream_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/goeventstream/eventstream/internal/clock"
	"github.com/goeventstream/eventstream/internal/stream"
	"github.com/goeventstream/eventstream/internal/stream/streamtest"
)

// TestSyncAllocatesOnlyItsResult holds BenchmarkSync's allocations: the
// typical sync allocates its result and nothing else. (A tick whose
// address a rare branch took once moved to the heap on every sync.)
func TestSyncAllocatesOnlyItsResult(t *testing.T) {
	store, tick := streamtest.BenchStream(t, memoryFactory, 100_000) // long enough for the store to want a snapshot
	req := &stream.SyncRequest{Stream: "s", PrivateID: "reader", LastKnownTick: tick - 4, Buf: make([]byte, 0, 4096)}
	ctx := context.Background()
	if _, err := store.Sync(ctx, req); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() {
		if _, err := store.Sync(ctx, req); err != nil {
			t.Fatal(err)
		}
	}); n > 1 {
		t.Errorf("a sync allocates %v times, want 1", n)
	}
}

// BenchmarkSync runs streamtest.BenchSync on the memory store.
func BenchmarkSync(b *testing.B) {
	streamtest.BenchSync(b, memoryFactory, 1_000, 100_000, 1_000_000)
}

// BenchmarkSyncClients measures syncs of many clients of one stream at
// once, each posting one event in four syncs.
func BenchmarkSyncClients(b *testing.B) {
	for _, clients := range []int{10, 1000} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			store, t := streamtest.BenchStream(b, memoryFactory, 1000)
			ctx := context.Background()
			ids := make([]string, clients)
			for i := range ids {
				ids[i] = fmt.Sprintf("client-%d", i)
			}
			b.ReportAllocs()
			b.ResetTimer()
			var goroutines atomic.Int64
			b.RunParallel(func(pb *testing.PB) {
				i := int(goroutines.Add(1)) * 7919
				for pb.Next() {
					i++
					req := &stream.SyncRequest{Stream: "s", PrivateID: ids[i%clients], LastKnownTick: t - 4}
					if i%4 == 0 {
						req.Events = streamtest.Moves("move")
					}
					if _, err := store.Sync(ctx, req); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

// BenchmarkSyncStreams measures syncs spread over many small streams (one
// client each), as on a server of many small games.
func BenchmarkSyncStreams(b *testing.B) {
	for _, streams := range []int{10, 100_000} {
		b.Run("streams="+streamtest.Count(streams), func(b *testing.B) {
			cfg := streamtest.BenchConfig()
			cfg.Clock = clock.NewFake(streamtest.Start)
			store := memoryFactory(b, cfg)
			ctx := context.Background()
			reqs := make([]*stream.SyncRequest, streams)
			for i := range reqs {
				reqs[i] = &stream.SyncRequest{Stream: fmt.Sprintf("game-%d", i), PrivateID: "player", LastKnownTick: 1}
				if _, err := store.Sync(ctx, reqs[i]); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			i := 0
			for b.Loop() {
				i = (i + 7919) % streams // a stride, so that neighbours are not hot in cache
				if _, err := store.Sync(ctx, reqs[i]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
