package main

import (
	"context"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/goeventstream/eventstream/internal/apitest"
	"github.com/goeventstream/eventstream/internal/stream"
)

var line = regexp.MustCompile(`^player \d+ id=\d+ tick=(\d+) checkpoint hash=([0-9a-f]{64})$`)

// TestTwoRunsAgree plays two runs of the example on one stream, the second
// joining later, and checks they print the same hash for the same tick.
func TestTwoRunsAgree(t *testing.T) {
	if testing.Short() {
		t.Skip("plays for seconds of real time; skipped with -short")
	}
	srv, _ := apitest.NewServer(t, stream.DefaultConfig(), nil)

	var outs [2]apitest.Output
	var wg sync.WaitGroup
	for i, delay := range []time.Duration{0, time.Second} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(delay) // the second run joins a game in progress
			err := run(context.Background(), []string{"-url", srv.URL, "-stream", "demo", "-n", "2", "-duration", "3s"}, &outs[i])
			assert.NoError(t, err)
		}()
	}
	wg.Wait()

	hashes := map[string]string{} // tick → hash
	common := 0
	for i := range outs {
		lines := strings.Split(strings.TrimSpace(outs[i].String()), "\n")
		require.NotEmpty(t, lines)
		for _, l := range lines {
			m := line.FindStringSubmatch(l)
			require.NotNil(t, m, "unexpected output %q", l)
			if want, ok := hashes[m[1]]; ok {
				common++
				assert.Equal(t, want, m[2], "tick %s: %q", m[1], l)
			} else {
				hashes[m[1]] = m[2]
			}
		}
	}
	assert.Greater(t, common, 4, "the runs printed hashes for the same ticks")
}
