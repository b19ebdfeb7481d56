package stream_test

import (
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/goeventstream/eventstream/internal/redistest"
	"github.com/goeventstream/eventstream/internal/stream"
	"github.com/goeventstream/eventstream/internal/stream/streamtest"
)

// redisFactory makes stores on one redis-server, each test under its own
// key prefix.
func redisFactory(url string) streamtest.Factory {
	return func(t *testing.T, cfg stream.Config) stream.Store {
		s, err := stream.NewRedisStore(stream.RedisConfig{
			Config: cfg, URL: url, Prefix: "t" + uuid.NewString()[:8] + ":", Secret: "test-secret", Clock: cfg.Clock,
		})
		require.NoError(t, err)
		t.Cleanup(s.Close)
		return s
	}
}

func TestRedisStoreConformance(t *testing.T) {
	srv := redistest.Start(t)
	streamtest.Run(t, redisFactory(srv.URL()))
}
