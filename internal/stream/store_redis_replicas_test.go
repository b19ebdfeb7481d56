package stream_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/rueidis"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/goeventstream/eventstream/internal/redistest"
	"github.com/goeventstream/eventstream/internal/stream"
	"github.com/goeventstream/eventstream/internal/stream/streamtest"
)

// startReplicated starts a Redis primary and one replica of it, and waits
// until the replica has synchronised.
func startReplicated(t *testing.T) (primary, replica *redistest.Server) {
	t.Helper()
	primary = redistest.Start(t, "repl-diskless-sync-delay 0")
	replica = redistest.Start(t, "replicaof "+strings.Replace(primary.Addr, ":", " ", 1))
	client := newRedisClient(t, primary.Addr)
	require.Eventually(t, func() bool {
		info, err := client.Do(context.Background(), client.B().Info().Section("replication").Build()).ToString()
		return err == nil && strings.Contains(info, "connected_slaves:1") && strings.Contains(info, "state=online")
	}, 10*time.Second, 20*time.Millisecond, "the replica did not synchronise")
	return primary, replica
}

func newRedisClient(t *testing.T, addr string) rueidis.Client {
	t.Helper()
	client, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{addr}, DisableCache: true})
	require.NoError(t, err)
	t.Cleanup(client.Close)
	return client
}

// TestRedisWaitReplicas: with WaitReplicas, a sync is answered once that
// many replicas hold its events; when fewer acknowledge it within the
// store timeout, the sync answers ErrNotReplicated (store_unknown): it
// stands on the primary, and its retry with the same batch id appends
// nothing again.
func TestRedisWaitReplicas(t *testing.T) {
	primary, replica := startReplicated(t)
	ctx := context.Background()
	onReplica := newRedisClient(t, replica.Addr)
	logLen := func(name string) int64 {
		n, err := onReplica.Do(ctx, onReplica.B().Xlen().Key(stream.DefaultRedisPrefix+"{"+name+"}:l").Build()).AsInt64()
		require.NoError(t, err)
		return n
	}

	cfg := testRedisConfig(primary.URL(), stream.DefaultConfig())
	cfg.WaitReplicas = 1
	s, err := stream.NewRedisStore(cfg)
	require.NoError(t, err)
	t.Cleanup(s.Close)
	for i := range 20 {
		_, err := s.Sync(ctx, &stream.SyncRequest{Stream: "g", PrivateID: "p", Events: streamtest.Moves("x")})
		require.NoError(t, err)
		assert.EqualValues(t, 3+i, logLen("g"), "the replica holds every event a sync was answered for")
	}

	cfg.WaitReplicas, cfg.Timeout = 2, 500*time.Millisecond // one replica only
	short, err := stream.NewRedisStore(cfg)
	require.NoError(t, err)
	t.Cleanup(short.Close)
	req := &stream.SyncRequest{Stream: "h", PrivateID: "p", Batch: "b1", Events: streamtest.Moves("y")}
	start := time.Now()
	_, err = short.Sync(ctx, req)
	require.ErrorIs(t, err, stream.ErrNotReplicated)
	require.ErrorIs(t, err, stream.ErrOutcomeUnknown, "answered as store_unknown")
	assert.Less(t, time.Since(start), cfg.Timeout+200*time.Millisecond, "within the store timeout")
	_, err = short.Sync(ctx, req)
	require.ErrorIs(t, err, stream.ErrNotReplicated, "the retry waits again")

	res, err := s.Sync(ctx, &stream.SyncRequest{Stream: "h", PrivateID: "p", Batch: "b1", Events: streamtest.Moves("y")})
	require.NoError(t, err)
	assert.Zero(t, res.Appended, "the first try stood on the primary: its retry appends nothing")
	assert.EqualValues(t, 3, logLen("h"), "_a, _c and one y")

	cfg.WaitReplicas = -1
	require.ErrorContains(t, cfg.Validate(), "must not be negative")
}
