package stream

import (
	"container/heap"
	"sync"
	"time"
)

// deadlineQueue orders the moments at which a client may have gone silent
// or a stream may have expired, so that a Sweep looks only at what is due
// instead of scanning every client. Entries are checked lazily: a client
// heard from since its entry was queued is queued again for its new
// deadline when the entry comes due. Each client and stream has at most
// one entry (memClient.queued, memStream.expiryQueued).
type deadlineQueue struct {
	mu sync.Mutex
	h  deadlineHeap
}

type deadline struct {
	at     time.Time
	stream *memStream
	client *memClient // nil for a stream's expiry
}

func (q *deadlineQueue) push(at time.Time, s *memStream, c *memClient) {
	q.mu.Lock()
	defer q.mu.Unlock()
	heap.Push(&q.h, deadline{at: at, stream: s, client: c})
}

// popDue removes and returns the entries due at now, earliest first.
func (q *deadlineQueue) popDue(now time.Time) []deadline {
	q.mu.Lock()
	defer q.mu.Unlock()
	var due []deadline
	for len(q.h) > 0 && !q.h[0].at.After(now) {
		due = append(due, heap.Pop(&q.h).(deadline))
	}
	return due
}

type deadlineHeap []deadline

func (h deadlineHeap) Len() int           { return len(h) }
func (h deadlineHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h deadlineHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *deadlineHeap) Push(x any)        { *h = append(*h, x.(deadline)) }
func (h *deadlineHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	old[len(old)-1] = deadline{}
	*h = old[:len(old)-1]
	return x
}
