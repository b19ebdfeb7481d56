package stream_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/goeventstream/eventstream/internal/clock"
	"github.com/goeventstream/eventstream/internal/stream"
	"github.com/goeventstream/eventstream/internal/stream/streamtest"
)

func TestSweeperDisconnectsWithinOneInterval(t *testing.T) {
	fake := clock.NewFake(streamtest.Start)
	cfg := stream.DefaultConfig()
	cfg.Clock = fake
	store, err := stream.NewMemoryStore(cfg)
	require.NoError(t, err)
	_, err = store.Sync(context.Background(), &stream.SyncRequest{Stream: "s", PrivateID: "a"})
	require.NoError(t, err)

	swept := make(chan stream.SweepResult, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	sw := &stream.Sweeper{Store: store, Clock: fake, OnSweep: func(r stream.SweepResult) { swept <- r }}
	go func() { defer close(done); sw.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	require.Eventually(t, func() bool { return fake.Tickers() == 1 }, 5*time.Second, time.Millisecond)

	// Step in sweep intervals: nothing until the deadline, then a
	// disconnect by the first sweep at or after it.
	for elapsed := time.Duration(0); elapsed < cfg.ClientTimeout; elapsed += stream.DefaultSweepInterval {
		select {
		case r := <-swept:
			t.Fatalf("swept %+v before the deadline", r)
		default:
		}
		fake.Advance(stream.DefaultSweepInterval)
	}
	// A slow test goroutine may miss a tick, as a real ticker may; a
	// disconnect must still come within a second of the deadline.
	for range int(time.Second / stream.DefaultSweepInterval) {
		select {
		case r := <-swept:
			require.Len(t, r.Disconnected, 1)
			assert.Equal(t, "1", r.Disconnected[0].PublicID)
			assert.GreaterOrEqual(t, r.Disconnected[0].T, int64(201), "10 s after tick 1")
			assert.LessOrEqual(t, r.Disconnected[0].T, int64(221), "within 1 s of the deadline")
			return
		case <-time.After(time.Second):
			fake.Advance(stream.DefaultSweepInterval)
		}
	}
	t.Fatal("no disconnect within a second of the deadline")
}

type failingStore struct{ stream.Store }

func (failingStore) Sweep(context.Context) (stream.SweepResult, error) {
	return stream.SweepResult{}, errors.New("boom")
}

func TestSweeperReportsErrors(t *testing.T) {
	fake := clock.NewFake(streamtest.Start)
	errs := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	sw := &stream.Sweeper{Store: failingStore{}, Clock: fake, Interval: time.Second, OnError: func(err error) { errs <- err }}
	go func() { defer close(done); sw.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	require.Eventually(t, func() bool { return fake.Tickers() == 1 }, 5*time.Second, time.Millisecond)

	fake.Advance(time.Second)
	select {
	case err := <-errs:
		assert.EqualError(t, err, "boom")
	case <-time.After(10 * time.Second):
		t.Fatal("the error was not reported")
	}
}

// flakyStore fails the sweeps while down is set.
type flakyStore struct {
	stream.Store
	down atomic.Bool
}

func (f *flakyStore) Sweep(ctx context.Context) (stream.SweepResult, error) {
	if f.down.Load() {
		return stream.SweepResult{}, errors.New("boom")
	}
	return stream.SweepResult{}, nil
}

func TestSweeperReportsRecovery(t *testing.T) {
	fake := clock.NewFake(streamtest.Start)
	store := &flakyStore{}
	store.down.Store(true)
	var failures atomic.Int32
	recovered := make(chan struct{}, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	sw := &stream.Sweeper{Store: store, Clock: fake, Interval: time.Second,
		OnError:   func(error) { failures.Add(1) },
		OnRecover: func() { recovered <- struct{}{} }}
	go func() { defer close(done); sw.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	require.Eventually(t, func() bool { return fake.Tickers() == 1 }, 5*time.Second, time.Millisecond)

	for i := int32(1); i <= 3; i++ {
		fake.Advance(time.Second)
		require.Eventually(t, func() bool { return failures.Load() == i }, 5*time.Second, time.Millisecond)
	}
	store.down.Store(false)
	fake.Advance(time.Second)
	select {
	case <-recovered:
	case <-time.After(10 * time.Second):
		t.Fatal("the recovery was not reported")
	}
	fake.Advance(time.Second)
	select {
	case <-recovered:
		t.Fatal("reported twice")
	case <-time.After(50 * time.Millisecond):
	}
}
