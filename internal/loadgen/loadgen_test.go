package loadgen_test

import (
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/goeventstream/eventstream/internal/loadgen"
)

func TestBodyCarriesItsSendTime(t *testing.T) {
	before := time.Now().UnixNano()
	b := loadgen.Body(7, 3, 64)
	assert.Len(t, b, 64)
	assert.Regexp(t, `^c7\.3\.[0-9]+\.+$`, b)
	ns, ok := loadgen.SentAt(b)
	require.True(t, ok)
	assert.GreaterOrEqual(t, ns, before)
	assert.LessOrEqual(t, ns, time.Now().UnixNano())

	for _, give := range []string{"", "c1", "c1.2", "c1.2.x."} {
		_, ok := loadgen.SentAt(give)
		assert.False(t, ok, give)
	}
}

func TestProcessCPUCountsThisProcess(t *testing.T) {
	before, err := loadgen.ProcessCPU(os.Getpid())
	require.NoError(t, err)
	own := loadgen.OwnCPU()
	for deadline := time.Now().Add(5 * time.Second); loadgen.OwnCPU()-own < 100*time.Millisecond && time.Now().Before(deadline); {
	}
	after, err := loadgen.ProcessCPU(os.Getpid())
	require.NoError(t, err)
	// /proc counts to 10 ms: the 100 ms spun shows as at least 80.
	assert.GreaterOrEqual(t, after-before, 80*time.Millisecond)

	_, err = loadgen.ProcessCPU(1 << 30)
	assert.Error(t, err)
}

func TestCheckOnce(t *testing.T) {
	sent := map[string]int{"c0": 2, "c1": 1}
	tests := []struct {
		name  string
		give  map[string]int
		wantN int
	}{
		{"each once", map[string]int{"c0.0": 1, "c0.1": 1, "c1.0": 1}, 0},
		{"twice", map[string]int{"c0.0": 2}, 1},
		{"never sent", map[string]int{"c1.1": 1}, 1},
		{"unknown client", map[string]int{"c9.0": 1}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var v loadgen.Verification
			v.CheckOnce("stream 0", tt.give, sent)
			assert.Len(t, v.Problems, tt.wantN, v.Problems)
		})
	}
	assert.Equal(t, "c3.14", loadgen.EventID(loadgen.Body(3, 14, 64)))
}
