package api_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/goeventstream/eventstream/internal/api"
	"github.com/goeventstream/eventstream/internal/auth"
	"github.com/goeventstream/eventstream/internal/protocol"
	"github.com/goeventstream/eventstream/internal/redistest"
	"github.com/goeventstream/eventstream/internal/stream"
)

var (
	testSecret = []byte("an HS256 secret of 32 bytes, ok!")
	// testRSA signs RS256 tokens; its public key is in the harness's file.
	testRSA = func() *rsa.PrivateKey {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		return k
	}()
)

const testAudience = "eventstream-test"

// withAuth turns auth on in the harness, with the test secret and the
// test RSA key, on the harness's clock; open is the open prefix.
func withAuth(t testing.TB, open string) option { return withVerifier(t, open, new(*auth.Verifier)) }

// withVerifier is withAuth, and keeps the verifier in *v.
func withVerifier(t testing.TB, open string, v **auth.Verifier) option {
	der, err := x509.MarshalPKIXPublicKey(&testRSA.PublicKey)
	require.NoError(t, err)
	file := filepath.Join(t.TempDir(), "keys.pem")
	require.NoError(t, os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600))
	return func(a *api.Config, s *stream.Config) {
		var err error
		*v, err = auth.New(auth.Config{Secret: testSecret, PublicKeys: file, Audience: testAudience, Clock: s.Clock})
		require.NoError(t, err)
		a.Auth, a.OpenPrefix = *v, open
	}
}

