// Package metrics defines eventstreamd's Prometheus metrics on a registry
// the caller owns.
//
// Counters and histograms are updated as things happen; per-stream gauges
// and totals are read from the store at scrape time by a Collector, so a
// deleted stream leaves no stale series. All methods are safe for
// concurrent use.
package metrics

import (
	"context"
	"maps"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/goeventstream/eventstream/internal/protocol"
	"github.com/goeventstream/eventstream/internal/stream"
)

const namespace = "eventstreamd"

// Event kinds, the values of the "kind" label of events appended.
const (
	kindReset      = "reset"
	kindConnect    = "connect"
	kindDisconnect = "disconnect"
	kindClient     = "client"
)

// Metrics holds the metrics that are updated as things happen, through its
// methods: the label names and their order are this package's business.
type Metrics struct {
	requests   *prometheus.CounterVec                          // by route, method, status
	duration   *prometheus.HistogramVec                        // by route, method
	byRequest  atomic.Pointer[map[requestKey]requestObservers] // resolved once: a new key replaces the map, never changes it
	requestsMu sync.Mutex                                      // adds a key to byRequest
	rejections *prometheus.CounterVec                          // by code

	events         *prometheus.CounterVec
	byKind         map[string]prometheus.Counter // events' children, resolved once
	store          *storeMetrics
	streamsCreated prometheus.Counter
	streamsExpired prometheus.Counter
	sweepErrors    prometheus.Counter
	sweepFailed    prometheus.Counter // streams a sweep could not sweep

	// Checkpoints (docs/protocol.md).
	judged        prometheus.Counter
	desyncs       prometheus.Counter
	compacted     prometheus.Counter
	snapshots     prometheus.Counter
	snapshotBytes prometheus.Counter

	// Spectators (docs/protocol.md, "Spectators"): no stream label, so
	// that no stream name is exported by them.
	spectatorPolls prometheus.Counter
	spectatorConns prometheus.Gauge

	// Stream tokens' signatures checked, by result (docs/protocol.md,
	// "Tokens"): those found wrong are forgeries, or a key not published.
	signatures                     *prometheus.CounterVec
	signatureValid, signatureWrong prometheus.Counter
}

// Config configures New.
type Config struct {
	// Registerer receives every metric. Required.
	Registerer prometheus.Registerer
	// Streams is read at scrape time for the per-stream gauges and totals.
	// Required.
	Streams StatsReader
	// MaxStreamSeries caps the number of streams given per-stream series
	// (-metrics-max-streams).
	MaxStreamSeries int
	// Version is exported as the version label of eventstreamd_build_info.
	Version string
	// MaxStreams is the store's cap on streams (-max-streams), exported so
	// that alerts can compare the streams held with it.
	MaxStreams int
	// ScrapeTimeout bounds the time spent reading Streams; zero means 5 s.
	ScrapeTimeout time.Duration
	// StatsMaxAge is how long one read of Streams serves the scrapes that
	// follow it, so that scrapes, however many, read the store at most
	// once per StatsMaxAge. Zero reads it at every scrape.
	StatsMaxAge time.Duration
	// Now tells the time for StatsMaxAge. Nil means time.Now.
	Now func() time.Time
}

// StatsReader reads statistics of the streams.
type StatsReader interface {
	// Stats reports the totals and at most limit streams.
	Stats(ctx context.Context, limit int) (stream.Stats, error)
}

