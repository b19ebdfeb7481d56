package stream

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// The fair-use rule: each client of a stream has two token buckets, one of
// syncs and one of events, filled at Config.MaxSyncsPerSecond and
// Config.MaxEventsPerSecond up to their bursts. A sync takes one token of
// the first, and its events one each of the second; a request that finds
// too few is refused with a *RateLimitError and takes none. A rate of 0
// turns its bucket off.

// refill returns the tokens of a bucket that held tokens at lastMs, at
// nowMs (Unix ms), filled at rate a second up to burst. Mirrored in
// lua/prelude.lua (refill).
func refill(tokens float64, lastMs, nowMs int64, rate float64, burst float64) float64 {
	if nowMs > lastMs {
		tokens += float64(nowMs-lastMs) * rate / 1000
	}
	return math.Min(tokens, burst)
}

// ErrRateLimited means a client asked faster than its fair share; a
// *RateLimitError says when it may ask again (code rate_limited).
var ErrRateLimited = errors.New("the client asks faster than its fair share")

// RateLimitError is ErrRateLimited with the wait after which the request
// would be taken.
type RateLimitError struct {
	What string        // "syncs", "events", "new clients" or "stream bytes"
	Wait time.Duration // until the bucket holds enough
}

func (e *RateLimitError) Error() string {
	return fmt.Sprintf("%v: too many %s per second; retry in %v", ErrRateLimited, e.What, e.Wait.Round(time.Millisecond))
}

func (e *RateLimitError) Is(target error) bool { return target == ErrRateLimited }

// spend returns the tokens left after cost, or tokens when the bucket is
// off (rate 0): a bucket turned on later starts full, not deep in debt.
// Mirrored in the buckets' part of lua/sync.lua.
func spend(tokens, cost, rate float64) float64 {
	if rate <= 0 {
		return tokens
	}
	return tokens - cost
}

// syncBurst is the most syncs a client may make at once: a second's worth,
// and at least one.
func (c Config) syncBurst() float64 { return math.Max(c.MaxSyncsPerSecond, 1) }

// waitFor returns how long a bucket holding tokens, filled at rate a
// second, takes to hold need.
func waitFor(tokens, need, rate float64) time.Duration {
	return time.Duration(math.Ceil((need-tokens)/rate*1000)) * time.Millisecond
}

// rateLimited returns nil, or the error for a client whose buckets hold
// syncs and events tokens, asking for one sync of n events.
func (c Config) rateLimited(syncs, events float64, n int) error {
	switch {
	case c.MaxSyncsPerSecond > 0 && syncs < 1:
		return &RateLimitError{What: "syncs", Wait: waitFor(syncs, 1, c.MaxSyncsPerSecond)}
	case c.MaxEventsPerSecond > 0 && n > 0 && events < float64(n):
		return &RateLimitError{What: "events", Wait: waitFor(events, float64(n), c.MaxEventsPerSecond)}
	}
	return nil
}

// The stream's rule: beside its clients' buckets, each stream has two of
// its own, so that many ids cannot do together what one may not: one of
// the bytes of the events clients post (as stored), filled at
// Config.MaxStreamBytesPerSecond up to streamByteBurst, and one of new
// private ids, filled at Config.MaxJoinsPerSecond up to joinBurst. A new
// stream's are full. A request that finds too few is refused with a
// *RateLimitError and takes none; a rate of 0 turns its bucket off.
// Mirrored in the stream buckets' part of lua/sync.lua.

// streamByteBurst is the most bytes a stream takes at once: a second's
// worth, and at least a page (Config.PageBytes), the most a tick holds.
func (c Config) streamByteBurst() float64 {
	return math.Max(c.MaxStreamBytesPerSecond, float64(c.PageBytes))
}

// joinBurst is the most new ids a stream takes at once: a second's worth,
// and at least a full stream (Config.MaxClientsPerStream), a game whose
// players all join at its start.
func (c Config) joinBurst() float64 {
	return math.Max(c.MaxJoinsPerSecond, float64(c.MaxClientsPerStream))
}

// streamLimited returns nil, or the error for a stream whose buckets hold
// bytes and joins tokens, asked to take size bytes of client events and,
// when isNew, a new id.
func (c Config) streamLimited(bytes, joins float64, size int64, isNew bool) error {
	switch {
	case c.MaxJoinsPerSecond > 0 && isNew && joins < 1:
		return &RateLimitError{What: "new clients", Wait: waitFor(joins, 1, c.MaxJoinsPerSecond)}
	case c.MaxStreamBytesPerSecond > 0 && size > 0 && bytes < float64(size):
		return &RateLimitError{What: "stream bytes", Wait: waitFor(bytes, float64(size), c.MaxStreamBytesPerSecond)}
	}
	return nil
}
