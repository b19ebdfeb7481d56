package api_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/goeventstream/eventstream/internal/api"
	"github.com/goeventstream/eventstream/internal/protocol"
	"github.com/goeventstream/eventstream/internal/stream"
)

// admissionHarness limits new ids to perMinute per address; the test
// requests come from 192.0.2.1 (httptest's peer), a trusted proxy, on a
// connection from it with conn (harness.onConnection).
func admissionHarness(t *testing.T, conn bool, perMinute float64, trusted ...string) *harness {
	h := newHarness(t, func(a *api.Config, s *stream.Config) {
		a.Admission.NewClientsPerAddressPerMinute = perMinute
		a.Admission.Clock = s.Clock
		for _, p := range trusted {
			a.Admission.TrustedProxies = append(a.Admission.TrustedProxies, netip.MustParsePrefix(p))
		}
	})
	if conn {
		h.onConnection()
	}
	return h
}

// TestNewClientsPerAddress: one address brings at most its rate of ids new
// to their stream, across streams; ids it brought come back freely, other
// addresses are not held up, and a refusal leaves the stream as it was.
func TestNewClientsPerAddress(t *testing.T) { byConn(t, testNewClientsPerAddress) }

func testNewClientsPerAddress(t *testing.T, conn bool) {
	h := admissionHarness(t, conn, 2, "192.0.2.0/24")
	from := func(addr string) []string { return []string{"X-Forwarded-For", addr + ", 192.0.2.7"} }
	h.sync("/s/a/0", "", from("203.0.113.5")...)
	h.sync("/t/b/0", "", from("203.0.113.5")...)
	before := h.all("s", "a", from("203.0.113.5")...)
	rec := h.do(http.MethodPost, "/s/c/0", `{"events":[{"type":"move","body":"x"}]}`, from("203.0.113.5")...)
	require.Equal(t, http.StatusTooManyRequests, rec.Code, rec.Body.String())
	assert.Equal(t, protocol.CodeRateLimited, errorCode(t, rec).Code)
	wait, err := strconv.Atoi(rec.Header().Get("Retry-After"))
	require.NoError(t, err)
	assert.Equal(t, 30, wait, "2 a minute: one more in 30 s")
	h.clock.Advance(time.Millisecond)
	assert.Equal(t, before, h.all("s", "a", from("203.0.113.5")...)[:len(before)], "nothing applied")

	h.sync("/s/a/0", "", from("203.0.113.5")...) // known: not new
	h.sync("/s/d/0", "", from("203.0.113.6")...) // another address
	h.sync("/s/e/0", "", from("2001:db8::1")...)
	h.sync("/s/f/0", "", from("2001:db8::2")...)
	assert.Equal(t, http.StatusTooManyRequests, h.do(http.MethodGet, "/s/g/0", "", from("2001:db8::3")...).Code, "one /64 is one address")
	assert.Equal(t, http.StatusTooManyRequests, h.do(http.MethodGet, "/s/c/0", "", "X-Forwarded-For", "198.51.100.1, 203.0.113.5").Code,
		"the last address not trusted is the client's; what precedes it anyone can write")

	h.clock.Advance(30 * time.Second)
	assert.Equal(t, "5", h.sync("/s/c/0", "", from("203.0.113.5")...).ID, "30 s later")
}

// TestNewClientsPerAddressUntrusted: without trusted proxies the peer is
// the client, whatever X-Forwarded-For says; loopback is not limited.
func TestNewClientsPerAddressUntrusted(t *testing.T) { byConn(t, testNewClientsPerAddressUntrusted) }

func testNewClientsPerAddressUntrusted(t *testing.T, conn bool) {
	h := admissionHarness(t, conn, 1)
	h.sync("/s/a/0", "", "X-Forwarded-For", "203.0.113.5")
	assert.Equal(t, http.StatusTooManyRequests, h.do(http.MethodGet, "/s/b/0", "", "X-Forwarded-For", "203.0.113.6").Code,
		"both come from the peer 192.0.2.1")

	req := func(id string) int {
		r := httptest.NewRequest(http.MethodGet, "/s/"+id+"/0", nil)
		r.RemoteAddr = "127.0.0.1:5000"
		if conn {
			r = r.WithContext(h.server.ConnContext(context.Background(), tcpConn{addr: r.RemoteAddr}))
		}
		rec := httptest.NewRecorder()
		h.server.ServeHTTP(rec, r)
		return rec.Code
	}
	for i := range 5 {
		assert.Equal(t, http.StatusOK, req("local"+strconv.Itoa(i)), "loopback is not limited")
	}
}
