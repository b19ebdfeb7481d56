package stream_test

import (
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/goeventstream/eventstream/internal/stream"
	"github.com/goeventstream/eventstream/internal/stream/streamtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestMemoryStoreConformance(t *testing.T) {
	streamtest.Run(t, func(t *testing.T, cfg stream.Config) stream.Store {
		s, err := stream.NewMemoryStore(cfg)
		require.NoError(t, err)
		return s
	})
}