// token signs a token for sub on stream, valid for an hour from the
// harness's start; edit changes its claims.
func token(t testing.TB, sub, streamClaim string, edit ...func(jwt.MapClaims)) string {
	t.Helper()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := jwt.MapClaims{"sub": sub, "stream": streamClaim, "aud": testAudience, "exp": start.Add(time.Hour).Unix()}
	for _, e := range edit {
		e(c)
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(testSecret)
	require.NoError(t, err)
	return s
}

func bearer(tok string) []string { return []string{"Authorization", "Bearer " + tok} }

// TestAuthRefusals: every request auth refuses is answered as the
// protocol says, and leaves the streams exactly as they were: no stream,
// no _c, no public id, no snapshot, no rate spent.
func TestAuthRefusals(t *testing.T) { testAuthRefusals(t, "") }

// TestAuthRefusalsRedis: the same on the Redis store.
func TestAuthRefusalsRedis(t *testing.T) {
	testAuthRefusals(t, redisURL(redistest.Start(t).URL()))
}

func testAuthRefusals(t *testing.T, url redisURL) {
	pemKey := func() []byte {
		der, err := x509.MarshalPKIXPublicKey(&testRSA.PublicKey)
		require.NoError(t, err)
		return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	}()
	sign := func(m jwt.SigningMethod, key any, c jwt.MapClaims) string {
		s, err := jwt.NewWithClaims(m, c).SignedString(key)
		require.NoError(t, err)
		return s
	}
	claims := func() jwt.MapClaims {
		return jwt.MapClaims{"sub": "p1", "stream": "s", "aud": testAudience,
			"exp": time.Date(2026, 1, 1, 1, 0, 0, 0, time.UTC).Unix()}
	}
	spectator := token(t, "p1", "s", func(c jwt.MapClaims) { c["role"] = "spectator" })
	none, err := jwt.NewWithClaims(jwt.SigningMethodNone, claims()).SignedString(jwt.UnsafeAllowNoneSignatureType)
	require.NoError(t, err)

	tests := []struct {
		name      string
		method    string
		give      string // the target
		body      string
		headers   []string
		tok       string // the token to look for in logs, metrics and replies
		wantCode  string
		challenge bool
	}{
		{name: "no token", give: "/s/p1/0", wantCode: protocol.CodeUnauthorized, challenge: true},
		{name: "no token, to a new stream", give: "/new/p1/0", wantCode: protocol.CodeUnauthorized, challenge: true},
		{name: "not bearer", give: "/s/p1/0", headers: []string{"Authorization", "Basic cDE6cHc="}, tok: "cDE6cHc=", wantCode: protocol.CodeUnauthorized, challenge: true},
		{name: "bearer without a token", give: "/s/p1/0", headers: []string{"Authorization", "Bearer "}, wantCode: protocol.CodeUnauthorized, challenge: true},
		{name: "malformed", give: "/s/p1/0", headers: bearer("not.a.jwt-secret"), tok: "not.a.jwt-secret", wantCode: protocol.CodeUnauthorized, challenge: true},
		{name: "bad signature", give: "/s/p1/0", headers: bearer(sign(jwt.SigningMethodHS256, []byte(strings.Repeat("k", 32)), claims())), wantCode: protocol.CodeUnauthorized, challenge: true},
		{name: "alg none", give: "/s/p1/0", headers: bearer(none), wantCode: protocol.CodeUnauthorized, challenge: true},
		{name: "HS256 keyed with the RSA public key", give: "/s/p1/0", headers: bearer(sign(jwt.SigningMethodHS256, pemKey, claims())), wantCode: protocol.CodeUnauthorized, challenge: true},
		{name: "wrong audience", give: "/s/p1/0", headers: bearer(token(t, "p1", "s", func(c jwt.MapClaims) { c["aud"] = "other" })), wantCode: protocol.CodeUnauthorized, challenge: true},
		{name: "no exp", give: "/s/p1/0", headers: bearer(token(t, "p1", "s", func(c jwt.MapClaims) { delete(c, "exp") })), wantCode: protocol.CodeUnauthorized, challenge: true},
		{name: "unknown role", give: "/s/p1/0", headers: bearer(token(t, "p1", "s", func(c jwt.MapClaims) { c["role"] = "admin" })), wantCode: protocol.CodeUnauthorized, challenge: true},
		{name: "in the header and the query", give: "/s/p1/0?access_token=" + token(t, "p1", "s"), headers: bearer(token(t, "p1", "s")), wantCode: protocol.CodeUnauthorized, challenge: true},
		{name: "twice in the query", give: "/s/p1/0?access_token=" + token(t, "p1", "s") + "&access_token=" + token(t, "p1", "s"), wantCode: protocol.CodeUnauthorized, challenge: true},
		{name: "expired", give: "/s/p1/0", headers: bearer(token(t, "p1", "s", func(c jwt.MapClaims) { c["exp"] = time.Date(2025, 12, 31, 23, 0, 0, 0, time.UTC).Unix() })), wantCode: protocol.CodeTokenExpired, challenge: true},
		{name: "expired, in the query", give: "/s/p1/0?access_token=" + token(t, "p1", "s", func(c jwt.MapClaims) { c["exp"] = 1 }), wantCode: protocol.CodeTokenExpired, challenge: true},
		{name: "expired, its signature wrong", give: "/s/p1/0", headers: bearer(forged(t, "p1", "s", 0, func(c jwt.MapClaims) { c["exp"] = 1 })), wantCode: protocol.CodeTokenExpired, challenge: true},
		{name: "another stream", give: "/s/p1/0", headers: bearer(token(t, "p1", "s2")), wantCode: protocol.CodeForbidden},
		{name: "another stream, its signature wrong", give: "/s/p1/0", headers: bearer(forged(t, "p1", "s2", 0)), wantCode: protocol.CodeForbidden},
		{name: "another player's id, its signature wrong", give: "/s/p1/0", headers: bearer(forged(t, "owner", "s", 0)), wantCode: protocol.CodeForbidden},
		{name: "its signature wrong", give: "/s/p1/0", headers: bearer(forged(t, "p1", "s", 0)), wantCode: protocol.CodeUnauthorized, challenge: true},
		{name: "another stream by the query", give: "/s/p1/0?access_token=" + token(t, "p1", "other"), wantCode: protocol.CodeForbidden},
		{name: "a prefix of other streams", give: "/s/p1/0", headers: bearer(token(t, "p1", "t*")), wantCode: protocol.CodeForbidden},
		{name: "a new stream of another name", give: "/new/p1/0", headers: bearer(token(t, "p1", "s")), wantCode: protocol.CodeForbidden},
		{name: "another player's id", give: "/s/owner/0", headers: bearer(token(t, "p1", "s")), wantCode: protocol.CodeForbidden},
		{name: "the id of nobody", give: "/s/p2/0", headers: bearer(token(t, "p1", "s")), wantCode: protocol.CodeForbidden},
		{name: "a spectator posting", give: "/s/p1/0", body: `{"events":[{"type":"m","body":"x"}]}`, headers: bearer(spectator), wantCode: protocol.CodeForbidden},
		{name: "a spectator reporting a hash", give: "/s/p1/21", body: `{"hashes":[{"t":20,"h":"ab"}]}`, headers: bearer(spectator), wantCode: protocol.CodeForbidden},
		{name: "a spectator uploading a snapshot", method: http.MethodPut, give: "/s/p1/snapshot/20", body: "state", headers: bearer(spectator), wantCode: protocol.CodeForbidden},
		{name: "a spectator uploading a dump", method: http.MethodPut, give: "/s/p1/dump/20", body: "state", headers: bearer(spectator), wantCode: protocol.CodeForbidden},
		{name: "a snapshot upload without a token", method: http.MethodPut, give: "/s/p1/snapshot/20", body: "state", wantCode: protocol.CodeUnauthorized, challenge: true},
		{name: "a dump upload for another id", method: http.MethodPut, give: "/s/owner/dump/20", body: "state", headers: bearer(token(t, "p1", "s")), wantCode: protocol.CodeForbidden},
		{name: "the snapshot without a token", method: http.MethodGet, give: "/s/snapshot", wantCode: protocol.CodeUnauthorized, challenge: true},
		{name: "the snapshot of another stream", method: http.MethodGet, give: "/s/snapshot", headers: bearer(token(t, "p1", "s2")), wantCode: protocol.CodeForbidden},
		{name: "the desyncs without a token", method: http.MethodGet, give: "/s/desyncs", wantCode: protocol.CodeUnauthorized, challenge: true},
		{name: "a dump without a token", method: http.MethodGet, give: "/s/desyncs/20/1", wantCode: protocol.CodeUnauthorized, challenge: true},
		{name: "a push upgrade without a token", method: http.MethodGet, give: "/s/p1/0", headers: []string{"Upgrade", "websocket", "Connection", "Upgrade"}, wantCode: protocol.CodeUnauthorized, challenge: true},
		{name: "a push upgrade for another id", method: http.MethodGet, give: "/s/owner/0?access_token=" + token(t, "p1", "s"), headers: []string{"Upgrade", "websocket", "Connection", "Upgrade"}, wantCode: protocol.CodeForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarnessOn(t, url, withAuth(t, "open-"), func(_ *api.Config, s *stream.Config) {
				s.MaxSyncsPerSecond = 0.25 // one sync, then 429 for 4 s: a spent token would show
			})
			owner := bearer(token(t, "owner", "s"))
			rec := h.do(http.MethodPost, "/s/owner/0", "", owner...)
			require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
			before := h.read("s")
			statsBefore, err := h.store.Stats(context.Background(), 10)
			require.NoError(t, err)

			method := tt.method
			if method == "" {
				method = http.MethodPost
			}
			rec = h.do(method, tt.give, tt.body, tt.headers...)
			wantStatus := http.StatusForbidden
			if tt.challenge {
				wantStatus = http.StatusUnauthorized
			}
			require.Equal(t, wantStatus, rec.Code, rec.Body.String())
			assert.Equal(t, tt.wantCode, errorCode(t, rec).Code)
			if tt.challenge {
				assert.Contains(t, rec.Header().Get("WWW-Authenticate"), "Bearer")
			} else {
				assert.Empty(t, rec.Header().Get("WWW-Authenticate"))
			}
			assertNoLeak(t, h, rec.Body.String(), secretsOf(tt.tok, tt.give, tt.headers)...)

			assert.Equal(t, before, h.read("s"), "a refused request changed the stream")
			statsAfter, err := h.store.Stats(context.Background(), 10)
			require.NoError(t, err)
			assert.Equal(t, statsBefore.Streams, statsAfter.Streams, "a refused request created a stream")
			assert.Equal(t, statsBefore.Clients, statsAfter.Clients, "a refused request connected a client")
			// p1's first sync succeeds: the refusal spent none of its rate,
			// and it takes the next public id: the refusal took none.
			assert.Equal(t, "2", h.sync("/s/p1/0", "", bearer(token(t, "p1", "s"))...).ID)
		})
	}
}

