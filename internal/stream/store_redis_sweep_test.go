package stream

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/rueidis"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/goeventstream/eventstream/internal/clock"
	"github.com/goeventstream/eventstream/internal/redistest"
)

var sweepStart = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

// sweepEnv is a Redis store on a fake clock, and a client of its Redis.
type sweepEnv struct {
	t      *testing.T
	clock  *clock.Fake
	store  *RedisStore
	redis  rueidis.Client
	config RedisConfig
}

func newSweepEnv(t *testing.T) *sweepEnv {
	srv := redistest.Start(t)
	fake := clock.NewFake(sweepStart)
	cfg := DefaultRedisConfig()
	cfg.Clock, cfg.URL, cfg.Secret = fake, srv.URL(), redistest.Secret
	s, err := NewRedisStore(cfg)
	require.NoError(t, err)
	t.Cleanup(s.Close)
	return &sweepEnv{t: t, clock: fake, store: s, redis: srv.Client(t), config: cfg}
}

// replica is another replica on the same Redis and clock.
func (e *sweepEnv) replica() *RedisStore {
	s, err := NewRedisStore(e.config)
	require.NoError(e.t, err)
	e.t.Cleanup(s.Close)
	return s
}

func (e *sweepEnv) sync(s *RedisStore, stream, privateID string) *SyncResult {
	e.t.Helper()
	res, err := s.Sync(context.Background(), &SyncRequest{Stream: stream, PrivateID: privateID})
	require.NoError(e.t, err)
	return res
}

func (e *sweepEnv) sweep(s *RedisStore) SweepResult {
	e.t.Helper()
	res, err := s.Sweep(context.Background())
	require.NoError(e.t, err)
	return res
}

// deadline returns the stream's score in the deadline index, in time.
func (e *sweepEnv) deadline(stream string) (time.Time, bool) {
	e.t.Helper()
	score, err := e.redis.Do(context.Background(), e.redis.B().Zscore().Key(e.config.Prefix+"deadlines").Member(stream).Build()).AsFloat64()
	if rueidis.IsRedisNil(err) {
		return time.Time{}, false
	}
	require.NoError(e.t, err)
	return time.UnixMilli(int64(score)).UTC(), true
}

func TestSweepGoesOnPastAStreamThatFails(t *testing.T) {
	e := newSweepEnv(t)
	e.sync(e.store, "broken", "p")
	e.sync(e.store, "fine", "p")
	// The meta of "broken" lost a field, as an evicting Redis may do.
	require.NoError(t, e.redis.Do(context.Background(), e.redis.B().Hdel().Key(e.store.keys("broken").meta).Field("created").Build()).Error())
	e.clock.Advance(11 * time.Second)

	res := e.sweep(e.store)
	require.Len(t, res.Failed, 1)
	assert.Equal(t, "broken", res.Failed[0].Stream)
	require.Len(t, res.Disconnected, 1, "the pass went on")
	assert.Equal(t, "fine", res.Disconnected[0].Stream)
	at, ok := e.deadline("broken")
	require.True(t, ok, "a stream that failed stays in the index")
	assert.Equal(t, e.clock.Now().Add(sweepRetry), at, "and is tried again")

	e.clock.Advance(sweepRetry)
	assert.Len(t, e.sweep(e.store).Failed, 1, "tried again, and failing still")
}

// TestSweepKeepsADeadlineASyncSetMeanwhile drives a sync between a batch's
// sweep scripts and its reschedule: the sync's deadline is kept.
func TestSweepKeepsADeadlineASyncSetMeanwhile(t *testing.T) {
	t.Run("a stream created anew", func(t *testing.T) {
		e := newSweepEnv(t)
		e.sync(e.store, "s", "p")
		e.clock.Advance(11 * time.Second)
		require.Len(t, e.sweep(e.store).Disconnected, 1)
		e.clock.Advance(61 * time.Second)
		var again *SyncResult
		e.store.beforeReschedule = func() { again = e.sync(e.replica(), "s", "q") }
		res := e.sweep(e.store)
		e.store.beforeReschedule = nil
		assert.Equal(t, []string{"s"}, res.Expired)
		require.True(t, again.Created, "the sync created the stream anew")

		at, ok := e.deadline("s")
		require.True(t, ok, "the new stream is in the index, not leaked")
		assert.Equal(t, e.clock.Now().Add(10*time.Second), at)
		e.clock.Advance(10 * time.Second)
		res = e.sweep(e.store)
		require.Len(t, res.Disconnected, 1, "its client's _d comes on time")
		assert.Equal(t, "s", res.Disconnected[0].Stream)
	})
	t.Run("a client joining an empty stream", func(t *testing.T) {
		e := newSweepEnv(t)
		e.sync(e.store, "s", "p")
		e.clock.Advance(11 * time.Second)
		e.store.beforeReschedule = func() { e.sync(e.replica(), "s", "q") }
		require.Len(t, e.sweep(e.store).Disconnected, 1, "p went silent: the next deadline is the stream's TTL")
		e.store.beforeReschedule = nil

		at, ok := e.deadline("s")
		require.True(t, ok)
		assert.Equal(t, e.clock.Now().Add(10*time.Second), at, "q's deadline, not the TTL a minute later")
	})
}

// TestReplicasShareTheSweep: replicas sweeping at once each take other
// streams, and every silent client is disconnected exactly once.
func TestReplicasShareTheSweep(t *testing.T) {
	e := newSweepEnv(t)
	const streams = 3 * sweepBatch
	for i := range streams {
		e.sync(e.store, fmt.Sprint("s", i), "p")
	}
	e.clock.Advance(11 * time.Second)
	replicas := []*RedisStore{e.store, e.replica(), e.replica()}
	results := make(chan SweepResult, len(replicas))
	for _, r := range replicas {
		r.beforeReschedule = func() { time.Sleep(10 * time.Millisecond) } // let the others claim meanwhile
		go func() {
			res, err := r.Sweep(context.Background())
			assert.NoError(t, err)
			results <- res
		}()
	}
	seen := map[string]int{}
	busy := 0
	for range replicas {
		res := <-results
		if len(res.Disconnected) > 0 {
			busy++
		}
		for _, d := range res.Disconnected {
			seen[d.Stream]++
		}
	}
	assert.Len(t, seen, streams, "every stream was swept")
	for s, n := range seen {
		require.Equal(t, 1, n, "%s was swept %d times", s, n)
	}
	assert.Greater(t, busy, 1, "the work was shared")
}

// TestSweepForgetsTheTailOfAnExpiredStream: the sealed ticks a replica
// kept of a stream go with it, not when the cache's budget evicts them.
func TestSweepForgetsTheTailOfAnExpiredStream(t *testing.T) {
	e := newSweepEnv(t)
	e.sync(e.store, "s", "p")
	require.NotNil(t, e.store.tails.streams["s"], "the replica cached the stream's ticks")
	e.clock.Advance(11 * time.Second)
	e.sweep(e.store)
	e.clock.Advance(61 * time.Second)
	require.Equal(t, []string{"s"}, e.sweep(e.store).Expired)
	assert.Nil(t, e.store.tails.streams["s"])
	assert.Zero(t, e.store.tails.total)
}
