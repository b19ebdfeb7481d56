package api

import "sync/atomic"

// budget is a number of bytes that requests take and give back, so that
// what they hold together stays bounded. Safe for concurrent use.
type budget struct {
	max  int64
	used atomic.Int64
}

// take takes n bytes, if they fit.
func (b *budget) take(n int64) bool {
	for {
		used := b.used.Load()
		if used+n > b.max {
			return false
		}
		if b.used.CompareAndSwap(used, used+n) {
			return true
		}
	}
}

// give gives back n bytes taken before.
func (b *budget) give(n int64) { b.used.Add(-n) }