// secretsOf lists what a refused request carried that must not leak: its
// token, wherever it was.
func secretsOf(tok, target string, headers []string) []string {
	var out []string
	if tok != "" {
		out = append(out, tok)
	}
	if _, q, ok := strings.Cut(target, "?"); ok {
		out = append(out, q)
		for _, kv := range strings.Split(q, "&") {
			out = append(out, strings.TrimPrefix(kv, "access_token="))
		}
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i] == "Authorization" {
			if _, tok, ok := strings.Cut(headers[i+1], " "); ok && tok != "" {
				out = append(out, tok)
			}
		}
	}
	return out
}

// assertNoLeak checks that none of secrets is in the reply, in a log line
// of the harness, or in its metrics.
func assertNoLeak(t *testing.T, h *harness, reply string, secrets ...string) {
	t.Helper()
	rec := h.do(http.MethodGet, "/metrics", "")
	require.Equal(t, http.StatusOK, rec.Code)
	metricsText := rec.Body.String()
	var logs strings.Builder
	for _, e := range h.logs.All() {
		logs.WriteString(e.Message)
		for k, v := range e.ContextMap() {
			logs.WriteString(" " + k + "=")
			logs.WriteString(fmt.Sprint(v))
		}
		logs.WriteString("\n")
	}
	for _, s := range secrets {
		assert.NotContains(t, reply, s, "the reply holds a token")
		assert.NotContains(t, logs.String(), s, "a log line holds a token")
		assert.NotContains(t, metricsText, s, "the metrics hold a token")
	}
}

