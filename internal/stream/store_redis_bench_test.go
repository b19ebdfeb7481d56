package stream_test

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/goeventstream/eventstream/internal/clock"
	"github.com/goeventstream/eventstream/internal/redistest"
	"github.com/goeventstream/eventstream/internal/stream"
	"github.com/goeventstream/eventstream/internal/stream/streamtest"
)

// BenchmarkRedisSync measures the typical sync on the Redis store, a
// client fetching the last four ticks of events (16 events), one round
// trip to a local redis-server.
func BenchmarkRedisSync(b *testing.B) {
	srv := redistest.Start(b)
	fake := clock.NewFake(streamtest.Start)
	cfg := benchConfig()
	cfg.Clock = fake
	cfg.MaxEventsPerStream = math.MaxInt32
	cfg.MaxClientsPerStream = math.MaxInt32
	cfg.ClientTimeout = time.Hour * 24 * 365
	store := newBenchRedisStore(b, cfg, srv.URL())
	ctx := context.Background()
	events := streamtest.Moves("left", "right", "jump", `{"x":12,"y":-3}`)
	var t int64
	for range 250 {
		res, err := store.Sync(ctx, &stream.SyncRequest{Stream: "s", PrivateID: "writer", LastKnownTick: t, Events: events})
		if err != nil {
			b.Fatal(err)
		}
		t = res.T
		fake.Advance(cfg.TickDuration())
	}
	t++
	req := &stream.SyncRequest{Stream: "s", PrivateID: "reader", LastKnownTick: t - 4, Buf: make([]byte, 0, 4096)}
	b.ReportAllocs()
	for b.Loop() {
		res, err := store.Sync(ctx, req)
		if err != nil {
			b.Fatal(err)
		}
		if len(res.Events) == 0 {
			b.Fatal("no events")
		}
	}
}

func newBenchRedisStore(b *testing.B, cfg stream.Config, url string) stream.Store {
	s, err := stream.NewRedisStore(testRedisConfig(url, cfg))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(s.Close)
	return s
}
