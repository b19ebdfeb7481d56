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

func (l *lateStore) Sync(ctx context.Context, req *stream.SyncRequest) (*stream.SyncResult, error) {
	s, err := l.get()
	if err != nil {
		return nil, err
	}
	return s.Sync(ctx, req)
}

func (l *lateStore) Sweep(ctx context.Context) (stream.SweepResult, error) {
	s, err := l.get()
	if err != nil {
		return stream.SweepResult{}, err
	}
	return s.Sweep(ctx)
}

func (l *lateStore) Stats(ctx context.Context, limit int) (stream.Stats, error) {
	s, err := l.get()
	if err != nil {
		return stream.Stats{}, err
	}
	return s.Stats(ctx, limit)
}

func (l *lateStore) Ping(ctx context.Context) error {
	s, err := l.get()
	if err != nil {
		return err
	}
	return s.Ping(ctx)
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
