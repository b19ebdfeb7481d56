package api

import (
	"context"
	"errors"
	"math"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/goeventstream/eventstream/internal/clock"
	"github.com/goeventstream/eventstream/internal/protocol"
	"github.com/goeventstream/eventstream/internal/stream"
)

// AdmissionConfig limits what one source address may make the server do
// (docs/protocol.md, "Trust model"). The private ids new to their stream
// it brings: so that one machine cannot mint ids faster than players join
// (the stores limit each stream's new ids, this each address's across all
// streams). And the tokens with a wrong signature it sends: so that a
// stranger cannot keep the server's cores checking signatures.
type AdmissionConfig struct {
	// NewClientsPerAddressPerMinute is how many ids new to their stream
	// one source address may bring a minute, with a burst of as many; 0
	// means no limit. Loopback addresses are not limited (a load test, a
	// bot on the same machine).
	NewClientsPerAddressPerMinute float64
	// BadSignaturesPerAddressPerMinute is how many tokens whose signature
	// is wrong one source address may send a minute, with a burst of as
	// many; past it, a token not verified before is refused without its
	// signature checked, until its bucket holds one again. 0 means no
	// limit; loopback is not limited.
	BadSignaturesPerAddressPerMinute float64
	// BadSignaturesPerSecond is the same for all source addresses
	// together, with a burst of a second's worth, for a stranger with
	// many: it bounds the CPU forged tokens take, at the cost of refusing
	// new tokens (not those verified before) while they come. An address
	// that presented a valid token which has not expired yet is held by
	// its own limit alone (goodSources), so players renew their tokens
	// meanwhile; without BadSignaturesPerAddressPerMinute, none is. 0
	// means no limit. Loopback counts, and is never exempt: a proxy on
	// the same host without TrustedProxies makes every request loopback.
	BadSignaturesPerSecond float64
	// TrustedProxies are the networks of the load balancers in front of
	// the server: a request from one of them comes from the address its
	// X-Forwarded-For names, the last one not itself trusted. Without
	// them X-Forwarded-For is ignored: anyone can write it.
	TrustedProxies []netip.Prefix
	// Clock tells the time; nil means the real clock.
	Clock clock.Clock
}

// maxTrackedAddresses bounds the addresses a limiter remembers, in each
// of its two one-minute generations: about 50 bytes each, some 6.5 MB in
// all. An address not remembered is not limited (the table is full when
// more than this many addresses were heard from within a minute; each
// stream's own join rate still holds, and the limit of bad signatures of
// all addresses together).
const maxTrackedAddresses = 1 << 16

// addressLimiter is a token bucket per source address (of ids new to
// their stream, or of tokens with a wrong signature), or one of all
// addresses together, keyed anyAddress. A bucket, full again after its
// period, is forgotten after one to two minutes of silence: two
// generations of maps, the older dropped each minute, hold the addresses
// heard from since.
type addressLimiter struct {
	perMs, burst float64
	clock        clock.Clock

	mu        sync.Mutex
	cur, prev map[netip.Addr]addressBucket
	rotated   int64 // Unix ms of the last rotation
}

type addressBucket struct {
	tokens float64
	at     int64 // Unix ms
}

// newAddressLimiter returns a limiter of rate a period, with a burst of
// as many, on clk (nil: the real clock), or nil when rate is 0: no limit.
func newAddressLimiter(rate float64, period time.Duration, clk clock.Clock) *addressLimiter {
	if rate <= 0 {
		return nil
	}
	if clk == nil {
		clk = clock.Real()
	}
	return &addressLimiter{perMs: rate / float64(period.Milliseconds()), burst: rate,
		clock: clk, cur: map[netip.Addr]addressBucket{}, rotated: clk.Now().UnixMilli()}
}

// anyAddress keys the one bucket of a limiter of all addresses together.
var anyAddress netip.Addr

