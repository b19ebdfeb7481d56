package stream

import (
	"sort"
	"sync"
)

// tailCache keeps, per stream, the recent sealed ticks a replica has read
// from Redis. Ticks below a t the server issued are final, so the cache
// never goes stale within an epoch; a sync then asks Redis only for what
// follows it. It is an optimisation: a miss costs one read of sealed ticks.
//
// Its memory is bounded: the tails together take at most maxBytes, streams
// evicted at random past it, and a tail keeps at most two pages, its
// newest ticks (a longer one could never serve a reply from its start).
// Safe for concurrent use.
type tailCache struct {
	maxBytes      int64 // what all tails may take; 0 caches nothing
	maxTailEvents int
	maxTailBytes  int

	mu      sync.Mutex
	total   int64 // the size of every tail
	streams map[string]*streamTail
}

// newTailCache returns a cache of at most maxBytes for replies of at most
// page events and pageBytes bytes.
func newTailCache(maxBytes int64, page, pageBytes int) *tailCache {
	return &tailCache{maxBytes: maxBytes, maxTailEvents: 2 * page, maxTailBytes: 2 * pageBytes,
		streams: make(map[string]*streamTail)}
}

// streamTail is the events of the ticks [from, sealed) of one epoch of a
// stream, each encoded as in a reply and preceded by a comma.
type streamTail struct {
	epoch  string
	from   int64
	sealed int64
	ticks  []int64 // the tick of each event
	ends   []int   // where each event ends in buf
	buf    []byte
}

// tailEventOverhead is what a tail holds per event beside its bytes.
const tailEventOverhead = 16

// size is what the tail takes of the cache's budget.
func (t *streamTail) size() int64 { return int64(len(t.buf) + tailEventOverhead*len(t.ticks)) }

// tailHit is the part of a reply that a tail holds: the events of the
// ticks [from, sealed) of epoch that follow the tick asked for, n of them.
// The zero tailHit is a miss: its epoch matches no stream.
type tailHit struct {
	events []byte // as in SyncResult.Events
	n      int
	epoch  string
	from   int64
	sealed int64
}

// bytes returns the size of the hit's events and the comma that joins
// the script's events to them: what they take of the page.
func (h tailHit) bytes() int {
	if h.n == 0 {
		return 0
	}
	return len(h.events) + 1
}

// lookup appends to dst the cached events of stream from tick from on, if
// the cache holds from and they take less than a page of limit events and
// limitBytes bytes; otherwise it returns the zero tailHit.
func (c *tailCache) lookup(dst []byte, stream string, from int64, limit, limitBytes int) tailHit {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.streams[stream]
	if t == nil || from < t.from || from >= t.sealed {
		return tailHit{}
	}
	i := searchTicks(t.ticks, from)
	hit := tailHit{n: len(t.ticks) - i, epoch: t.epoch, from: t.from, sealed: t.sealed}
	start := 0
	if i > 0 {
		start = t.ends[i-1]
	}
	if hit.n >= limit || len(t.buf)-start >= limitBytes {
		return tailHit{}
	}
	if hit.n > 0 {
		hit.events = append(dst, t.buf[start+1:]...) // without the leading comma
	}
	return hit
}

// store records the events of a reply: the ticks [from, sealed) of epoch,
// events as in SyncResult.Events.
func (c *tailCache) store(stream, epoch string, from, sealed int64, events []byte) {
	if sealed <= from || c.maxBytes == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.streams[stream]
	if t != nil {
		c.total -= t.size()
	}
	switch {
	case t != nil && t.epoch == epoch && from <= t.sealed && sealed > t.sealed:
		// It extends the tail: keep the ticks it does not hold yet.
		t.appendEvents(events, t.sealed)
		t.sealed = sealed
	case t != nil && t.epoch == epoch && sealed <= t.sealed:
		// Nothing new.
	default:
		t = &streamTail{epoch: epoch, from: from, sealed: sealed}
		t.appendEvents(events, from)
		c.streams[stream] = t
	}
	if !t.trim(c.maxTailEvents, c.maxTailBytes) || t.size() > c.maxBytes {
		delete(c.streams, stream) // one tick larger than the cache allows
		return
	}
	c.total += t.size()
	for name := range c.streams { // evict at random until the tails fit
		if c.total <= c.maxBytes {
			break
		}
		if name != stream {
			c.total -= c.streams[name].size()
			delete(c.streams, name)
		}
	}
}

// drop forgets the tail of stream, which expired: a stream created anew
// has another epoch, and the tail could only wait for eviction.
func (c *tailCache) drop(stream string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t := c.streams[stream]; t != nil {
		c.total -= t.size()
		delete(c.streams, stream)
	}
}

// appendEvents adds the events of a reply whose tick is at least min.
func (t *streamTail) appendEvents(events []byte, min int64) {
	for _, e := range splitEvents(events) {
		if e.t < min {
			continue
		}
		t.buf = append(append(t.buf, ','), e.raw...)
		t.ticks = append(t.ticks, e.t)
		t.ends = append(t.ends, len(t.buf))
	}
}

// trim drops the oldest ticks once the tail holds more than maxEvents
// events or maxBytes bytes, keeping about half of each. It reports false
// when even the newest tick alone is larger than that.
func (t *streamTail) trim(maxEvents, maxBytes int) bool {
	if len(t.ticks) <= maxEvents && len(t.buf) <= maxBytes {
		return true
	}
	// The first event of the newest half, by count and by bytes.
	i := max(len(t.ticks)-maxEvents/2,
		sort.Search(len(t.ends), func(i int) bool { return len(t.buf)-t.ends[i] <= maxBytes/2 })+1)
	if i >= len(t.ticks) {
		i = len(t.ticks) - 1
	}
	keep := searchTicks(t.ticks, t.ticks[i]) // at a tick boundary
	if keep > 0 {
		cut := t.ends[keep-1]
		t.from = t.ticks[keep]
		t.buf = append([]byte(nil), t.buf[cut:]...)
		t.ticks = append([]int64(nil), t.ticks[keep:]...)
		ends := make([]int, len(t.ends)-keep)
		for i, e := range t.ends[keep:] {
			ends[i] = e - cut
		}
		t.ends = ends
	}
	return len(t.ticks) <= maxEvents && len(t.buf) <= maxBytes
}

func searchTicks(ticks []int64, t int64) int {
	lo, hi := 0, len(ticks)
	for lo < hi {
		m := (lo + hi) / 2
		if ticks[m] < t {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}
