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

// held is in-flight memory taken from a budget, until it is released.
type held struct {
	b *budget
	n int64
}

// hold takes n bytes as take does, and reports whether it got them.
func (b *budget) hold(ctx context.Context, n int64) (held, bool) {
	if !b.take(ctx, n) {
		return held{}, false
	}
	return held{b, n}, true
}

// tryHold takes n bytes if they are free now, and reports whether it got
// them.
func (b *budget) tryHold(n int64) (held, bool) {
	if !b.sem.TryAcquire(n) {
		return held{}, false
	}
	return held{b, n}, true
}

// trim gives back what h holds past used bytes, once they are known.
func (h *held) trim(used int64) {
	if used < h.n {
		h.b.give(h.n - used)
		h.n = used
	}
}

// release gives back all that h holds.
func (h *held) release() {
	if h.n > 0 {
		h.b.give(h.n)
	}
	h.n = 0
}

// errBusy is the answer to a request that got no in-flight memory.
func errBusy() *apiError {
	ae := errorf(protocol.CodeServerBusy,
		"the server holds as many requests in progress as its memory allows; try again")
	ae.RetryAfter = 1
	return ae
}

// reserve takes n bytes of in-flight memory for request r, or answers it
// 503 server_busy and reports false.
func (s *Server) reserve(w http.ResponseWriter, r *http.Request, n int64) (held, bool) {
	mem, ok := s.inflight.hold(r.Context(), n)
	if !ok {
		s.writeError(w, r, errBusy())
	}
	return mem, ok
}
