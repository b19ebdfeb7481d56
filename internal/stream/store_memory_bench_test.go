package stream_test

import (
	"context"
	"fmt"
	"math"
	"sync/atomic"
	"testing"
	"time"

	"github.com/goeventstream/eventstream/internal/clock"
	"github.com/goeventstream/eventstream/internal/stream"
	"github.com/goeventstream/eventstream/internal/stream/streamtest"
)

// benchStream returns a memory store holding one stream of about history
// events, four per tick, and the stream's tick in progress.
func benchStream(b testing.TB, history int) (*stream.MemoryStore, int64) {
	b.Helper()
	fake := clock.NewFake(streamtest.Start)
	cfg := benchConfig()
	cfg.Clock = fake
	cfg.MaxEventsPerStream = math.MaxInt
	cfg.MaxClientsPerStream = math.MaxInt
	cfg.ClientTimeout = time.Hour * 24 * 365
	store, err := stream.NewMemoryStore(cfg)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	events := streamtest.Moves("left", "right", "jump", `{"x":12,"y":-3}`)
	var t int64
	for n := 2; n < history; n += len(events) {
		res, err := store.Sync(ctx, &stream.SyncRequest{Stream: "s", PrivateID: "writer", LastKnownTick: t, Events: events})
		if err != nil {
			b.Fatal(err)
		}
		t = res.T
		fake.Advance(cfg.TickDuration())
	}
	return store, t + 1
}

// TestSyncAllocatesOnlyItsResult holds BenchmarkSync's allocations: the
// typical sync allocates its result and nothing else. (A tick whose
// address a rare branch took once moved to the heap on every sync.)
func TestSyncAllocatesOnlyItsResult(t *testing.T) {
	store, tick := benchStream(t, 100_000) // long enough for the store to want a snapshot
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

// BenchmarkSync measures the typical sync, a client fetching the last four
// ticks of events (16 events), as the stream's history grows: its cost must
// not grow with history.
func BenchmarkSync(b *testing.B) {
	for _, history := range []int{1_000, 100_000, 1_000_000} {
		b.Run(fmt.Sprintf("history=%s", count(history)), func(b *testing.B) {
			store, t := benchStream(b, history)
			// As the api does, the reply goes into a reused buffer.
			req := &stream.SyncRequest{Stream: "s", PrivateID: "reader", LastKnownTick: t - 4, Buf: make([]byte, 0, 4096)}
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				res, err := store.Sync(ctx, req)
				if err != nil {
					b.Fatal(err)
				}
				if len(res.Events) == 0 {
					b.Fatal("no events")
				}
			}
		})
	}
}

// BenchmarkSyncClients measures syncs of many clients of one stream at
// once, each posting one event in four syncs.
func BenchmarkSyncClients(b *testing.B) {
	for _, clients := range []int{10, 1000} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			store, t := benchStream(b, 1000)
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

func count(n int) string {
	switch {
	case n >= 1_000_000:
		return fmt.Sprintf("%dM", n/1_000_000)
	case n >= 1_000:
		return fmt.Sprintf("%dk", n/1_000)
	}
	return fmt.Sprint(n)
}

// BenchmarkSyncStreams measures syncs spread over many small streams (one
// client each), as on a server of many small games.
func BenchmarkSyncStreams(b *testing.B) {
	for _, streams := range []int{10, 100_000} {
		b.Run(fmt.Sprintf("streams=%s", count(streams)), func(b *testing.B) {
			cfg := benchConfig()
			cfg.Clock = clock.NewFake(streamtest.Start)
			store, err := stream.NewMemoryStore(cfg)
			if err != nil {
				b.Fatal(err)
			}
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

// benchConfig is the default configuration with the fair-use buckets so
// large that a benchmark on a clock that stands still is never refused;
// they are still filled and spent, as on a real server.
func benchConfig() stream.Config {
	cfg := stream.DefaultConfig()
	cfg.MaxSyncsPerSecond, cfg.MaxEventsPerSecond, cfg.EventBurst = 1e15, 1e15, math.MaxInt32
	return cfg
}
