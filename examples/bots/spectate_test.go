package main

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/goeventstream/eventstream/internal/apitest"
	"github.com/goeventstream/eventstream/pkg/esclient"
)

var (
	anyHashLine     = regexp.MustCompile(`^(player|spectator) (\d+) id=(\d*) tick=(\d+) checkpoint hash=([0-9a-f]{64})$`)
	loadedSpectator = regexp.MustCompile(`^spectator (\d+) id= tick=\d+ loaded the verified snapshot of tick \d+$`)
)

// TestSpectatorsEndToEnd: on the real binary, two players play the game
// while spectators watch it: two from its start (one pushed to, one
// polling) and two that come once its start is compacted, from the
// snapshot. Every spectator prints the players' hash for every tick it
// shares with them, with no public id, and none appears in the stream:
// the server counts the two players and no other client, and the stream's
// events name nobody else.
func TestSpectatorsEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("plays for seconds of real time; skipped with -short")
	}
	url := apitest.StartBinary(t, nil, "-snapshot-every", "10", "-history-retain", "1s").URL()

	var outs [2]apitest.Output
	var wg sync.WaitGroup
	for i, args := range [][]string{
		{"-n", "2", "-spectators", "2", "-duration", "8s"},
		{"-n", "0", "-spectators", "2", "-duration", "2500ms"}, // after 5 s: the start is compacted
	} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i == 1 {
				time.Sleep(5 * time.Second)
			}
			assert.NoError(t, run(context.Background(), append([]string{"-url", url, "-stream", "watched"}, args...), &outs[i]))
		}()
	}
	time.Sleep(6500 * time.Millisecond) // every one is playing or watching
	metrics := string(get(t, url+"/metrics"))
	assert.Contains(t, metrics, "\neventstreamd_store_clients_connected 2\n", "the server counts the two players and nobody else")
	// A spectator of each run is pushed to, unless a loaded machine made
	// it fall back to polling for a while: counted, it is one of those.
	conns := regexp.MustCompile(`\neventstreamd_spectator_connections (\d+)\n`).FindStringSubmatch(metrics)
	require.NotNil(t, conns, "the spectators' gauge")
	assert.Contains(t, []string{"0", "1", "2"}, conns[1], "more spectators' connections than spectators pushed to")
	assert.NotContains(t, metrics, "\neventstreamd_spectator_polls_total 0\n", "the polling spectators' polls")
	wg.Wait()

	players := map[string]string{}      // tick -> hash
	spectators := map[string][]string{} // run/spectator/tick -> hashes
	loaded := map[string]bool{}         // run/spectator that started from the snapshot
	for run := range outs {
		for _, l := range strings.Split(strings.TrimSpace(outs[run].String()), "\n") {
			if m := loadedSpectator.FindStringSubmatch(l); m != nil {
				loaded[fmt.Sprintf("%d/%s", run, m[1])] = true
			}
			m := anyHashLine.FindStringSubmatch(l)
			if m == nil {
				continue
			}
			if m[1] == "player" {
				assert.Contains(t, []string{"1", "2"}, m[3], l)
				if prev, ok := players[m[4]]; ok {
					require.Equal(t, prev, m[5], "the players disagree at tick %s", m[4])
				}
				players[m[4]] = m[5]
				continue
			}
			assert.Empty(t, m[3], "a spectator with a public id: %s", l)
			key := fmt.Sprintf("%d/%s/%s", run, m[2], m[4])
			spectators[key] = append(spectators[key], m[5])
		}
	}
	compared := map[string]int{}
	for key, hashes := range spectators {
		who := key[:strings.LastIndex(key, "/")]
		want, ok := players[key[len(who)+1:]]
		if !ok {
			continue
		}
		for _, h := range hashes {
			require.Equal(t, want, h, "spectator %s diverged at tick %s", who, key[len(who)+1:])
		}
		compared[who]++
	}
	for _, who := range []string{"0/1", "0/2", "1/1", "1/2"} {
		assert.Greater(t, compared[who], 1, "spectator %s (run/spectator) shared ticks with the players: %v", who, compared)
	}
	assert.True(t, loaded["1/1"] && loaded["1/2"], "the late spectators started from the snapshot: %v\n%s", loaded, outs[1].String())

	// What the stream retains names the two players only.
	reader, err := esclient.New(esclient.Config{BaseURL: url, Stream: "watched", Spectate: true, Transport: esclient.Poll})
	require.NoError(t, err)
	for {
		u, err := reader.Sync(context.Background())
		require.NoError(t, err)
		for _, e := range u.Events {
			assert.Contains(t, []string{esclient.ServerOrigin, "1", "2"}, e.Origin, "%v", e)
			if e.Type == esclient.TypeConnect || e.Type == esclient.TypeDisconnect {
				assert.Contains(t, []string{"1", "2"}, e.Body, "%v", e)
			}
		}
		if !u.More {
			break
		}
	}
}
