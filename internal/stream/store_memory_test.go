package stream_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

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
