// Package api serves the eventstreamd protocol over HTTP: it parses and
// validates requests, hands them to a stream.Store, and writes the replies
// and errors that docs/protocol.md describes. It also serves /healthz,
// /readyz and /metrics.
//
// A Server is an http.Handler, safe for concurrent use.
package api

import (
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
	"go.uber.org/zap"

	"github.com/goeventstream/eventstream/internal/auth"
	"github.com/goeventstream/eventstream/internal/clock"
	"github.com/goeventstream/eventstream/internal/metrics"
	"github.com/goeventstream/eventstream/internal/protocol"
	"github.com/goeventstream/eventstream/internal/stream"
)

// Limits bound what one request may carry.
type Limits struct {
	// MaxBodyBytes caps a request body.
	MaxBodyBytes int64
	// MaxEventsPerSync caps the events of one request.
	MaxEventsPerSync int
	// MaxEventBodyBytes caps one event's body, measured as sent: the bytes
	// of the JSON string between its quotes.
	MaxEventBodyBytes int
	// MaxReplyBytes is the most bytes of events a reply holds: the store's
	// stream.Config.PageBytes.
	MaxReplyBytes int
	// MaxInflightBytes bounds the memory of the syncs in progress: each
	// holds up to MaxBodyBytes and MaxReplyBytes until it is answered, an
	// upload MaxSnapshotBytes. A request that does not fit waits up to
	// MaxInflightWait for room, first come first served, then is answered
	// 503 server_busy.
	MaxInflightBytes int64
	// MaxInflightWait is how long a request waits for in-flight memory
	// before it is refused; 0 refuses at once.
	MaxInflightWait time.Duration
	// MaxSnapshotBytes caps a snapshot or desync dump: the store's
	// stream.Config.MaxSnapshotBytes.
	MaxSnapshotBytes int64
}

// DefaultLimits returns the protocol's default limits.
func DefaultLimits() Limits {
	return Limits{
		MaxBodyBytes:      protocol.DefaultMaxBodyBytes,
		MaxEventsPerSync:  protocol.DefaultMaxEventsPerSync,
		MaxEventBodyBytes: protocol.DefaultMaxEventBodyBytes,
		MaxReplyBytes:     1 << 20,
		MaxInflightBytes:  256 << 20,
		MaxInflightWait:   time.Second,
		MaxSnapshotBytes:  4 << 20,
	}
}

// Validate reports the first invalid limit, if any.
func (l Limits) Validate() error {
	switch {
	case l.MaxBodyBytes < 2:
		return errors.New("max body bytes must be at least 2")
	case l.MaxEventsPerSync < 1:
		return errors.New("max events per sync must be at least 1")
	case l.MaxEventBodyBytes < 0:
		return errors.New("max event body bytes must not be negative")
	case l.MaxReplyBytes < 1:
		return errors.New("max reply bytes must be at least 1")
	case l.MaxSnapshotBytes < 1:
		return errors.New("max snapshot bytes must be at least 1")
	case l.MaxInflightWait < 0:
		return errors.New("max in-flight wait must not be negative")
	case l.MaxInflightBytes < max(l.MaxBodyBytes+int64(l.MaxReplyBytes), l.MaxSnapshotBytes):
		return fmt.Errorf("max in-flight bytes must hold one sync and one snapshot: at least %d (max body bytes and page bytes, or max snapshot bytes)",
			max(l.MaxBodyBytes+int64(l.MaxReplyBytes), l.MaxSnapshotBytes))
	}
	return nil
}

// Config configures a Server.
type Config struct {
	// Store holds the streams. Required.
	Store stream.Store
	// Metrics records requests. Required.
	Metrics *metrics.Metrics
	// MetricsHandler serves /metrics. Nil serves no /metrics here (it is
	// served on a listener of its own).
	MetricsHandler http.Handler
	// Logger logs lifecycle events at info and each request at debug.
	// Nil means no logging.
	Logger *zap.Logger
	// Limits bound requests.
	Limits Limits
	// CORSOrigins are the origins that browsers may call from; "*" allows
	// any. Empty means "*".
	CORSOrigins []string
	// Push configures push connections; each zero field has its default.
	Push PushConfig
	// Auth, when set, verifies the token every request on a stream route
	// needs (docs/protocol.md, "Tokens"). Nil leaves every stream open.
	Auth *auth.Verifier
	// OpenPrefix, with Auth, keeps the streams whose name starts with it
	// open: they need no token. Empty keeps none open.
	OpenPrefix string
	// Admission limits the ids new to their stream, and the tokens with a
	// wrong signature, per source address. The zero value limits none.
	Admission AdmissionConfig
	// Clock tells the time of push connections: when their streams are
	// read and they are pinged. Nil means clock.Real(); tests pass the
	// store's fake clock.
	Clock clock.Clock
}

// Server is the HTTP face of eventstreamd.
type Server struct {
	store      stream.Store
	metrics    *metrics.Metrics
	log        *zap.Logger
	limits     Limits
	cors       cors
	router     chi.Router
	draining   atomic.Bool
	date       dateHeader
	inflight   *budget // the bytes the requests in progress may hold
	clock      clock.Clock
	push       *pusher
	auth       *auth.Verifier // nil: auth off
	openPrefix string
	proxies    proxies         // where requests come from, when bySource
	bySource   bool            // a limit needs the source address of requests
	limit      *addressLimiter // nil: new ids are not limited by address
	badSigs    *addressLimiter // nil: tokens with a wrong signature are not limited by address
	allBadSigs *addressLimiter // nil: nor all together (its one key is anyAddress)
	good       *goodSources    // nil: no address is exempt from allBadSigs

	sweepFailures atomic.Int64 // in a row, since the last sweep that succeeded
}

