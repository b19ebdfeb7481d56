package api

import (
	"context"
	"net/http"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/goeventstream/eventstream/internal/protocol"
)

// budget is a number of bytes that requests take and give back, so that
// what they hold together stays bounded. A request that does not fit may
// wait a little for others to give theirs back: a burst of syncs (a
// thousand players joining at once) is then served in turn instead of
// refused. Waiters are served first come, first served. Safe for
// concurrent use.
type budget struct {
	sem  *semaphore.Weighted
	wait time.Duration // the longest a request waits for room
}

func newBudget(max int64, wait time.Duration) *budget {
	return &budget{sem: semaphore.NewWeighted(max), wait: wait}
}

// take takes n bytes, waiting up to b.wait for them while ctx lasts, and
// reports whether it got them.
func (b *budget) take(ctx context.Context, n int64) bool {
	if b.sem.TryAcquire(n) {
		return true
	}
	if b.wait <= 0 {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, b.wait)
	defer cancel()
	return b.sem.Acquire(ctx, n) == nil
}

// give gives back n bytes taken before.
func (b *budget) give(n int64) { b.sem.Release(n) }

// reserve takes n bytes of in-flight memory for request r, or answers it
// 503 server_busy and reports false.
func (s *Server) reserve(w http.ResponseWriter, r *http.Request, n int64) bool {
	if s.inflight.take(r.Context(), n) {
		return true
	}
	ae := errorf(protocol.CodeServerBusy,
		"the server holds as many requests in progress as its memory allows; try again")
	ae.RetryAfter = 1
	s.writeError(w, r, ae)
	return false
}