// read reads the whole of a stream from the store, without a client: the
// stream as it is, whoever may read it.
func (h *harness) read(name string) string {
	h.t.Helper()
	var out []byte
	req := &stream.SyncRequest{Stream: name}
	for {
		res, err := h.store.Read(context.Background(), req)
		require.NoError(h.t, err)
		out = append(append(out, res.Events...), '\n')
		req.LastKnownTick, req.Epoch = res.T, res.Epoch
		if !res.More {
			return string(out)
		}
	}
}

// TestAuthAdmits: what a valid token, or an open stream, is let do.
func TestAuthAdmits(t *testing.T) {
	upgrade := []string{"Upgrade", "websocket", "Connection", "Upgrade"}
	tests := []struct {
		name       string
		method     string
		give       string
		headers    []string
		wantStatus int
	}{
		{name: "a player, by the header", give: "/s/p1/0", headers: bearer(token(t, "p1", "s")), wantStatus: 200},
		{name: "a player, by the query", give: "/s/p1/0?access_token=" + token(t, "p1", "s"), wantStatus: 200},
		{name: "the scheme in any case", give: "/s/p1/0", headers: []string{"Authorization", "bearer " + token(t, "p1", "s")}, wantStatus: 200},
		{name: "a prefix", give: "/room-7/p1/0", headers: bearer(token(t, "p1", "room-*")), wantStatus: 200},
		{name: "every stream", give: "/any/p1/0", headers: bearer(token(t, "p1", "*")), wantStatus: 200},
		{name: "a spectator polls with GET (no stream yet: it creates none)", method: http.MethodGet, give: "/s/p1/0", headers: bearer(token(t, "p1", "s", func(c jwt.MapClaims) { c["role"] = "spectator" })), wantStatus: 404},
		{name: "a spectator reads the snapshot", method: http.MethodGet, give: "/s/snapshot", headers: bearer(token(t, "v", "s", func(c jwt.MapClaims) { c["role"] = "spectator" })), wantStatus: 404},
		{name: "a player reads the desyncs", method: http.MethodGet, give: "/s/desyncs", headers: bearer(token(t, "p1", "s")), wantStatus: 404},
		{name: "an open stream needs none", give: "/open-lobby/anyone/0", wantStatus: 200},
		{name: "an open stream ignores a bad one", give: "/open-lobby/anyone/0", headers: bearer("garbage"), wantStatus: 200},
		{name: "a preflight needs none", method: http.MethodOptions, give: "/s/p1/0", wantStatus: 204},
		{name: "a preflight of an upload needs none", method: http.MethodOptions, give: "/s/p1/snapshot/20", wantStatus: 204},
		{name: "healthz needs none", method: http.MethodGet, give: "/healthz", wantStatus: 200},
		{name: "a method not allowed is 405 first", method: http.MethodDelete, give: "/s/p1/0", wantStatus: 405},
		{name: "a push upgrade reaches the WebSocket handshake (which wants more headers)", method: http.MethodGet, give: "/s/p1/0?access_token=" + token(t, "p1", "s"), headers: upgrade, wantStatus: 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, withAuth(t, "open-"))
			method := tt.method
			if method == "" {
				method = http.MethodPost
			}
			rec := h.do(method, tt.give, "", tt.headers...)
			require.Equal(t, tt.wantStatus, rec.Code, rec.Body.String())
		})
	}
}

