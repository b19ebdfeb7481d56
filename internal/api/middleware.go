package api

import (
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
	"go.uber.org/zap"

	"github.com/goeventstream/eventstream/internal/protocol"
)

// commonHeaders sets the headers every reply carries.
func (s *Server) commonHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["Date"] = s.date.get()
		h["Cache-Control"] = noStore
		s.cors.allowOrigin(h, r)
		next.ServeHTTP(w, r)
	})
}

// noStore is the Cache-Control header of every reply, set without
// allocating it for each (as jsonContentType).
var noStore = []string{"no-store"}

// instrument counts, times and logs every request by its route pattern. It
// logs the stream but never the raw path, which holds a private id.
func (s *Server) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := statusWriters.Get().(*statusWriter)
		sw.ResponseWriter = w
		next.ServeHTTP(sw, r)
		status := sw.status
		*sw = statusWriter{}
		statusWriters.Put(sw)
		d := time.Since(start)

		route := r.Pattern // chi's route pattern, as it set it on the request it routed
		if route == "" {
			route = routePattern(r)
		}
		if status == 0 {
			status = http.StatusOK
		}
		method := methodLabel(r.Method)
		s.metrics.ObserveRequest(route, method, status, d)
		if ce := s.log.Check(zap.DebugLevel, "request"); ce != nil {
			ce.Write(
				zap.String("route", route),
				zap.String("method", method),
				zap.String("stream", chi.URLParam(r, "stream")),
				zap.Int("status", status),
				zap.Duration("duration", d),
			)
		}
	})
}

// statusWriter keeps the status of a reply for instrument. It is pooled:
// nothing keeps a ResponseWriter past its handler's return. Hijack and
// Flush reach the connection's through Unwrap (http.ResponseController).
type statusWriter struct {
	http.ResponseWriter
	status int
}

var statusWriters = sync.Pool{New: func() any { return new(statusWriter) }}

// WriteHeader passes informational statuses but 101 Switching Protocols,
// and the first final status, which it keeps; later ones are dropped (as
// chi's middleware.WrapResponseWriter did).
func (w *statusWriter) WriteHeader(status int) {
	switch {
	case status >= 100 && status <= 199 && status != http.StatusSwitchingProtocols:
	case w.status != 0:
		return
	default:
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap returns the writer of the connection, for http.ResponseController.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// methodLabel bounds the "method" label to the standard methods: a client
// may send any token as a method, and labels must stay few and valid UTF-8.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace:
		return m
	}
	return "other"
}

// routePattern returns the route pattern that served r, or "unmatched".
func routePattern(r *http.Request) string {
	if rc := chi.RouteContext(r.Context()); rc != nil {
		if p := rc.RoutePattern(); p != "" {
			return p
		}
	}
	return "unmatched"
}

// recoverer turns a panic in a handler into a logged 500.
func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.Error("handler panicked", zap.String("route", routePattern(r)), zap.Any("panic", v), zap.Stack("stack"))
			s.writeError(w, r, errorf(protocol.CodeInternal, "internal error"))
		}()
		next.ServeHTTP(w, r)
	})
}

// dateHeader keeps the Date header of the current second. net/http would
// format it for every reply, which costs a busy server more than the rest
// of a small reply.
type dateHeader struct {
	v atomic.Pointer[dateValue]
}

type dateValue struct {
	sec    int64
	header []string
}

func (d *dateHeader) get() []string {
	now := time.Now()
	if v := d.v.Load(); v != nil && v.sec == now.Unix() {
		return v.header
	}
	v := &dateValue{sec: now.Unix(), header: []string{now.UTC().Format(http.TimeFormat)}}
	d.v.Store(v)
	return v.header
}
