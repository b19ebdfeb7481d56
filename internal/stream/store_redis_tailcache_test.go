package stream

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/goeventstream/eventstream/internal/protocol"
)

// encode returns events as a store's reply holds them, one per tick given,
// with bodies full of JSON's special characters.
func encode(ticks ...int64) []byte {
	var b []byte
	for _, t := range ticks {
		b = appendEvent(b, t, "m", "1", protocol.AppendString(nil, fmt.Sprintf(`x{"}\%d`, t)))
	}
	if len(b) == 0 {
		return nil
	}
	return b[1:] // without the leading comma
}

func TestSplitEventsHandlesAnyBody(t *testing.T) {
	evs := splitEvents(encode(3, 3, 17))
	require.Len(t, evs, 3)
	assert.Equal(t, []int64{3, 3, 17}, []int64{evs[0].t, evs[1].t, evs[2].t})
	assert.True(t, strings.HasSuffix(string(evs[2].raw), `"body":"x{\"}\\17"}`), "%s", evs[2].raw)
	assert.Empty(t, splitEvents(nil))
}

func TestTailCacheServesSealedTicksOnly(t *testing.T) {
	c := newTailCache(1<<30, 4096, 1<<20)
	c.store("s", "e1", 5, 9, encode(5, 6, 6, 8)) // ticks [5, 9)

	tests := []struct {
		name  string
		from  int64
		limit int
		want  []byte
		n     int
		ok    bool
	}{
		{name: "from the start", from: 5, limit: 100, want: encode(5, 6, 6, 8), n: 4, ok: true},
		{name: "from the middle", from: 7, limit: 100, want: encode(8), n: 1, ok: true},
		{name: "an empty sealed tail", from: 8, limit: 100, want: encode(8), n: 1, ok: true},
		{name: "before the tail", from: 4, limit: 100},
		{name: "at sealed: nothing cached", from: 9, limit: 100},
		{name: "more than a page", from: 5, limit: 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hit := c.lookup(nil, "s", tt.from, tt.limit, 1<<30)
			if !tt.ok {
				require.Equal(t, tailHit{}, hit, "a miss")
				return
			}
			assert.Equal(t, string(tt.want), string(hit.events))
			assert.Equal(t, tt.n, hit.n)
			assert.Equal(t, "e1", hit.epoch)
			assert.Equal(t, int64(5), hit.from)
			assert.Equal(t, int64(9), hit.sealed)
		})
	}

	// A later reply that overlaps extends it with the ticks it lacks.
	c.store("s", "e1", 8, 12, encode(8, 10))
	hit := c.lookup(nil, "s", 7, 100, 1<<30)
	require.Equal(t, "e1", hit.epoch)
	assert.Equal(t, string(encode(8, 10)), string(hit.events), "tick 8 is not held twice")
	assert.Equal(t, 2, hit.n)
	assert.Equal(t, int64(12), hit.sealed)

	// An older reply changes nothing; another epoch replaces the tail.
	c.store("s", "e1", 5, 7, encode(5))
	assert.Equal(t, int64(12), c.lookup(nil, "s", 7, 100, 1<<30).sealed)
	c.store("s", "e2", 0, 2, encode(0))
	assert.Equal(t, "e2", c.lookup(nil, "s", 0, 100, 1<<30).epoch)
}

func TestTailCacheKeepsTheNewestEvents(t *testing.T) {
	c := newTailCache(1<<30, 4096, 1<<20)
	ticks := make([]int64, c.maxTailEvents+10)
	for i := range ticks {
		ticks[i] = int64(i)
	}
	c.store("s", "e", 0, int64(len(ticks)), encode(ticks...))
	assert.Equal(t, tailHit{}, c.lookup(nil, "s", 0, 1<<30, 1<<30), "the oldest ticks were dropped")
	last := int64(len(ticks) - 1)
	hit := c.lookup(nil, "s", last, 1<<30, 1<<30)
	require.Equal(t, "e", hit.epoch)
	assert.Equal(t, 1, hit.n)
	assert.Equal(t, string(encode(last)), string(hit.events))
	assert.Equal(t, int64(len(ticks)-c.maxTailEvents/2), hit.from)
}

// TestTailCacheIsBoundedInBytes fills the cache with far more than its
// budget, in tails of every size: what it holds never passes the budget.
func TestTailCacheIsBoundedInBytes(t *testing.T) {
	const budget = 256 << 10
	c := newTailCache(budget, 4096, 64<<10)
	big := strings.Repeat("b", 16<<10)
	for i := range 500 {
		var events []byte
		n := 1 + i%20
		for k := range n {
			events = appendEvent(events, int64(k), "m", "1", protocol.AppendString(nil, big[:1+(i*k*997)%len(big)]))
		}
		c.store(fmt.Sprint("s", i%97), "e", 0, int64(n), events[1:])
		var sum int64
		for _, tail := range c.streams {
			sum += tail.size()
			require.LessOrEqual(t, len(tail.buf), c.maxTailBytes, "a tail keeps at most two pages")
		}
		require.Equal(t, sum, c.total, "the running total is the tails' sizes")
		require.LessOrEqual(t, c.total, int64(budget))
	}
	require.NotEmpty(t, c.streams, "the cache still caches")

	// One tick larger than a tail may be is not cached at all.
	huge := appendEvent(nil, 1, "m", "1", protocol.AppendString(nil, strings.Repeat("h", 200<<10)))
	c.store("huge", "e", 1, 2, huge[1:])
	assert.Nil(t, c.streams["huge"])
	assert.Equal(t, tailHit{}, c.lookup(nil, "huge", 1, 4096, 1<<20))
}