// New creates the metrics and registers them, with the Go runtime and
// process collectors, on cfg.Registerer.
func New(cfg Config) (*Metrics, error) {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "http", Name: "requests_total",
			Help: "HTTP requests by route pattern, method and status code.",
		}, []string{"route", "method", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Subsystem: "http", Name: "request_duration_seconds",
			Help:    "Time to answer an HTTP request, by route pattern and method.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"route", "method"}),
		rejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "http", Name: "rejections_total",
			Help: "Requests answered with an error, by error code.",
		}, []string{"code"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "store", Name: "events_appended_total",
			Help: "Events appended to streams, by kind: reset, connect, disconnect, client.",
		}, []string{"kind"}),
		streamsCreated: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "store", Name: "streams_created_total",
			Help: "Streams created.",
		}),
		streamsExpired: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "store", Name: "streams_expired_total",
			Help: "Streams deleted after their TTL with no connected client.",
		}),
		store: newStoreMetrics(),
		sweepErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "store", Name: "sweep_errors_total",
			Help: "Presence sweeps that failed.",
		}),
		sweepFailed: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "store", Name: "sweep_stream_failures_total",
			Help: "Streams a sweep could not sweep (each is tried again); the others were swept.",
		}),
	}
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Subsystem: "checkpoint", Name: name, Help: help})
	}
	m.judged = counter("judged_total", "Checkpoints judged.")
	m.desyncs = counter("desyncs_total", "Clients named in _x events: their state diverged from the canonical one.")
	m.compacted = counter("events_compacted_total", "Events dropped below a verified snapshot.")
	m.snapshots = counter("snapshots_stored_total", "Snapshots verified and stored.")
	m.snapshotBytes = counter("snapshot_bytes_total", "Bytes of the snapshots stored.")
	m.spectatorPolls = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: namespace, Subsystem: "spectator", Name: "polls_total",
		Help: "Spectators' polls answered: reads of a stream by no client of it.",
	})
	m.spectatorConns = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: namespace, Subsystem: "spectator", Name: "connections",
		Help: "Spectators' push connections open on this replica, in all streams (each stream holds at most -max-spectators-per-stream).",
	})
	m.signatures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Subsystem: "auth", Name: "signature_checks_total",
		Help: "Signatures of stream tokens checked, by result: valid, or invalid (a forged token, or one signed with a key not published).",
	}, []string{"result"})
	m.signatureValid, m.signatureWrong = m.signatures.WithLabelValues("valid"), m.signatures.WithLabelValues("invalid")
	m.byRequest.Store(&map[requestKey]requestObservers{})
	for _, code := range protocol.ErrorCodes {
		m.rejections.WithLabelValues(code) // 0, not "no data", until the first
	}
	m.byKind = map[string]prometheus.Counter{}
	for _, kind := range []string{kindReset, kindConnect, kindDisconnect, kindClient} {
		m.byKind[kind] = m.events.WithLabelValues(kind)
	}
	buildInfo := prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: namespace, Name: "build_info",
		Help:        "Always 1; its labels tell the version and the Go version.",
		ConstLabels: prometheus.Labels{"version": cfg.Version, "goversion": runtime.Version()},
	})
	buildInfo.Set(1)
	streamCap := prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: namespace, Subsystem: "store", Name: "streams_max",
		Help: "The most streams this replica will hold (-max-streams).",
	})
	streamCap.Set(float64(cfg.MaxStreams))
	timeout := cfg.ScrapeTimeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	for _, c := range []prometheus.Collector{
		m.requests, m.duration, m.rejections, m.events,
		m.streamsCreated, m.streamsExpired, m.sweepErrors, m.sweepFailed, buildInfo, streamCap,
		m.judged, m.desyncs, m.compacted, m.snapshots, m.snapshotBytes,
		m.spectatorPolls, m.spectatorConns, m.signatures,
		m.store.duration, m.store.errors,
		newStreamCollector(cfg, timeout),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	} {
		if err := cfg.Registerer.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// ObserveRequest counts and times one HTTP request. route is the route
// pattern that served it, never the raw path.
func (m *Metrics) ObserveRequest(route, method string, status int, d time.Duration) {
	k := requestKey{route, method, status}
	obs, ok := (*m.byRequest.Load())[k]
	if !ok {
		obs = m.resolveRequest(k)
	}
	obs.count.Inc()
	obs.duration.Observe(d.Seconds())
}

// resolveRequest returns the observers of k, resolved once per route,
// method and status: labels are few, so byRequest is copied to add one.
// (A typed map hashes a key faster than sync.Map, which hashes it as an
// interface.)
func (m *Metrics) resolveRequest(k requestKey) requestObservers {
	m.requestsMu.Lock()
	defer m.requestsMu.Unlock()
	old := *m.byRequest.Load()
	if obs, ok := old[k]; ok {
		return obs
	}
	obs := requestObservers{
		count:    m.requests.WithLabelValues(k.route, k.method, strconv.Itoa(k.status)),
		duration: m.duration.WithLabelValues(k.route, k.method),
	}
	resolved := maps.Clone(old)
	resolved[k] = obs
	m.byRequest.Store(&resolved)
	return obs
}

type requestKey struct {
	route, method string
	status        int
}

type requestObservers struct {
	count    prometheus.Counter
	duration prometheus.Observer
}

// Rejected counts a request answered with the error code.
func (m *Metrics) Rejected(code string) { m.rejections.WithLabelValues(code).Inc() }

// ObserveSync counts what a sync appended.
func (m *Metrics) ObserveSync(res *stream.SyncResult) {
	if res.Created {
		m.streamsCreated.Inc()
		m.byKind[kindReset].Inc()
	}
	if res.Connected {
		m.byKind[kindConnect].Inc()
	}
	if res.Appended > 0 {
		m.byKind[kindClient].Add(float64(res.Appended))
	}
	if res.Judged > 0 {
		m.judged.Add(float64(res.Judged))
	}
	if res.Diverged > 0 {
		m.desyncs.Add(float64(res.Diverged))
	}
	if res.Compacted > 0 {
		m.compacted.Add(float64(res.Compacted))
	}
}

// SnapshotStored counts a snapshot of size bytes stored.
func (m *Metrics) SnapshotStored(size int) {
	m.snapshots.Inc()
	m.snapshotBytes.Add(float64(size))
}

// SpectatorPolled counts a spectator's poll answered.
func (m *Metrics) SpectatorPolled() { m.spectatorPolls.Inc() }

// SignatureChecked counts a stream token's signature checked, found valid
// or not.
func (m *Metrics) SignatureChecked(valid bool) {
	if valid {
		m.signatureValid.Inc()
	} else {
		m.signatureWrong.Inc()
	}
}

// SpectatorConnections adds delta to the spectators' push connections open.
func (m *Metrics) SpectatorConnections(delta int) { m.spectatorConns.Add(float64(delta)) }

// ObserveSweep counts what a sweep did.
func (m *Metrics) ObserveSweep(res stream.SweepResult) {
	m.byKind[kindDisconnect].Add(float64(len(res.Disconnected)))
	m.streamsExpired.Add(float64(len(res.Expired)))
	m.sweepFailed.Add(float64(len(res.Failed)))
}

// SweepFailed counts a failed sweep.
func (m *Metrics) SweepFailed() { m.sweepErrors.Inc() }

// streamCollector reads the streams at scrape time. A scrape always
// succeeds: when the store cannot be read, eventstreamd_store_up is 0 and
// the series read from it are left out of that scrape.
type streamCollector struct {
	source  StatsReader
	limit   int
	timeout time.Duration
	maxAge  time.Duration
	now     func() time.Time

	mu     sync.Mutex // one read at a time; the others wait for it
	last   stream.Stats
	lastAt time.Time
	lastOK bool

	up, tick, clients, streams, connected, omitted *prometheus.Desc
	events, bytes, checkpointBytes                 *prometheus.Desc
}

func newStreamCollector(cfg Config, timeout time.Duration) *streamCollector {
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	return &streamCollector{
		source: cfg.Streams, limit: cfg.MaxStreamSeries, timeout: timeout, maxAge: cfg.StatsMaxAge, now: now,
		up: prometheus.NewDesc(namespace+"_store_up",
			"1 if the store answered the last read of the streams' statistics, else 0.", nil, nil),
		tick: prometheus.NewDesc(namespace+"_stream_tick",
			"The tick in progress of a stream.", []string{"stream"}, nil),
		clients: prometheus.NewDesc(namespace+"_stream_clients",
			"Connected clients of a stream.", []string{"stream"}, nil),
		events: prometheus.NewDesc(namespace+"_stream_events_retained",
			"Events a stream retains (compaction drops those below its snapshot).", []string{"stream"}, nil),
		bytes: prometheus.NewDesc(namespace+"_stream_bytes_retained",
			"Bytes of the events a stream retains.", []string{"stream"}, nil),
		streams: prometheus.NewDesc(namespace+"_store_streams",
			"Streams held.", nil, nil),
		connected: prometheus.NewDesc(namespace+"_store_clients_connected",
			"Connected clients in all streams.", nil, nil),
		checkpointBytes: prometheus.NewDesc(namespace+"_store_checkpoint_bytes",
			"Bytes of the snapshots and desync dumps held, each counting 64 more, against -max-checkpoint-bytes.", nil, nil),
		omitted: prometheus.NewDesc(namespace+"_metrics_streams_omitted",
			"Streams left out of the per-stream series by -metrics-max-streams.", nil, nil),
	}
}

func (c *streamCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.up, c.tick, c.clients, c.streams, c.connected, c.omitted, c.events, c.bytes, c.checkpointBytes} {
		ch <- d
	}
}

