package api

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/goeventstream/eventstream/internal/auth"
	"github.com/goeventstream/eventstream/internal/clock"
	"github.com/goeventstream/eventstream/internal/metrics"
	"github.com/goeventstream/eventstream/internal/protocol"
	"github.com/goeventstream/eventstream/internal/stream"
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

// TestGoodSourcesBounded: the addresses that presented a valid token are
// at most maxTrackedAddresses; a full set drops the expired to take a new
// one, at most once a second, and takes none while it stays full; an
// address is good until its latest token's time.
func TestGoodSourcesBounded(t *testing.T) {
	fake := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	g := newGoodSources(fake)
	addr := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}) }
	soon, later := fake.Now().Add(time.Minute), fake.Now().Add(time.Hour)
	g.add(addr(0), later)
	g.add(addr(0), soon) // an older token does not shorten it
	for i := 1; i < maxTrackedAddresses; i++ {
		g.add(addr(i), soon)
	}
	g.add(addr(-1), later)
	assert.False(t, g.holds(addr(-1)), "a full set takes no more")
	assert.True(t, g.holds(addr(1)))

	fake.Advance(time.Minute)
	assert.False(t, g.holds(addr(1)), "its token expired")
	g.add(addr(-1), later)
	assert.True(t, g.holds(addr(-1)), "the expired dropped for it")
	assert.True(t, g.holds(addr(0)))
	assert.Len(t, g.until, 2)
}

// TestGoodSourceUntracked: an address that presented a valid token is
// held by the limit of all addresses together again while the limiter of
// its own cannot remember it (its table full of others' this minute):
// else nothing would hold what it forges.
func TestGoodSourceUntracked(t *testing.T) {
	fake := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	secret := []byte("an HS256 secret of 32 bytes, ok!")
	v, err := auth.New(auth.Config{Secret: secret, Clock: fake})
	require.NoError(t, err)
	scfg := stream.DefaultConfig()
	scfg.Clock = fake
	store, err := stream.NewMemoryStore(scfg)
	require.NoError(t, err)
	m, err := metrics.New(metrics.Config{Registerer: prometheus.NewRegistry(), Streams: store, MaxStreamSeries: 10, Version: "test"})
	require.NoError(t, err)
	s, err := New(Config{Store: store, Metrics: m, Limits: DefaultLimits(), Auth: v, Clock: fake, Admission: AdmissionConfig{
		BadSignaturesPerAddressPerMinute: 3, BadSignaturesPerSecond: 2, Clock: fake}})
	require.NoError(t, err)
	player := netip.MustParseAddr("198.51.100.1")
	check := func(jti string, key []byte) error {
		tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "p1", "stream": "s", "jti": jti,
			"exp": fake.Now().Add(time.Hour).Unix()}).SignedString(key)
		require.NoError(t, err)
		_, err = s.checkSignature(player, tok)
		return err
	}
	forged := []byte("not the server's secret, 32 bytes")
	drain := func() {
		for s.allBadSigs.take(anyAddress) == 0 {
		}
	}

	require.NoError(t, check("valid", secret))
	drain()
	require.ErrorIs(t, check("f0", forged), auth.ErrInvalid, "checked: its own bucket holds it")

	fake.Advance(time.Minute)
	drain()
	for i := range maxTrackedAddresses { // others fill its limiter's new generation first
		s.badSigs.take(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}))
	}
	checks := v.SignatureChecks()
	for i := range 5 {
		var ae *apiError
		require.ErrorAs(t, check(fmt.Sprint("f", i+1), forged), &ae)
		assert.Equal(t, protocol.CodeRateLimited, ae.Code)
		assert.Contains(t, ae.Message, "-max-bad-signatures-per-second")
	}
	assert.Equal(t, checks, v.SignatureChecks(), "none checked")
}
