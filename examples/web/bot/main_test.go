package main

import (
	"context"
	"io"
	"net/http"
	"path/filepath"
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

var (
	checkpointLine = regexp.MustCompile(`^checkpoint (\d+) ([0-9a-f]{64})$`)
	idLine         = regexp.MustCompile(`^public id (\d+)$`)
)

// TestBotsAgree plays two bots in one stream, the second joining later:
// they report the same hash for every checkpoint both reach, the server
// finds no desync, and a bot started again with its id file is the same
// player.
func TestBotsAgree(t *testing.T) {
	if testing.Short() {
		t.Skip("plays for seconds of real time; skipped with -short")
	}
	srv, _ := apitest.NewServer(t, stream.DefaultConfig(), nil)
	idFile := filepath.Join(t.TempDir(), "bot-id")

	var outs [3]apitest.Output
	var wg sync.WaitGroup
	for i, give := range []struct {
		delay, duration time.Duration
	}{{0, 4 * time.Second}, {time.Second, 3 * time.Second}, {0, 0}} {
		if i == 2 { // the first bot again, once it has stopped
			wg.Wait()
			give.duration = 2 * time.Second
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(give.delay) // the second bot joins a game in progress
			args := []string{"-url", srv.URL, "-stream", "demo", "-duration", give.duration.String()}
			if i != 1 {
				args = append(args, "-id-file", idFile)
			}
			assert.NoError(t, run(context.Background(), args, &outs[i]))
		}()
	}
	wg.Wait()

	hashes := map[string]string{} // tick → hash
	var ids [3]string
	common := 0
	for i := range outs {
		for _, l := range strings.Split(strings.TrimSpace(outs[i].String()), "\n") {
			if m := idLine.FindStringSubmatch(l); m != nil {
				ids[i] = m[1]
				continue
			}
			m := checkpointLine.FindStringSubmatch(l)
			require.NotNil(t, m, "bot %d printed %q", i, l)
			if want, ok := hashes[m[1]]; ok {
				common++
				assert.Equal(t, want, m[2], "checkpoint %s", m[1])
			} else {
				hashes[m[1]] = m[2]
			}
		}
	}
	assert.Greater(t, common, 3, "the bots reported the same checkpoints")
	assert.NotEqual(t, ids[0], ids[1])
	assert.Equal(t, ids[0], ids[2], "the bot started again with its id file is the same player")

	resp, err := http.Get(srv.URL + "/demo/desyncs")
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	assert.JSONEq(t, `{"desyncs":[]}`, string(body))
}
