package stream

import "sync"

// tailCache keeps, per stream, the recent sealed ticks a replica has read
// from Redis. Ticks below a t the server issued are final, so the cache
// never goes stale within an epoch; a sync then asks Redis only for what
// follows it. It is an optimisation: a miss costs one read of sealed ticks.
// Safe for concurrent use.
type tailCache struct {
	mu      sync.Mutex
	streams map[string]*streamTail
}

const (
	maxTailStreams = 4096 // streams cached per replica
	maxTailEvents  = 8192 // events cached per stream, the newest kept
)

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
	if sealed <= from {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.streams == nil {
		c.streams = make(map[string]*streamTail)
	}
	t := c.streams[stream]
	switch {
	case t != nil && t.epoch == epoch && from <= t.sealed && sealed > t.sealed:
		// It extends the tail: keep the ticks it does not hold yet.
		t.appendEvents(events, t.sealed)
		t.sealed = sealed
	case t != nil && t.epoch == epoch && sealed <= t.sealed:
		return // nothing new
	default:
		if t == nil && len(c.streams) >= maxTailStreams {
			for k := range c.streams { // evict one at random
				delete(c.streams, k)
				break
			}
		}
		t = &streamTail{epoch: epoch, from: from, sealed: sealed}
		t.appendEvents(events, from)
		c.streams[stream] = t
	}
	t.trim()
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

// trim drops the oldest ticks once the tail holds too many events.
func (t *streamTail) trim() {
	if len(t.ticks) <= maxTailEvents {
		return
	}
	keep := searchTicks(t.ticks, t.ticks[len(t.ticks)-maxTailEvents/2])
	if keep == 0 {
		return // one huge tick: kept whole
	}
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