// TestAuthOffIgnoresTokens: with auth off nothing changes, whatever a
// request carries.
func TestAuthOffIgnoresTokens(t *testing.T) {
	h := newHarness(t)
	assert.Equal(t, "1", h.sync("/foo/me/0", "{}", bearer("garbage")...).ID)
	assert.Equal(t, "2", h.sync("/foo/you/0?access_token=garbage", "{}").ID)
}

// rsaToken signs an RS256 token for sub on stream with the test RSA key,
// valid for an hour from the harness's start; edit changes its claims.
func rsaToken(t testing.TB, sub, streamClaim string, edit ...func(jwt.MapClaims)) string {
	t.Helper()
	c := jwt.MapClaims{"sub": sub, "stream": streamClaim, "aud": testAudience,
		"exp": time.Date(2026, 1, 1, 1, 0, 0, 0, time.UTC).Unix()}
	for _, e := range edit {
		e(c)
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodRS256, c).SignedString(testRSA)
	require.NoError(t, err)
	return s
}

// forged is a stranger's token for sub on stream: RS256, told apart by
// jti, with the signature of another token; edit changes its claims.
func forged(t testing.TB, sub, streamClaim string, jti int, edit ...func(jwt.MapClaims)) string {
	t.Helper()
	tok := rsaToken(t, sub, streamClaim, append(edit, func(c jwt.MapClaims) { c["jti"] = strconv.Itoa(jti) })...)
	other := rsaToken(t, sub, streamClaim, func(c jwt.MapClaims) { c["jti"] = "other" })
	return tok[:strings.LastIndexByte(tok, '.')] + other[strings.LastIndexByte(other, '.'):]
}

// TestBadSignaturesPerAddress: a stranger whose tokens name the server's
// key and claims that admit, but carry a wrong signature, makes the
// server check at most its address's limit of signatures
// (-max-bad-signatures-per-address-per-minute), however it varies its
// tokens, streams and ids; past it, it is refused 429 unchecked, and its
// refusals leave the streams as they were. A token verified before still
// admits from that address; a new one waits for the bucket. Another
// address is not held up, loopback is not limited, and valid or expired
// tokens spend nothing.
func TestBadSignaturesPerAddress(t *testing.T) {
	byConn(t, func(t *testing.T, conn bool) { testBadSignatures(t, "", conn) })
}

// TestBadSignaturesPerAddressRedis: the same on the Redis store.
func TestBadSignaturesPerAddressRedis(t *testing.T) {
	testBadSignatures(t, redisURL(redistest.Start(t).URL()), true)
}

