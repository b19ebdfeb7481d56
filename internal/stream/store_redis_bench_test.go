package stream_test

import (
	"testing"

	"github.com/goeventstream/eventstream/internal/redistest"
	"github.com/goeventstream/eventstream/internal/stream/streamtest"
)

// BenchmarkRedisSync runs streamtest.BenchSync on the Redis store: one
// round trip to a local redis-server a sync.
func BenchmarkRedisSync(b *testing.B) {
	srv := redistest.Start(b)
	streamtest.BenchSync(b, redisFactory(srv.URL()), 1_000)
}
