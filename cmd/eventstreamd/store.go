package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/goeventstream/eventstream/internal/stream"
)

// lateStore is the store before it is opened: the server listens at once,
// answers /healthz, and answers everything that needs the store with
// ErrUnavailable (/readyz 503) until open has opened it.
type lateStore struct {
	store atomic.Pointer[stream.Store]
}

var _ stream.Store = (*lateStore)(nil)

func (l *lateStore) get() (stream.Store, error) {
	if s := l.store.Load(); s != nil {
		return *s, nil
	}
	return nil, fmt.Errorf("%w: it is not open yet", stream.ErrUnavailable)
}

// late calls f on the store once it is open.
func late[T any](l *lateStore, f func(stream.Store) (T, error)) (T, error) {
	s, err := l.get()
	if err != nil {
		var zero T
		return zero, err
	}
	return f(s)
}

func (l *lateStore) Sync(ctx context.Context, req *stream.SyncRequest) (*stream.SyncResult, error) {
	return late(l, func(s stream.Store) (*stream.SyncResult, error) { return s.Sync(ctx, req) })
}

func (l *lateStore) Read(ctx context.Context, req *stream.SyncRequest) (*stream.SyncResult, error) {
	return late(l, func(s stream.Store) (*stream.SyncResult, error) { return s.Read(ctx, req) })
}

// Watch implements stream.Watcher once the store is open, for a store
// that is one.
func (l *lateStore) Watch(name string) (string, int64, <-chan struct{}, bool) {
	s, err := l.get()
	if err != nil {
		return "", 0, nil, false
	}
	return stream.WatchOf(s, name)
}

func (l *lateStore) Sweep(ctx context.Context) (stream.SweepResult, error) {
	return late(l, func(s stream.Store) (stream.SweepResult, error) { return s.Sweep(ctx) })
}

func (l *lateStore) Stats(ctx context.Context, limit int) (stream.Stats, error) {
	return late(l, func(s stream.Store) (stream.Stats, error) { return s.Stats(ctx, limit) })
}

func (l *lateStore) Ping(ctx context.Context) error {
	_, err := late(l, func(s stream.Store) (struct{}, error) { return struct{}{}, s.Ping(ctx) })
	return err
}

func (l *lateStore) PutSnapshot(ctx context.Context, up *stream.Upload) (int64, bool, error) {
	type put struct {
		t      int64
		stored bool
	}
	p, err := late(l, func(s stream.Store) (put, error) {
		t, stored, err := s.PutSnapshot(ctx, up)
		return put{t, stored}, err
	})
	return p.t, p.stored, err
}

func (l *lateStore) Snapshot(ctx context.Context, name string) (*stream.Snapshot, error) {
	return late(l, func(s stream.Store) (*stream.Snapshot, error) { return s.Snapshot(ctx, name) })
}

func (l *lateStore) PutDump(ctx context.Context, up *stream.Upload) error {
	_, err := late(l, func(s stream.Store) (struct{}, error) { return struct{}{}, s.PutDump(ctx, up) })
	return err
}

func (l *lateStore) Desyncs(ctx context.Context, name string) ([]stream.DesyncReport, error) {
	return late(l, func(s stream.Store) ([]stream.DesyncReport, error) { return s.Desyncs(ctx, name) })
}

func (l *lateStore) Dump(ctx context.Context, name string, t int64, publicID string) ([]byte, error) {
	return late(l, func(s stream.Store) ([]byte, error) { return s.Dump(ctx, name, t, publicID) })
}

// open opens the store cfg names, makes it l's, and returns a function
// that releases it. A Redis that cannot be reached yet (it may be starting
// too) is retried every second until ctx ends.
func (l *lateStore) open(ctx context.Context, cfg config, log *zap.Logger) (func(), error) {
	if !cfg.redis() {
		s, err := stream.NewMemoryStore(cfg.Stream.Config)
		if err != nil {
			return nil, err
		}
		l.set(s)
		return func() {}, nil
	}
	for {
		s, err := stream.NewRedisStore(cfg.Stream)
		if err == nil {
			l.set(s)
			return s.Close, nil
		}
		if !errors.Is(err, stream.ErrUnavailable) {
			return nil, err
		}
		log.Warn("waiting for the store", zap.String("store", storeName(cfg.Stream.URL)), zap.Error(err))
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("the store never answered: %w", err)
		case <-time.After(time.Second):
		}
	}
}

func (l *lateStore) set(s stream.Store) { l.store.Store(&s) }

// storeName names the store for logs without the password a URL may hold.
func storeName(store string) string {
	u, err := url.Parse(store)
	if err != nil || u.Scheme == "" {
		return store
	}
	u.User = nil
	return u.String()
}
