package esclient

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestBackoffGrowsAndIsCapped(t *testing.T) {
	c, err := New(Config{BaseURL: "http://127.0.0.1:1", Stream: "s", PrivateID: "p",
		SyncInterval: 100 * time.Millisecond, MaxBackoff: 2 * time.Second})
	require.NoError(t, err)
	for failures := 1; failures <= 40; failures++ {
		ceiling := min(2*time.Second, 100*time.Millisecond<<min(failures, 30))
		var largest time.Duration
		for range 200 {
			d := c.backoff(failures)
			require.Positive(t, d)
			require.LessOrEqual(t, d, ceiling+time.Millisecond, "failure %d", failures)
			largest = max(largest, d)
		}
		// Full jitter spreads the waits over the whole range.
		assert.Greater(t, largest, ceiling/2, "failure %d", failures)
	}
}
