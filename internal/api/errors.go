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

// apiError is an error answered to the client: a code from the protocol,
// whose HTTP status protocol.Status gives, and a message that says what was
// wrong and what is allowed. A message never repeats a private id.
type apiError struct {
	protocol.ErrorBody
	challenge string // a 401's WWW-Authenticate header
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

// status is the HTTP status of e's code.
func (e *apiError) status() int { return protocol.Status(e.Code) }

func errorf(code, format string, args ...any) *apiError {
	return &apiError{ErrorBody: protocol.ErrorBody{Code: code, Message: fmt.Sprintf(format, args...)}}
}

// toAPIError maps an error from the stream package to the answer. It is the
// one place where domain errors meet error codes (and so their statuses).
func toAPIError(err error) *apiError {
	var ae *apiError
	var rl *stream.RateLimitError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.Is(err, stream.ErrServerFull):
		return errorf(protocol.CodeServerFull, "%v; try again later", err)
	case errors.Is(err, stream.ErrStreamFull):
		return errorf(protocol.CodeStreamFull, "%v", err)
	case errors.As(err, &rl):
		ae := errorf(protocol.CodeRateLimited, "%v", err)
		ae.RetryAfter = max(1, int(math.Ceil(rl.Wait.Seconds())))
		return ae
	case errors.Is(err, stream.ErrBadReport):
		return errorf(protocol.CodeBadRequest, "%v", err)
	case errors.Is(err, stream.ErrNotFound):
		return errorf(protocol.CodeNotFound, "%v", err)
	case errors.Is(err, stream.ErrCheckpointBudget):
		ae := errorf(protocol.CodeServerBusy, "%v", err)
		ae.RetryAfter = 5
		return ae
	case errors.Is(err, stream.ErrForbidden):
		return errorf(protocol.CodeForbidden, "%v; nothing was stored", err)
	case errors.Is(err, stream.ErrSnapshotMismatch):
		return errorf(protocol.CodeSnapshotMismatch,
			"%v; nothing was stored", err)
	case errors.Is(err, stream.ErrEpochMismatch):
		return errorf(protocol.CodeEpochMismatch, "%v", err)
	case errors.Is(err, stream.ErrTickFull):
		ae := errorf(protocol.CodeRateLimited, "%v", err)
		ae.RetryAfter = 1
		return ae
	case errors.Is(err, stream.ErrOutcomeUnknown):
		return errorf(protocol.CodeStoreUnknown,
			"the store did not answer in time; the request may have been applied: retry it with the same batch id")
	case errors.Is(err, stream.ErrUnavailable):
		return errorf(protocol.CodeStoreUnavailable, "the store is unavailable; nothing was applied, try again")
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return errorf(protocol.CodeStoreUnavailable, "the request was cancelled before it was applied")
	default:
		return errorf(protocol.CodeInternal, "internal error")
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
	case ae.status() >= 500 && ae != err && ae.Code != protocol.CodeServerFull && ae.Code != protocol.CodeServerBusy:
		s.log.Error("request failed", zap.String("route", routePattern(r)),
			zap.String("code", ae.Code), zap.Error(err))
	}
	s.metrics.Rejected(ae.Code)
	if ae.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(ae.RetryAfter))
	}
	if ae.challenge != "" {
		w.Header().Set("WWW-Authenticate", ae.challenge)
	}
	b := protocol.AppendError(make([]byte, 0, 64+len(ae.Message)), ae.ErrorBody)
	b = append(b, '\n')
	writeJSON(w, ae.status(), b)
}

// jsonContentType is the Content-Type header of JSON replies, set without
// allocating it for each: net/http only reads a reply's header values.
var jsonContentType = []string{"application/json"}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header()["Content-Type"] = jsonContentType
	w.WriteHeader(status)
	_, _ = w.Write(body) // the client has gone; nothing to do
}
