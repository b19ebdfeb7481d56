package api

import (
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/goeventstream/eventstream/internal/clock"
)

// TestAddressLimiterBounded: however many addresses bring new ids, the
// limiter remembers at most maxTrackedAddresses a generation, and forgets
// an address a minute or two after it was last heard from (its bucket is
// full again by then).
func TestAddressLimiterBounded(t *testing.T) {
	fake := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	l := newAddressLimiter(1, time.Minute, fake)
	addr := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}) }
	for i := range maxTrackedAddresses + 1000 {
		assert.Zero(t, l.take(addr(i)))
	}
	assert.Equal(t, maxTrackedAddresses, l.tracked(), "a full table remembers no more")
	assert.Positive(t, l.take(addr(0)), "a remembered address is limited")
	assert.Zero(t, l.take(addr(maxTrackedAddresses+10)), "one past the table is not: it fails open")

	fake.Advance(time.Minute)
	assert.Zero(t, l.take(addr(0)), "full again a minute later")
	fake.Advance(time.Minute)
	l.take(addr(1))
	assert.Equal(t, 2, l.tracked(), "the rest forgotten")
}