// New returns a Server for cfg.
func New(cfg Config) (*Server, error) {
	switch {
	case cfg.Store == nil:
		return nil, errors.New("api: Config.Store is required")
	case cfg.Metrics == nil:
		return nil, errors.New("api: Config.Metrics is required")
	}
	if err := cfg.Limits.Validate(); err != nil {
		return nil, err
	}
	if err := cfg.Push.Validate(); err != nil {
		return nil, err
	}
	s := &Server{
		store:      cfg.Store,
		metrics:    cfg.Metrics,
		log:        cfg.Logger,
		limits:     cfg.Limits,
		cors:       newCORS(cfg.CORSOrigins),
		auth:       cfg.Auth,
		openPrefix: cfg.OpenPrefix,
	}
	s.clock = cfg.Clock
	if s.clock == nil {
		s.clock = clock.Real()
	}
	s.inflight = newBudget(cfg.Limits.MaxInflightBytes, cfg.Limits.MaxInflightWait)
	cfg.Push = cfg.Push.withDefaults()
	s.push = &pusher{srv: s, cfg: cfg.Push, streams: map[string]*pushStream{}, spectators: map[string]int64{}}
	if s.log == nil {
		s.log = zap.NewNop()
	}

	r := chi.NewRouter()
	// instrument is the last to pass a request on: chi sets the route's
	// pattern on the request instrument has.
	r.Use(s.recoverer, s.commonHeaders, s.instrument)
	s.proxies = cfg.Admission.TrustedProxies
	if s.limit = newAddressLimiter(cfg.Admission.NewClientsPerAddressPerMinute, time.Minute, cfg.Admission.Clock); s.limit != nil {
		s.store = admittingStore{Store: cfg.Store, limit: s.limit} // ServeHTTP gives it the source
	}
	if s.auth != nil {
		s.badSigs = newAddressLimiter(cfg.Admission.BadSignaturesPerAddressPerMinute, time.Minute, cfg.Admission.Clock)
		s.allBadSigs = newAddressLimiter(cfg.Admission.BadSignaturesPerSecond, time.Second, cfg.Admission.Clock)
		if s.badSigs != nil && s.allBadSigs != nil {
			s.good = newGoodSources(cfg.Admission.Clock)
		}
	}
	s.bySource = s.limit != nil || s.badSigs != nil
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, errorf(protocol.CodeNotFound,
			"no such endpoint; a sync is GET or POST /{stream}/{privateId}/{lastKnownTick}"))
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		// Every route answers the standard methods itself (so a refused one
		// is counted under its route); chi cannot route other tokens.
		w.Header().Set("Allow", allowed(r.URL.Path))
		s.writeError(w, r, errorf(protocol.CodeMethodNotAllowed,
			"method %s is not allowed here", r.Method))
	})
	// Every route answers every method itself, so that a refused method is
	// counted under its route.
	r.HandleFunc("/healthz", s.opsRoute(http.HandlerFunc(s.healthz)))
	r.HandleFunc("/readyz", s.opsRoute(http.HandlerFunc(s.readyz)))
	if cfg.MetricsHandler != nil {
		r.HandleFunc("/metrics", s.opsRoute(cfg.MetricsHandler))
	}
	r.HandleFunc("/{stream}/{client}/{tick}", s.syncRoute)
	r.HandleFunc("/{stream}/snapshot", s.route(readMethods, s.guard(s.getSnapshot), http.MethodGet, http.MethodHead))
	r.HandleFunc("/{stream}/desyncs", s.route(readMethods, s.guard(s.getDesyncs), http.MethodGet, http.MethodHead))
	// A dump's path and an upload's may be the same (a private id
	// "desyncs"): these routes are by method, so that chi finds the other.
	for pattern, methods := range map[string]map[string]http.HandlerFunc{
		"/{stream}/desyncs/{tick}/{id}":      {http.MethodGet: s.getDump, http.MethodHead: s.getDump},
		"/{stream}/{client}/snapshot/{tick}": {http.MethodPut: s.putSnapshot},
		"/{stream}/{client}/dump/{tick}":     {http.MethodPut: s.putDump},
	} {
		for method, h := range methods {
			r.MethodFunc(method, pattern, s.guard(s.playersOnly(h)))
		}
		r.Options(pattern, func(w http.ResponseWriter, r *http.Request) { preflight(w, allowed(r.URL.Path)) })
	}
	s.router = r
	return s, nil
}

const opsMethods = "GET, HEAD"

// opsRoute serves h for GET and HEAD, and 405 for any other method.
func (s *Server) opsRoute(h http.Handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			h.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Allow", opsMethods)
		s.writeError(w, r, errorf(protocol.CodeMethodNotAllowed,
			"method %s is not allowed here; use GET or HEAD", r.Method))
	}
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.router.ServeHTTP(w, s.ready(r))
}

// Drain makes /readyz answer 503 from now on, so that load balancers stop
// sending requests before the server shuts down.
func (s *Server) Drain() { s.draining.Store(true) }

// ClosePush closes every push connection with "going away" (their clients
// reconnect, to another replica) and waits for their handlers; new
// upgrades are refused. http.Server.Shutdown does not wait for them.
func (s *Server) ClosePush() { s.push.close() }

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, []byte(`{"status":"ok"}`+"\n"))
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.draining.Load() {
		writeJSON(w, http.StatusServiceUnavailable, []byte(`{"status":"draining"}`+"\n"))
		return
	}
	if err := s.store.Ping(r.Context()); err != nil {
		s.log.Warn("store not ready", zap.Error(err))
		writeJSON(w, http.StatusServiceUnavailable, []byte(`{"status":"store_unavailable"}`+"\n"))
		return
	}
	writeJSON(w, http.StatusOK, []byte(`{"status":"ok"}`+"\n"))
}
