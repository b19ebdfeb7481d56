package metrics

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/goeventstream/eventstream/internal/stream"
)

// storeMetrics time every call to the store and count its failures.
type storeMetrics struct {
	duration *prometheus.HistogramVec
	errors   *prometheus.CounterVec
}

func newStoreMetrics() *storeMetrics {
	return &storeMetrics{
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Subsystem: "store", Name: "operation_duration_seconds",
			Help:    "Time the store took per operation: sync, sweep, stats, ping.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
		}, []string{"op"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "store", Name: "errors_total",
			Help: "Store operations that failed because the store could not serve (not refusals such as a full stream).",
		}, []string{"op"}),
	}
}

// InstrumentStore returns s with every call timed and every failure of the
// backend counted.
func (m *Metrics) InstrumentStore(s stream.Store) stream.Store {
	op := func(name string) opObservers { // resolved once: a sync is too busy to look its labels up
		return opObservers{duration: m.store.duration.WithLabelValues(name), errors: m.store.errors.WithLabelValues(name)}
	}
	return &instrumentedStore{Store: s, sync: op("sync"), sweep: op("sweep"), stats: op("stats"), ping: op("ping")}
}

type instrumentedStore struct {
	stream.Store
	sync, sweep, stats, ping opObservers
}

// opObservers are the children of storeMetrics of one operation.
type opObservers struct {
	duration prometheus.Observer
	errors   prometheus.Counter
}

func (o opObservers) observe(start time.Time, err error) {
	o.duration.Observe(time.Since(start).Seconds())
	if errors.Is(err, stream.ErrUnavailable) {
		o.errors.Inc()
	}
}

func (s *instrumentedStore) Sync(ctx context.Context, req *stream.SyncRequest) (*stream.SyncResult, error) {
	start := time.Now()
	res, err := s.Store.Sync(ctx, req)
	s.sync.observe(start, err)
	return res, err
}

func (s *instrumentedStore) Sweep(ctx context.Context) (stream.SweepResult, error) {
	start := time.Now()
	res, err := s.Store.Sweep(ctx)
	s.sweep.observe(start, err)
	return res, err
}

func (s *instrumentedStore) Stats(ctx context.Context, limit int) (stream.Stats, error) {
	start := time.Now()
	res, err := s.Store.Stats(ctx, limit)
	s.stats.observe(start, err)
	return res, err
}

func (s *instrumentedStore) Ping(ctx context.Context) error {
	start := time.Now()
	err := s.Store.Ping(ctx)
	s.ping.observe(start, err)
	return err
}

// Watch implements stream.Watcher for the store it wraps: watching a
// stream is not an operation of the store's metrics.
func (s *instrumentedStore) Watch(name string) (string, int64, <-chan struct{}, bool) {
	return stream.WatchOf(s.Store, name)
}
