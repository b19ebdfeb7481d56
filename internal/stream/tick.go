package stream

// tickAt is the protocol's tick formula: the tick in progress of a stream
// created at createdMs with rate ticks per second, at nowMs (Unix
// milliseconds), is 1 + the whole ticks elapsed since creation, and never
// less than last, a tick already issued (a clock that steps back cannot
// reopen a tick). Tick 0 holds only the stream's "_a".
//
// Mirrored in lua/prelude.lua (tick_at): both stores use milliseconds, so
// that they agree to the tick.
func tickAt(createdMs, nowMs int64, rate int, last int64) int64 {
	t := int64(1)
	if nowMs > createdMs {
		t += (nowMs - createdMs) * int64(rate) / 1000
	}
	return max(t, last)
}
