package streamtest

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/goeventstream/eventstream/internal/clock"
	"github.com/goeventstream/eventstream/internal/stream"
)

// BenchConfig is the default configuration with the fair-use buckets so
// large that a benchmark on a clock that stands still is never refused
// (they are still filled and spent, as on a real server), and the caps a
// long stream would reach lifted.
func BenchConfig() stream.Config {
	cfg := stream.DefaultConfig()
	cfg.MaxSyncsPerSecond, cfg.MaxEventsPerSecond, cfg.EventBurst = 1e15, 1e15, math.MaxInt32
	cfg.MaxEventsPerStream = math.MaxInt32 // within the Redis scripts' numbers
	cfg.MaxClientsPerStream = math.MaxInt32
	cfg.ClientTimeout = 24 * 365 * time.Hour
	return cfg
}

// BenchStream returns a store of newStore, configured with BenchConfig on
// a fake clock, holding one stream, "s", of about history events, four
// per tick, and the stream's tick in progress.
func BenchStream(tb testing.TB, newStore Factory, history int) (stream.Store, int64) {
	tb.Helper()
	fake := clock.NewFake(Start)
	cfg := BenchConfig()
	cfg.Clock = fake
	store := newStore(tb, cfg)
	ctx := context.Background()
	events := Moves("left", "right", "jump", `{"x":12,"y":-3}`)
	var t int64
	for n := 2; n < history; n += len(events) { // after "_a" and "_c"
		res, err := store.Sync(ctx, &stream.SyncRequest{Stream: "s", PrivateID: "writer", LastKnownTick: t, Events: events})
		if err != nil {
			tb.Fatal(err)
		}
		t = res.T
		fake.Advance(cfg.TickDuration())
	}
	return store, t + 1
}

// BenchSync measures the typical sync, a client fetching the last four
// ticks of events (16 events), on a stream of each history, in
// sub-benchmarks history=<n>: its cost must not grow with history. Each
// store runs it from its own BenchmarkSync, as it runs Run.
func BenchSync(b *testing.B, newStore Factory, histories ...int) {
	for _, history := range histories {
		b.Run("history="+Count(history), func(b *testing.B) {
			store, t := BenchStream(b, newStore, history)
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

// Count writes n as a benchmark's name gives a size: 1k, 100k, 1M.
func Count(n int) string {
	switch {
	case n >= 1_000_000 && n%1_000_000 == 0:
		return fmt.Sprintf("%dM", n/1_000_000)
	case n >= 1_000 && n%1_000 == 0:
		return fmt.Sprintf("%dk", n/1_000)
	}
	return fmt.Sprint(n)
}
