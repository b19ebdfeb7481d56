package api

import (
	"net/http"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"go.uber.org/zap"

	"github.com/goeventstream/eventstream/internal/protocol"
)

// commonHeaders sets the headers every reply carries.
func (s *Server) commonHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["Date"] = s.date.get()
		h.Set("Cache-Control", "no-store")
		s.cors.allowOrigin(h, r)
		next.ServeHTTP(w, r)
	})
}

// instrument counts, times and logs every request by its route pattern. It
// logs the stream but never the raw path, which holds a private id.
func (s *Server) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
		next.ServeHTTP(ww, r)
		d := time.Since(start)

		route := routePattern(r)
		status := ww.Status()
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
