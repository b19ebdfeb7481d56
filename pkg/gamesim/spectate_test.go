package gamesim_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/goeventstream/eventstream/pkg/esclient"
	"github.com/goeventstream/eventstream/pkg/gamesim"
)

// TestSpectatorDriver: spectators' Drivers, one polling and one pushed to,
// watch two players play the arena and reach the players' state at every
// tick they all processed, while they never appear in the stream and
// cannot send.
func TestSpectatorDriver(t *testing.T) {
	if testing.Short() {
		t.Skip("plays for a second or two of real time; skipped with -short")
	}
	url := realServer(t, 2*time.Second)
	players := []*livePlayer{
		startLivePlayer(t, url, "alice", "alice-secret", 1),
		startLivePlayer(t, url, "bob", "bob-secret", 2),
	}
	var watchers []*gamesim.Driver
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 2)
	for _, transport := range []esclient.Transport{esclient.Poll, esclient.Push} {
		httpc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{}}
		t.Cleanup(httpc.CloseIdleConnections)
		c, err := esclient.New(esclient.Config{BaseURL: url, Stream: "arena", Spectate: true, Transport: transport, HTTPClient: httpc})
		require.NoError(t, err)
		d := gamesim.New(c, &arena{}, gamesim.Config{RecordHashes: 1 << 20})
		watchers = append(watchers, d)
		go func() { done <- d.Run(ctx) }()
	}
	time.Sleep(1500 * time.Millisecond) // lets the game run; nothing is timed by it
	for _, d := range watchers {
		assert.ErrorIs(t, d.SendEvent("move", "4"), esclient.ErrSpectator)
		assert.Empty(t, d.PublicID())
	}
	for _, p := range players {
		p.stop()
	}
	cancel()
	for range watchers {
		require.ErrorIs(t, <-done, context.Canceled)
	}

	// The whole stream, read by a spectator too: the players' _c, and
	// nobody else's.
	reader, err := esclient.New(esclient.Config{BaseURL: url, Stream: "arena", Spectate: true,
		HTTPClient: &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}})
	require.NoError(t, err)
	var all []esclient.Event
	for {
		u, err := reader.Sync(context.Background())
		require.NoError(t, err)
		all = append(all, u.Events...)
		if !u.More {
			break
		}
	}
	for _, e := range all {
		assert.Contains(t, []string{esclient.ServerOrigin, "1", "2"}, e.Origin, "an event of someone else: %v", e)
		if e.Type == esclient.TypeConnect || e.Type == esclient.TypeDisconnect {
			assert.Contains(t, []string{"1", "2"}, e.Body, "a spectator appeared: %v", e)
		}
	}

	want := map[int64]uint64{}
	for _, p := range players {
		for _, h := range p.driver.Hashes() {
			want[h.Tick] = h.Hash
		}
	}
	for i, d := range watchers {
		hashes := d.Hashes()
		require.Greater(t, len(hashes), 10, "watcher %d processed ticks", i)
		compared := 0
		for _, h := range hashes {
			if w, ok := want[h.Tick]; ok {
				require.Equal(t, w, h.Hash, "watcher %d diverged at tick %d", i, h.Tick)
				compared++
			}
		}
		assert.Greater(t, compared, 10, "watcher %d shared ticks with the players", i)
	}
}