// stats returns the streams' statistics, read at most once per maxAge.
func (c *streamCollector) stats() (stream.Stats, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now := c.now(); c.lastAt.IsZero() || now.Sub(c.lastAt) >= c.maxAge {
		ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
		defer cancel()
		st, err := c.source.Stats(ctx, c.limit)
		c.last, c.lastAt, c.lastOK = st, now, err == nil
	}
	return c.last, c.lastOK
}

func (c *streamCollector) Collect(ch chan<- prometheus.Metric) {
	st, ok := c.stats()
	if !ok {
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 1)
	ch <- prometheus.MustNewConstMetric(c.streams, prometheus.GaugeValue, float64(st.Streams))
	ch <- prometheus.MustNewConstMetric(c.connected, prometheus.GaugeValue, float64(st.Clients))
	ch <- prometheus.MustNewConstMetric(c.checkpointBytes, prometheus.GaugeValue, float64(st.CheckpointBytes))
	ch <- prometheus.MustNewConstMetric(c.omitted, prometheus.GaugeValue, float64(st.Streams-len(st.PerStream)))
	for _, s := range st.PerStream {
		ch <- prometheus.MustNewConstMetric(c.tick, prometheus.GaugeValue, float64(s.T), s.Stream)
		ch <- prometheus.MustNewConstMetric(c.clients, prometheus.GaugeValue, float64(s.Clients), s.Stream)
		ch <- prometheus.MustNewConstMetric(c.events, prometheus.GaugeValue, float64(s.Events), s.Stream)
		ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.GaugeValue, float64(s.Bytes), s.Stream)
	}
}