// take spends one token of addr's bucket and returns 0, or returns how
// long until the bucket holds one. A nil limiter limits nothing.
func (l *addressLimiter) take(addr netip.Addr) time.Duration {
	if l == nil {
		return 0
	}
	now := l.clock.Now().UnixMilli()
	l.mu.Lock()
	defer l.mu.Unlock()
	if now-l.rotated >= 60_000 { // the older generation's buckets are full again
		l.prev, l.cur, l.rotated = l.cur, make(map[netip.Addr]addressBucket, len(l.cur)), now
	}
	b, ok := l.cur[addr]
	if !ok {
		if b, ok = l.prev[addr]; !ok {
			b = addressBucket{tokens: l.burst, at: now}
		}
	}
	b.tokens = math.Min(l.burst, b.tokens+float64(max(now-b.at, 0))*l.perMs)
	b.at = now
	if b.tokens < 1 {
		l.cur[addr] = b
		return time.Duration(math.Ceil((1-b.tokens)/l.perMs)) * time.Millisecond
	}
	b.tokens--
	if _, tracked := l.cur[addr]; tracked || len(l.cur) < maxTrackedAddresses {
		l.cur[addr] = b
	}
	return 0
}

// give gives back the token take spent for addr, when what it was spent
// for proved not to count (a signature found right). One spent before the
// older generation was dropped is not given back.
func (l *addressLimiter) give(addr netip.Addr) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if b, ok := l.cur[addr]; ok {
		b.tokens = math.Min(l.burst, b.tokens+1)
		l.cur[addr] = b
	}
}

// tracks reports whether addr's bucket is in the current generation, so
// that take keeps what it spends of it: not when the table was full when
// addr was first heard from this minute.
func (l *addressLimiter) tracks(addr netip.Addr) bool {
	if l == nil {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	_, ok := l.cur[addr]
	return ok
}

// retryAfter returns the 429 rate_limited of a limit of what an address
// may do, with the wait take returned.
func retryAfter(wait time.Duration, format string) *apiError {
	ae := errorf(protocol.CodeRateLimited, format, wait.Round(time.Millisecond))
	ae.RetryAfter = max(1, int(math.Ceil(wait.Seconds())))
	return ae
}

// tracked returns the number of addresses remembered.
func (l *addressLimiter) tracked() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.cur) + len(l.prev)
}

// goodSources are the source addresses that presented a valid token
// lately, each with when the latest such token stops being valid
// (auth.Grant.ValidUntil). Until then the address is not held by the
// limit of bad signatures of all addresses together, only by its own:
// forged tokens from a stranger's many addresses keep new tokens waiting,
// not the renewals of the players already in. An address gets in only by
// a token whose signature was checked and found right from it, never by
// one verified before (a poll costs what it did) nor from loopback, which
// has no source. At most maxTrackedAddresses, some 80 bytes each (5 MiB,
// measured): when full, the expired are dropped (at most once a second),
// and while it stays full a new address is not remembered.
type goodSources struct {
	clock clock.Clock

	mu     sync.Mutex
	until  map[netip.Addr]int64 // Unix ms
	pruned int64                // Unix ms of the last drop of the expired
}

// newGoodSources returns an empty set on clk (nil: the real clock).
func newGoodSources(clk clock.Clock) *goodSources {
	if clk == nil {
		clk = clock.Real()
	}
	return &goodSources{clock: clk, until: map[netip.Addr]int64{}}
}

// add remembers that addr presented a token valid until until. A nil set
// remembers nothing.
func (g *goodSources) add(addr netip.Addr, until time.Time) {
	if g == nil {
		return
	}
	ms, now := until.UnixMilli(), g.clock.Now().UnixMilli()
	g.mu.Lock()
	defer g.mu.Unlock()
	old, ok := g.until[addr]
	if !ok && len(g.until) >= maxTrackedAddresses && now-g.pruned >= 1000 {
		g.pruned = now
		for a, u := range g.until {
			if u <= now {
				delete(g.until, a)
			}
		}
	}
	if ok || len(g.until) < maxTrackedAddresses {
		g.until[addr] = max(old, ms)
	}
}

