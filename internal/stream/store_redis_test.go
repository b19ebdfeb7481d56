package stream_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/goeventstream/eventstream/internal/clock"
	"github.com/goeventstream/eventstream/internal/redistest"
	"github.com/goeventstream/eventstream/internal/stream"
	"github.com/goeventstream/eventstream/internal/stream/streamtest"
)

// redisFactory makes stores on one redis-server, each test under its own
// key prefix.
func redisFactory(url string) streamtest.Factory {
	return func(t testing.TB, cfg stream.Config) stream.Store {
		rcfg := testRedisConfig(url, cfg)
		rcfg.Prefix = redistest.KeyPrefix()
		s, err := stream.NewRedisStore(rcfg)
		require.NoError(t, err)
		t.Cleanup(s.Close)
		return s
	}
}

func TestRedisStoreConformance(t *testing.T) {
	srv := redistest.Start(t)
	streamtest.Run(t, redisFactory(srv.URL()))
}

// TestRedisStoreLongLife runs a stream for 2 hours of stream time at 100
// events a second (720 000 events) on the fake clock; set
// EVENTSTREAMD_LONG_LIFE to a duration (24h) for a longer run.
func TestRedisStoreLongLife(t *testing.T) {
	d := 2 * time.Hour
	if v := os.Getenv("EVENTSTREAMD_LONG_LIFE"); v != "" {
		var err error
		d, err = time.ParseDuration(v)
		require.NoError(t, err)
	}
	if testing.Short() {
		d = 10 * time.Minute
	}
	srv := redistest.Start(t)
	streamtest.LongLife(t, redisFactory(srv.URL()), d)
}

func TestRedisClusterConformance(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Redis Cluster; skipped with -short")
	}
	cluster := redistest.StartCluster(t, 3)
	streamtest.Run(t, redisFactory(cluster.URL()))
}

// syncUntil retries a sync while Redis is coming back, as a client would.
func syncUntil(t *testing.T, s stream.Store, req *stream.SyncRequest) *stream.SyncResult {
	t.Helper()
	var err error
	for range 100 {
		var res *stream.SyncResult
		if res, err = s.Sync(context.Background(), req); err == nil {
			return res
		}
		require.ErrorIs(t, err, stream.ErrUnavailable)
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("Redis did not come back: %v", err)
	return nil
}

func TestRedisRestartWithoutPersistenceStartsANewEpoch(t *testing.T) {
	srv := redistest.Start(t)
	s, err := stream.NewRedisStore(testRedisConfig(srv.URL(), stream.DefaultConfig()))
	require.NoError(t, err)
	t.Cleanup(s.Close)
	first := syncUntil(t, s, &stream.SyncRequest{Stream: "g", PrivateID: "p", Events: streamtest.Moves("x")})
	time.Sleep(100 * time.Millisecond)
	before := syncUntil(t, s, &stream.SyncRequest{Stream: "g", PrivateID: "p", LastKnownTick: first.T, Epoch: first.Epoch})

	srv.Restart(t) // everything Redis held is gone

	res := syncUntil(t, s, &stream.SyncRequest{Stream: "g", PrivateID: "p", LastKnownTick: before.T, Epoch: before.Epoch})
	assert.NotEqual(t, first.Epoch, res.Epoch, "a new stream has a new epoch")
	events := streamtest.Decode(t, res.Events)
	require.NotEmpty(t, events, "the client is sent the new stream from its start, never a silent gap")
	assert.Equal(t, "_a", events[0].Type)
	assert.Equal(t, res.Epoch, events[0].Body)
}

func TestRedisRestartWithAOFLosesNothing(t *testing.T) {
	srv := redistest.Start(t, "appendonly yes", "appendfsync always")
	s, err := stream.NewRedisStore(testRedisConfig(srv.URL(), stream.DefaultConfig()))
	require.NoError(t, err)
	t.Cleanup(s.Close)
	first := syncUntil(t, s, &stream.SyncRequest{Stream: "g", PrivateID: "p", Events: streamtest.Moves("a", "b")})
	syncUntil(t, s, &stream.SyncRequest{Stream: "g", PrivateID: "q", Events: streamtest.Moves("c")})

	srv.Restart(t) // SIGKILL: only what was fsynced survives

	time.Sleep(100 * time.Millisecond) // seal the tick of the events
	res := syncUntil(t, s, &stream.SyncRequest{Stream: "g", PrivateID: "p", Epoch: first.Epoch})
	assert.Equal(t, first.Epoch, res.Epoch, "the stream survived")
	assert.Equal(t, "1", res.PublicID, "and so did the mapping")
	var bodies []string
	for _, e := range streamtest.Decode(t, res.Events) {
		if e.Type == "move" {
			bodies = append(bodies, e.Body)
		}
	}
	assert.Equal(t, []string{"a", "b", "c"}, bodies)
}

// testRedisConfig is the configuration of a test's store on url.
func testRedisConfig(url string, cfg stream.Config) stream.RedisConfig {
	rcfg := stream.DefaultRedisConfig()
	rcfg.Config, rcfg.URL, rcfg.Secret = cfg, url, redistest.Secret
	return rcfg
}

// TestRedisRefusedRequestsLeaveNoIndexEntry: a request refused with
// server_full adds nothing to the deadline index, where it would count as
// a stream and be swept.
func TestRedisRefusedRequestsLeaveNoIndexEntry(t *testing.T) {
	srv := redistest.Start(t)
	cfg := stream.DefaultConfig()
	cfg.MaxStreams = 1
	fake := clock.NewFake(streamtest.Start)
	cfg.Clock = fake
	s, err := stream.NewRedisStore(testRedisConfig(srv.URL(), cfg))
	require.NoError(t, err)
	t.Cleanup(s.Close)
	ctx := context.Background()
	_, err = s.Sync(ctx, &stream.SyncRequest{Stream: "kept", PrivateID: "p"})
	require.NoError(t, err)
	fake.Advance(2 * time.Second) // the stream count is read at most once a second
	for i := range 50 {
		_, err := s.Sync(ctx, &stream.SyncRequest{Stream: fmt.Sprint("refused-", i), PrivateID: "p"})
		require.ErrorIs(t, err, stream.ErrServerFull)
	}
	client := srv.Client(t)
	names, err := client.Do(ctx, client.B().Zrange().Key(stream.DefaultRedisPrefix+"deadlines").Min("0").Max("-1").Build()).AsStrSlice()
	require.NoError(t, err)
	assert.Equal(t, []string{"kept"}, names)
	keys, err := client.Do(ctx, client.B().Keys().Pattern("*refused*").Build()).AsStrSlice()
	require.NoError(t, err)
	assert.Empty(t, keys)
}

func TestRedisThatEvictsIsRefused(t *testing.T) {
	srv := redistest.Start(t, "maxmemory-policy allkeys-lru")
	cfg := testRedisConfig(srv.URL(), stream.DefaultConfig())
	_, err := stream.NewRedisStore(cfg)
	require.ErrorContains(t, err, "maxmemory-policy allkeys-lru")
	assert.NotErrorIs(t, err, stream.ErrUnavailable, "waiting will not change it")

	cfg.AllowEviction = true
	s, err := stream.NewRedisStore(cfg)
	require.NoError(t, err, "unless the operator accepts it")
	s.Close()
}