func testBadSignatures(t *testing.T, url redisURL, conn bool) {
	var v *auth.Verifier
	h := newHarnessOn(t, url, withVerifier(t, "", &v), func(a *api.Config, s *stream.Config) {
		a.Admission.BadSignaturesPerAddressPerMinute = 3
		a.Admission.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}
		a.Admission.Clock = s.Clock
	})
	if conn {
		h.onConnection()
	}
	with := func(addr, tok string) []string {
		return append([]string{"X-Forwarded-For", addr + ", 192.0.2.7"}, bearer(tok)...)
	}
	checked := func() int64 { return v.SignatureChecks() }
	const stranger = "203.0.113.5"
	p1 := rsaToken(t, "p1", "s")
	h.sync("/s/p1/0", "", with(stranger, p1)...) // a player behind the stranger's address
	before := h.read("s")
	stats, err := h.store.Stats(context.Background(), 10)
	require.NoError(t, err)

	start := checked()
	// A new token, stream and id each time; 3 a minute: one more in 20 s.
	threeChecked(t, "20", func(i int) *httptest.ResponseRecorder {
		name, sub := fmt.Sprintf("s%d", i%3), fmt.Sprintf("x%d", i)
		return h.do(http.MethodPost, "/"+name+"/"+sub+"/0", "", with(stranger, forged(t, sub, name, i))...)
	})
	rec := h.do(http.MethodGet, "/s/x/0", "", append(with(stranger, forged(t, "x", "s", 10)), "Upgrade", "websocket", "Connection", "Upgrade")...)
	assert.Equal(t, http.StatusTooManyRequests, rec.Code, "a push upgrade too")
	assert.Equal(t, int64(3), checked()-start, "signatures checked")
	assert.Equal(t, 3.0, signatureChecks(t, h, "invalid"))
	assert.Equal(t, 1.0, signatureChecks(t, h, "valid"), "p1's")
	assert.Equal(t, before, h.read("s"), "a refused request changed the stream")
	after, err := h.store.Stats(context.Background(), 10)
	require.NoError(t, err)
	assert.Equal(t, stats.Streams, after.Streams, "a refused request created a stream")
	assert.Equal(t, stats.Clients, after.Clients, "a refused request connected a client")

	// What the limited address may still do.
	start = checked()
	h.sync("/s/p1/0", "", with(stranger, p1)...)
	assert.Equal(t, int64(0), checked()-start, "a token verified before admits, unchecked")
	for i := range 5 { // expired en masse: each refused by its exp alone
		rec := h.do(http.MethodGet, "/s/p1/0", "", with(stranger, rsaToken(t, "p1", "s", func(c jwt.MapClaims) { c["exp"] = 1; c["jti"] = strconv.Itoa(i) }))...)
		assert.Equal(t, protocol.CodeTokenExpired, errorCode(t, rec).Code)
	}
	rec = h.do(http.MethodGet, "/s/p1/0", "", with(stranger, forged(t, "p1", "t", 11))...)
	assert.Equal(t, http.StatusForbidden, rec.Code, "a token for another stream")
	assert.Equal(t, int64(0), checked()-start, "expired tokens and tokens for another stream are refused unchecked")
	p2 := rsaToken(t, "p2", "s")
	rec = h.do(http.MethodPost, "/s/p2/0", "", with(stranger, p2)...)
	assert.Equal(t, http.StatusTooManyRequests, rec.Code, "a new token waits for the bucket, valid or not")

	// Another address, and loopback.
	h.sync("/s/p3/0", "", with("203.0.113.6", rsaToken(t, "p3", "s"))...)
	assert.Equal(t, http.StatusUnauthorized, h.do(http.MethodPost, "/s/x/0", "", with("203.0.113.6", forged(t, "x", "s", 12))...).Code)
	for i := range 5 {
		assert.Equal(t, http.StatusUnauthorized, h.do(http.MethodPost, "/s/x/0", "", with("127.0.0.1", forged(t, "x", "s", 20+i))...).Code,
			"loopback is not limited")
	}

	// 20 s later, the stranger's address has one check again; valid
	// tokens give theirs back.
	h.clock.Advance(20 * time.Second)
	h.sync("/s/p2/0", "", with(stranger, p2)...)
	h.sync("/s/p4/0", "", with(stranger, rsaToken(t, "p4", "s"))...)
	assert.Equal(t, http.StatusUnauthorized, h.do(http.MethodPost, "/s/x/0", "", with(stranger, forged(t, "x", "s", 30))...).Code)
	assert.Equal(t, http.StatusTooManyRequests, h.do(http.MethodPost, "/s/x/0", "", with(stranger, forged(t, "x", "s", 31))...).Code)
}

// threeChecked sends ten forged tokens, the i-th by send(i), and requires
// the first three refused by their signature (401) and the others before
// it, 429 with Retry-After wait.
func threeChecked(t *testing.T, wait string, send func(i int) *httptest.ResponseRecorder) {
	t.Helper()
	for i := range 10 {
		rec := send(i)
		if i < 3 {
			require.Equal(t, http.StatusUnauthorized, rec.Code, rec.Body.String())
			continue
		}
		require.Equal(t, http.StatusTooManyRequests, rec.Code, rec.Body.String())
		assert.Equal(t, protocol.CodeRateLimited, errorCode(t, rec).Code)
		assert.Equal(t, wait, rec.Header().Get("Retry-After"))
	}
}