// holds reports whether addr presented a token that is still valid.
func (g *goodSources) holds(addr netip.Addr) bool {
	if g == nil {
		return false
	}
	now := g.clock.Now().UnixMilli()
	g.mu.Lock()
	defer g.mu.Unlock()
	return now < g.until[addr]
}

// proxies are the trusted proxies (AdmissionConfig.TrustedProxies), which
// tell the address a request comes from.
type proxies []netip.Prefix

// source returns the address a request comes from, as the limiters key
// it: the peer's, or when the peer is a trusted proxy the last address of
// X-Forwarded-For that is not; an IPv6 address by its /64, the block one
// machine is given. It is not valid for a loopback client, which is not
// limited.
func (p proxies) source(r *http.Request, conn *connState) netip.Addr {
	ap, err := peerAddr(r, conn)
	if err != nil {
		return netip.Addr{}
	}
	addr := ap.Addr().Unmap()
	if p.isTrusted(addr) {
		hops := r.Header.Values("X-Forwarded-For")
	walk:
		for i := len(hops) - 1; i >= 0; i-- {
			parts := strings.Split(hops[i], ",")
			for j := len(parts) - 1; j >= 0; j-- {
				hop, err := netip.ParseAddr(strings.TrimSpace(parts[j]))
				if err != nil {
					break walk // what precedes a hop that is not an address is not to be believed
				}
				addr = hop.Unmap()
				if !p.isTrusted(addr) {
					break walk
				}
			}
		}
	}
	return limitKey(addr)
}

// limitKey returns the address a source is limited by: none for loopback,
// an IPv6 address's /64.
func limitKey(addr netip.Addr) netip.Addr {
	if addr.IsLoopback() {
		return netip.Addr{}
	}
	if addr.Is6() {
		p, _ := addr.Prefix(64)
		return p.Addr()
	}
	return addr
}

func (p proxies) isTrusted(addr netip.Addr) bool {
	for _, n := range p {
		if n.Contains(addr) {
			return true
		}
	}
	return false
}

// sourceKey is the context key of a request's source address.
type sourceKey struct{}

// sourceOf returns the source address withSource, or ConnContext, put in
// ctx; not valid when there is none (loopback, or no limit by address).
func sourceOf(ctx context.Context) netip.Addr {
	addr, _ := ctx.Value(sourceKey{}).(netip.Addr)
	return addr
}

// withSource returns r with its source address, as the limiters key it,
// in its context, for admittingStore and checkSignature (sourceOf); conn
// is r's connection's state, or nil.
func (p proxies) withSource(r *http.Request, conn *connState) *http.Request {
	if addr := p.source(r, conn); addr.IsValid() {
		return r.WithContext(context.WithValue(r.Context(), sourceKey{}, addr))
	}
	return r
}

// admittingStore is the store as the handlers see it when new ids are
// limited by address: a sync from an id its stream does not know is
// applied only once its address's bucket gave a token. A known id's sync
// costs what it did (one call, with SyncRequest.KnownOnly); a new id's
// two.
type admittingStore struct {
	stream.Store
	limit *addressLimiter
}

// Watch implements stream.Watcher for the store it wraps.
func (s admittingStore) Watch(name string) (string, int64, <-chan struct{}, bool) {
	return stream.WatchOf(s.Store, name)
}

// Sync implements stream.Store.
func (s admittingStore) Sync(ctx context.Context, req *stream.SyncRequest) (*stream.SyncResult, error) {
	addr := sourceOf(ctx)
	if !addr.IsValid() || req.KnownOnly {
		return s.Store.Sync(ctx, req)
	}
	req.KnownOnly = true
	res, err := s.Store.Sync(ctx, req)
	req.KnownOnly = false
	if !errors.Is(err, stream.ErrNewClient) {
		return res, err
	}
	if wait := s.limit.take(addr); wait > 0 {
		return nil, retryAfter(wait,
			"too many private ids new to their stream come from this address (-max-new-clients-per-address-per-minute); nothing was applied, retry in %v")
	}
	return s.Store.Sync(ctx, req)
}
