package esclient_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/goeventstream/eventstream/pkg/esclient"
)

func spectating(c *esclient.Config) { c.Spectate = true }

// TestSpectator: a spectator reads what a player reads, with no public id,
// and never appears in the stream; what it may not do is refused locally,
// sending nothing.
func TestSpectator(t *testing.T) {
	srv := newServer(t, nil)
	ctx := context.Background()
	player := newClient(t, srv.URL, secret, withHTTP(httpClient(t)))
	watcher := newClient(t, srv.URL, "", withHTTP(httpClient(t)), spectating)
	assert.True(t, watcher.Spectator())

	_, err := watcher.Sync(ctx)
	var se *esclient.Error
	require.ErrorAs(t, err, &se, "a spectator of a stream that does not exist yet")
	assert.Equal(t, http.StatusNotFound, se.Status)

	require.NoError(t, player.Send("m", "1"))
	_, err = player.Sync(ctx)
	require.NoError(t, err)
	srv.tick()
	want, err := player.Sync(ctx)
	require.NoError(t, err)

	assert.ErrorIs(t, watcher.Send("m", "2"), esclient.ErrSpectator)
	watcher.ReportHash(0, "ab")
	_, err = watcher.PutSnapshot(ctx, 0, []byte("x"))
	assert.ErrorIs(t, err, esclient.ErrSpectator)
	assert.ErrorIs(t, watcher.PutDump(ctx, 0, []byte("x")), esclient.ErrSpectator)

	u, err := watcher.Sync(ctx)
	require.NoError(t, err)
	assert.Empty(t, u.PublicID)
	assert.Empty(t, watcher.PublicID())
	assert.Equal(t, want.T, u.T)
	assert.Equal(t, want.Epoch, u.Epoch)
	srv.tick()
	u, err = watcher.Sync(ctx)
	require.NoError(t, err)
	assert.Empty(t, u.Events, "a spectator appeared in the stream")

	stats, err := srv.store.Stats(ctx, 10)
	require.NoError(t, err)
	assert.Equal(t, 1, stats.Clients)
}

// TestSpectatorWaitsForTheStream: Run as a spectator waits for a stream
// that does not exist yet, then reads it from its start.
func TestSpectatorWaitsForTheStream(t *testing.T) {
	srv := newServer(t, nil)
	watcher := newClient(t, srv.URL, "", withHTTP(httpClient(t)), spectating)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	var got []esclient.Event
	done := make(chan error, 1)
	go func() {
		done <- watcher.Run(ctx, func(u esclient.Update) {
			mu.Lock()
			got = append(got, u.Events...)
			mu.Unlock()
		})
	}()
	time.Sleep(30 * time.Millisecond) // a few polls answered not_found
	player := newClient(t, srv.URL, secret, withHTTP(httpClient(t)))
	require.NoError(t, player.Send("m", "1"))
	_, err := player.Sync(context.Background())
	require.NoError(t, err)
	srv.tick()
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == 3
	}, 5*time.Second, 5*time.Millisecond)
	cancel()
	require.ErrorIs(t, <-done, context.Canceled)
	assert.Equal(t, []string{esclient.TypeReset, esclient.TypeConnect, "m"}, []string{got[0].Type, got[1].Type, got[2].Type})
}

// TestSpectatorOfAnOldServer: a server that answers a spectator's poll
// with a public id took it for a player; the client says so.
func TestSpectatorOfAnOldServer(t *testing.T) {
	var method, query string
	old := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		method, query = r.Method, r.URL.RawQuery
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"id":"2","t":1,"epoch":"6db8b8f2-16c9-427d-9fc9-de43870ed0db","tps":20,"ckpt":20,"events":[]}`))
	}))
	defer old.Close()
	watcher := newClient(t, old.URL, "", withHTTP(httpClient(t)), spectating)
	_, err := watcher.Sync(context.Background())
	assert.ErrorIs(t, err, esclient.ErrNotSpectating)
	assert.Equal(t, http.MethodGet, method)
	assert.Equal(t, "spectate=1", query)
	err = watcher.Run(context.Background(), func(esclient.Update) {})
	assert.ErrorIs(t, err, esclient.ErrNotSpectating, "Run goes on as a player")
}
