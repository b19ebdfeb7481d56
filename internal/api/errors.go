package api

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"

	"go.uber.org/zap"

	"github.com/goeventstream/eventstream/internal/protocol"
	"github.com/goeventstream/eventstream/internal/stream"
)

// apiError is an error answered to the client: a status, a code from the
// protocol and a message that says what was wrong and what is allowed. A
// message never repeats a private id.
type apiError struct {
	status     int
	code       string
	message    string
	retryAfter int    // seconds, for a Retry-After header; 0 for none
	challenge  string // a 401's WWW-Authenticate header
}

func (e *apiError) Error() string { return e.code + ": " + e.message }

func errorf(status int, code, format string, args ...any) *apiError {
	return &apiError{status: status, code: code, message: fmt.Sprintf(format, args...)}
}

// toAPIError maps an error from the stream package to the answer. It is the
// one place where domain errors meet HTTP statuses.
func toAPIError(err error) *apiError {
	var ae *apiError
	var rl *stream.RateLimitError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.Is(err, stream.ErrServerFull):
		return errorf(http.StatusServiceUnavailable, protocol.CodeServerFull, "%v; try again later", err)
	case errors.Is(err, stream.ErrStreamFull):
		return errorf(http.StatusConflict, protocol.CodeStreamFull, "%v", err)
	case errors.As(err, &rl):
		ae := errorf(http.StatusTooManyRequests, protocol.CodeRateLimited, "%v", err)
		ae.retryAfter = max(1, int(math.Ceil(rl.Wait.Seconds())))
		return ae
	case errors.Is(err, stream.ErrBadReport):
		return errorf(http.StatusBadRequest, protocol.CodeBadRequest, "%v", err)
	case errors.Is(err, stream.ErrNotFound):
		return errorf(http.StatusNotFound, protocol.CodeNotFound, "%v", err)
	case errors.Is(err, stream.ErrSnapshotMismatch):
		return errorf(http.StatusConflict, protocol.CodeSnapshotMismatch,
			"%v; nothing was stored", err)
	case errors.Is(err, stream.ErrEpochMismatch):
		return errorf(http.StatusConflict, protocol.CodeEpochMismatch, "%v", err)
	case errors.Is(err, stream.ErrTickFull):
		ae := errorf(http.StatusTooManyRequests, protocol.CodeRateLimited, "%v", err)
		ae.retryAfter = 1
		return ae
	case errors.Is(err, stream.ErrOutcomeUnknown):
		return errorf(http.StatusServiceUnavailable, protocol.CodeStoreUnknown,
			"the store did not answer in time; the request may have been applied: retry it with the same batch id")
	case errors.Is(err, stream.ErrUnavailable):
		return errorf(http.StatusServiceUnavailable, protocol.CodeStoreUnavailable, "the store is unavailable; nothing was applied, try again")
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return errorf(http.StatusServiceUnavailable, protocol.CodeStoreUnavailable, "the request was cancelled before it was applied")
	default:
		return errorf(http.StatusInternalServerError, protocol.CodeInternal, "internal error")
	}
}

// writeError answers err as JSON and counts the rejection. Unexpected
// errors from below are logged here, once; errors the api made itself are
// answers, not failures, and are not logged.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	ae := toAPIError(err)
	switch {
	case errors.Is(err, context.Canceled):
		// The client went away: nothing failed on this side.
		s.log.Debug("request cancelled", zap.String("route", routePattern(r)))
	case ae.status >= 500 && ae != err && ae.code != protocol.CodeServerFull:
		s.log.Error("request failed", zap.String("route", routePattern(r)),
			zap.String("code", ae.code), zap.Error(err))
	}
	s.metrics.Rejected(ae.code)
	if ae.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(ae.retryAfter))
	}
	if ae.challenge != "" {
		w.Header().Set("WWW-Authenticate", ae.challenge)
	}
	b := make([]byte, 0, 64+len(ae.message))
	b = append(b, `{"error":{"code":`...)
	b = protocol.AppendString(b, ae.code)
	b = append(b, `,"message":`...)
	b = protocol.AppendString(b, ae.message)
	b = append(b, "}}\n"...)
	writeJSON(w, ae.status, b)
}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body) // the client has gone; nothing to do
}