// TestBadSignaturesAllAddresses: a stranger with many addresses makes the
// server check at most -max-bad-signatures-per-second signatures of all
// of them together, loopback too; past it, a token verified before still
// admits, and a new one waits for the bucket.
func TestBadSignaturesAllAddresses(t *testing.T) {
	var v *auth.Verifier
	h := newHarness(t, withVerifier(t, "", &v), func(a *api.Config, s *stream.Config) {
		a.Admission.BadSignaturesPerAddressPerMinute = 100
		a.Admission.BadSignaturesPerSecond = 3
		a.Admission.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}
		a.Admission.Clock = s.Clock
	})
	h.onConnection()
	with := func(addr, tok string) []string {
		return append([]string{"X-Forwarded-For", addr + ", 192.0.2.7"}, bearer(tok)...)
	}
	p1 := rsaToken(t, "p1", "s")
	h.sync("/s/p1/0", "", with("198.51.100.1", p1)...)

	start := v.SignatureChecks()
	threeChecked(t, "1", func(i int) *httptest.ResponseRecorder { // 3 a second: one more in 334 ms
		addr := fmt.Sprintf("203.0.113.%d", i)
		if i == 2 {
			addr = "127.0.0.1"
		}
		return h.do(http.MethodPost, "/s/x/0", "", with(addr, forged(t, "x", "s", i))...)
	})
	assert.Equal(t, int64(3), v.SignatureChecks()-start, "signatures checked")
	h.sync("/s/p1/0", "", with("198.51.100.1", p1)...) // verified before
	p2 := rsaToken(t, "p2", "s")
	assert.Equal(t, http.StatusTooManyRequests, h.do(http.MethodPost, "/s/p2/0", "", with("198.51.100.2", p2)...).Code,
		"a new token waits, from any address")

	h.clock.Advance(334 * time.Millisecond)
	h.sync("/s/p2/0", "", with("198.51.100.2", p2)...)
	h.sync("/s/p3/0", "", with("198.51.100.3", rsaToken(t, "p3", "s"))...) // p2's check gave its token back
	assert.Equal(t, http.StatusUnauthorized, h.do(http.MethodPost, "/s/x/0", "", with("203.0.113.50", forged(t, "x", "s", 30))...).Code)
	assert.Equal(t, http.StatusTooManyRequests, h.do(http.MethodPost, "/s/x/0", "", with("203.0.113.51", forged(t, "x", "s", 31))...).Code)
}

// TestBadSignaturesInRenewals: a player that renews its push connection's
// token with forged ones makes the server check at most
// -max-bad-signatures-per-second of them; past it, it is answered
// rate_limited, unchecked, and the connection stays.
func TestBadSignaturesInRenewals(t *testing.T) {
	var v *auth.Verifier
	h, base := pushHarnessOn(t, "", withVerifier(t, "", &v), func(a *api.Config, s *stream.Config) {
		a.Admission.BadSignaturesPerSecond = 2
		a.Admission.Clock = s.Clock
		a.Push.PingInterval, a.Push.MaxLag = time.Hour, 24*time.Hour
	})
	c := dial(t, base+"/s/p1/0?access_token="+rsaToken(t, "p1", "s"))
	next(t, c, func(protocol.SyncReply) bool { return true })
	start := v.SignatureChecks()
	for i, want := range []string{protocol.CodeUnauthorized, protocol.CodeUnauthorized, protocol.CodeRateLimited, protocol.CodeRateLimited} {
		send(t, c, `{"token":"`+forged(t, "p1", "s", i)+`"}`)
		e := errorMessage(t, c)
		require.Equal(t, want, e.Code, "renewal %d: %s", i, e.Message)
	}
	assert.Equal(t, int64(2), v.SignatureChecks()-start, "signatures checked")
	assert.Equal(t, 2.0, signatureChecks(t, h, "invalid"))
	send(t, c, `{"batch":"b1","events":[{"type":"move","body":"still here"}]}`)
	assert.Equal(t, `{"batch":"b1"}`, nextText(t, c), "the connection stays")
}

// TestBadSignaturesSparePlayers: while a stranger's forged tokens from
// many addresses keep the server at -max-bad-signatures-per-second, an
// address that presented a valid token is held by its own limit alone
// until that token expires: its player renews its token by a sync and by
// a push connection's message, and stays in; what it forges is checked at
// most its address's limit, by a sync or a renewal. A new address waits,
// with a valid token too, and so does the player's once its token expired.
func TestBadSignaturesSparePlayers(t *testing.T) {
	var v *auth.Verifier
	h, base := pushHarnessOn(t, "", withVerifier(t, "", &v), func(a *api.Config, s *stream.Config) {
		a.Admission.BadSignaturesPerAddressPerMinute = 3
		a.Admission.BadSignaturesPerSecond = 3
		a.Admission.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("127.0.0.0/8")}
		a.Admission.Clock = s.Clock
		a.Push.PingInterval, a.Push.MaxLag = time.Hour, 24*time.Hour
	})
	with := func(addr, tok string) []string {
		return append([]string{"X-Forwarded-For", addr + ", 192.0.2.7"}, bearer(tok)...)
	}
	claims := func(jti string, exp time.Time) func(jwt.MapClaims) {
		return func(c jwt.MapClaims) { c["jti"], c["exp"] = jti, exp.Unix() }
	}
	exp := time.Date(2026, 1, 1, 1, 0, 0, 0, time.UTC) // rsaToken's
	const (
		player  = "198.51.100.1"
		byAddr  = "-max-bad-signatures-per-address-per-minute"
		byAll   = "-max-bad-signatures-per-second"
		refused = http.StatusTooManyRequests
	)
	attack := func(from int, exp time.Time) { // until the server-wide bucket is empty
		t.Helper()
		for i := from; ; i++ {
			require.Less(t, i, from+10)
			rec := h.do(http.MethodPost, "/s/x/0", "", with(fmt.Sprintf("203.0.113.%d", i), forged(t, "x", "s", i, claims(strconv.Itoa(i), exp)))...)
			if rec.Code == refused {
				require.Contains(t, errorCode(t, rec).Message, byAll)
				return
			}
			require.Equal(t, http.StatusUnauthorized, rec.Code, rec.Body.String())
		}
	}

	p1 := rsaToken(t, "p1", "s")
	h.sync("/s/p1/0", "", with(player, p1)...) // its signature checked: the player's address is known
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, base+"/s/p1/0?access_token="+p1,
		&websocket.DialOptions{HTTPHeader: http.Header{"X-Forwarded-For": {player}}})
	require.NoError(t, err)
	t.Cleanup(func() { c.CloseNow() })
	next(t, c, func(protocol.SyncReply) bool { return true })
	attack(0, exp)

	// The player renews, by a sync and on its push connection.
	h.sync("/s/p1/0", "", with(player, rsaToken(t, "p1", "s", claims("r1", exp)))...)
	send(t, c, `{"token":"`+rsaToken(t, "p1", "s", claims("r2", exp))+`"}`)
	send(t, c, `{"batch":"b1","events":[{"type":"move","body":"still here"}]}`)
	assert.Equal(t, `{"batch":"b1"}`, nextText(t, c), "the renewal was taken")
	assert.Equal(t, 3.0, signatureChecks(t, h, "valid"))

	// A new address waits, valid token or not.
	rec := h.do(http.MethodPost, "/s/p2/0", "", with("198.51.100.2", rsaToken(t, "p2", "s"))...)
	require.Equal(t, refused, rec.Code)
	assert.Contains(t, errorCode(t, rec).Message, byAll)

	// What the player's address forges is checked up to its own limit.
	start := v.SignatureChecks()
	for i := range 2 {
		assert.Equal(t, http.StatusUnauthorized, h.do(http.MethodPost, "/s/p1/0", "", with(player, forged(t, "p1", "s", 100+i))...).Code)
	}
	send(t, c, `{"token":"`+forged(t, "p1", "s", 102)+`"}`)
	assert.Equal(t, protocol.CodeUnauthorized, errorMessage(t, c).Code)
	rec = h.do(http.MethodPost, "/s/p1/0", "", with(player, forged(t, "p1", "s", 103))...)
	require.Equal(t, refused, rec.Code)
	assert.Contains(t, errorCode(t, rec).Message, byAddr)
	send(t, c, `{"token":"`+forged(t, "p1", "s", 104)+`"}`)
	e := errorMessage(t, c)
	assert.Equal(t, protocol.CodeRateLimited, e.Code)
	assert.Contains(t, e.Message, byAddr, "a renewal counts against its address")
	assert.Equal(t, int64(3), v.SignatureChecks()-start, "signatures checked")

	// Once the player's tokens expired, its address is one of many.
	h.clock.Advance(time.Hour + auth.MaxSkew)
	later := exp.Add(time.Hour)
	attack(10, later)
	rec = h.do(http.MethodPost, "/s/p1/0", "", with(player, rsaToken(t, "p1", "s", claims("r3", later)))...)
	require.Equal(t, refused, rec.Code)
	assert.Contains(t, errorCode(t, rec).Message, byAll)
}

// signatureChecks reads eventstreamd_auth_signature_checks_total{result}.
func signatureChecks(t *testing.T, h *harness, result string) float64 {
	t.Helper()
	mfs, err := h.reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != "eventstreamd_auth_signature_checks_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetLabel()[0].GetValue() == result {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no signature checks of result %s", result)
	return 0
}
