package esclient_test

import (
	"bufio"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/goeventstream/eventstream/internal/api"
	"github.com/goeventstream/eventstream/internal/apitest"
	"github.com/goeventstream/eventstream/internal/auth"
	"github.com/goeventstream/eventstream/internal/clock"
	"github.com/goeventstream/eventstream/internal/protocol"
	"github.com/goeventstream/eventstream/internal/stream"
	"github.com/goeventstream/eventstream/pkg/esclient"
)

var tokenSecret = []byte("the HS256 secret of the esclient tests")

// authServer is a real eventstreamd with auth on, on a fake clock that
// starts at the real time (tokens' exp is read by the client on its own
// clock).
func authServer(t *testing.T) (*httptest.Server, *clock.Fake) { return authServerWith(t, nil, nil) }

// authServerWith is authServer with its configuration edited (its
// admission limits on the fake clock), and its handler wrapped by wrap.
func authServerWith(t *testing.T, edit func(*api.Config), wrap func(http.Handler) http.Handler) (*httptest.Server, *clock.Fake) {
	t.Helper()
	fake := clock.NewFake(time.Now())
	cfg := stream.DefaultConfig()
	cfg.Clock = fake
	store, err := stream.NewMemoryStore(cfg)
	require.NoError(t, err)
	v, err := auth.New(auth.Config{Secret: tokenSecret, Clock: fake})
	require.NoError(t, err)
	h, err := apitest.AuthHandler(store, v, func(c *api.Config) {
		c.Admission.Clock = fake
		if edit != nil {
			edit(c)
		}
	})
	require.NoError(t, err)
	if wrap != nil {
		h = wrap(h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv, fake
}

// backend signs tokens for sub on stream "game" that expire ttl after
// now(), and counts them.
type backend struct {
	t     *testing.T
	sub   string
	ttl   time.Duration
	now   func() time.Time
	calls atomic.Int32
}

func (b *backend) token(context.Context) (string, error) {
	b.calls.Add(1)
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": b.sub, "stream": "game", "exp": b.now().Add(b.ttl).Unix(),
	}).SignedString(tokenSecret)
	require.NoError(b.t, err)
	return s, nil
}

func TestTokenIsKeptUntilItNearsItsExpiry(t *testing.T) {
	srv, fake := authServer(t)
	for _, tt := range []struct {
		name      string
		ttl       time.Duration
		wantCalls int32
	}{
		{name: "an hour: one token", ttl: time.Hour, wantCalls: 1},
		{name: "ten seconds: renewed before each request", ttl: 10 * time.Second, wantCalls: 3},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := &backend{t: t, sub: "p-" + tt.name[:2], ttl: tt.ttl, now: time.Now}
			c := newClient(t, srv.URL, b.sub, withHTTP(httpClient(t)), func(c *esclient.Config) { c.Token = b.token })
			for range 3 {
				_, err := c.Sync(context.Background())
				require.NoError(t, err)
				fake.Advance(50 * time.Millisecond)
			}
			assert.Equal(t, tt.wantCalls, b.calls.Load())
		})
	}
}

// TestTokenExpiredIsRenewed: a token the server finds expired (its clock
// ran past exp) is replaced, and the request is sent again.
func TestTokenExpiredIsRenewed(t *testing.T) {
	srv, fake := authServer(t)
	b := &backend{t: t, sub: "p1", ttl: time.Hour, now: fake.Now}
	c := newClient(t, srv.URL, "p1", withHTTP(httpClient(t)), func(c *esclient.Config) { c.Token = b.token })
	_, err := c.Sync(context.Background())
	require.NoError(t, err)
	require.NoError(t, c.Send("move", "x"))
	fake.Advance(2 * time.Hour) // the server's clock: the token expired
	u, err := c.Sync(context.Background())
	require.NoError(t, err, "renewed and sent again")
	assert.Equal(t, int32(2), b.calls.Load())
	fake.Advance(50 * time.Millisecond)
	u, err = c.Sync(context.Background())
	require.NoError(t, err)
	require.NotEmpty(t, u.Events)
	assert.Equal(t, "move", u.Events[len(u.Events)-1].Type, "the event was applied once the token was renewed")
}

func TestTokenRefusals(t *testing.T) {
	srv, _ := authServer(t)
	c := newClient(t, srv.URL, "p1", withHTTP(httpClient(t)))
	_, err := c.Sync(context.Background())
	var se *esclient.Error
	require.ErrorAs(t, err, &se, "no Token: no token sent")
	assert.Equal(t, protocol.CodeUnauthorized, se.Code)

	b := &backend{t: t, sub: "someone-else", ttl: time.Hour, now: time.Now}
	c = newClient(t, srv.URL, "p1", withHTTP(httpClient(t)), func(c *esclient.Config) { c.Token = b.token })
	_, err = c.Sync(context.Background())
	require.ErrorAs(t, err, &se)
	assert.Equal(t, protocol.CodeForbidden, se.Code)

	failing := errors.New("the backend is down")
	c = newClient(t, srv.URL, "p1", withHTTP(httpClient(t)), func(c *esclient.Config) {
		c.Token = func(context.Context) (string, error) { return "", failing }
	})
	_, err = c.Sync(context.Background())
	assert.ErrorIs(t, err, failing)
	_, err = c.Snapshot(context.Background())
	assert.ErrorIs(t, err, failing, "checkpoint requests carry the token too")
}

// upgradesCounted wraps a handler, counting in n the push upgrades it
// serves.
func upgradesCounted(n *atomic.Int32) func(http.Handler) http.Handler {
	return func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Upgrade") != "" {
				n.Add(1)
			}
			h.ServeHTTP(w, r)
		})
	}
}

// runMoving runs c until stop, which returns Run's error, or 10 s pass;
// moved sends a move and waits until it comes back, the server's clock
// moving on a tick at a time.
func runMoving(t *testing.T, c *esclient.Client, fake *clock.Fake) (moved func(body string), stop func() error) {
	moves := make(chan string, 16)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	done := make(chan error, 1)
	go func() {
		done <- c.Run(ctx, func(u esclient.Update) {
			for _, e := range u.Events {
				if e.Type == "move" {
					moves <- e.Body
				}
			}
		})
	}()
	moved = func(body string) {
		t.Helper()
		require.NoError(t, c.Send("move", body))
		for {
			fake.Advance(50 * time.Millisecond)
			select {
			case got := <-moves:
				require.Equal(t, body, got)
				return
			case <-time.After(10 * time.Millisecond):
			case <-ctx.Done():
				t.Fatalf("%s never came back", body)
			}
		}
	}
	return moved, func() error { cancel(); return <-done }
}

// TestPushRenewsItsToken: a push connection sends a new token as its own
// nears its exp, and lives on past that exp (the server closes one whose
// token expired unrenewed with 4003, which a reconnection would show).
func TestPushRenewsItsToken(t *testing.T) {
	var upgrades atomic.Int32
	srv, fake := authServerWith(t, func(c *api.Config) { c.Push.MaxLag = 24 * time.Hour }, upgradesCounted(&upgrades))
	start := fake.Now()
	var signed atomic.Int32
	var lastExp atomic.Int64
	tokenFn := func(context.Context) (string, error) {
		// 29 s after the server's time: within the renewal margin on the
		// client's clock until the server's moves on.
		exp := fake.Now().Add(29 * time.Second).Unix()
		lastExp.Store(exp)
		return jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
			"sub": "p1", "stream": "game", "exp": exp, "jti": strconv.Itoa(int(signed.Add(1))),
		}).SignedString(tokenSecret)
	}
	c := newClient(t, srv.URL, "p1", withHTTP(httpClient(t)), func(c *esclient.Config) {
		c.Token, c.Transport = tokenFn, esclient.Push
	})
	moved, stop := runMoving(t, c, fake)
	moved("first")

	// The server's clock moves 40 s on: the first token is past its exp,
	// within the leeway; the client renews once more, with a token it
	// keeps.
	fake.Advance(40 * time.Second)
	require.Eventually(t, func() bool { return lastExp.Load() >= start.Add(69*time.Second).Unix() }, 5*time.Second, time.Millisecond)
	moved("after the renewal") // sent after the renewal, on the same connection

	fake.Advance(25 * time.Second) // every token but the last is past its exp and leeway
	moved("still connected")
	require.ErrorIs(t, stop(), context.Canceled)
	assert.Equal(t, int32(1), upgrades.Load(), "one connection: it was never closed for its token")
	assert.Greater(t, signed.Load(), int32(1))
}

// TestPushResendsARefusedRenewal: a renewal the server refuses with
// rate_limited (its limit of forged tokens reached, here by a stranger's
// one) is sent again after its Retry-After, while the token the
// connection holds is valid: the connection lives on past that token's
// exp (main sent a renewal once and took it as held, so the server closed
// the connection with 4003 at the old token's exp).
func TestPushResendsARefusedRenewal(t *testing.T) {
	var upgrades atomic.Int32
	srv, fake := authServerWith(t, func(c *api.Config) {
		c.Push.MaxLag = 24 * time.Hour
		c.Admission.BadSignaturesPerSecond = 1 // loopback counts
	}, upgradesCounted(&upgrades))
	sign := func(key []byte, jti string, exp time.Time) string {
		tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
			"sub": "p1", "stream": "game", "exp": exp.Unix(), "jti": jti,
		}).SignedString(key)
		require.NoError(t, err)
		return tok
	}
	first := sign(tokenSecret, "1", fake.Now().Add(20*time.Second)) // renewed as soon as the connection is open
	renewal := sign(tokenSecret, "2", fake.Now().Add(time.Hour))
	var signed atomic.Int32
	tokenFn := func(context.Context) (string, error) {
		if signed.Add(1) == 1 {
			return first, nil
		}
		return renewal, nil
	}
	metric := func(line string) float64 {
		resp, err := http.Get(srv.URL + "/metrics")
		require.NoError(t, err)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), line+" "); ok {
				f, err := strconv.ParseFloat(v, 64)
				require.NoError(t, err)
				return f
			}
		}
		return 0
	}
	get := func(tok string) int {
		req, err := http.NewRequest(http.MethodGet, srv.URL+"/game/p1/0", nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	require.Equal(t, http.StatusOK, get(first), "the first token, verified before the flood")
	require.Equal(t, http.StatusUnauthorized, get(sign([]byte("a stranger's key, 32 bytes long.."), "x", fake.Now().Add(time.Hour))),
		"a forged token takes the server's one check a second")

	c := newClient(t, srv.URL, "p1", withHTTP(httpClient(t)), func(c *esclient.Config) {
		c.Token, c.Transport = tokenFn, esclient.Push
	})
	moved, stop := runMoving(t, c, fake)
	require.Eventually(t, func() bool { return metric(`eventstreamd_http_rejections_total{code="rate_limited"}`) >= 1 },
		5*time.Second, 10*time.Millisecond, "the renewal is refused")
	fake.Advance(time.Second) // the server checks one again
	require.Eventually(t, func() bool { return metric(`eventstreamd_auth_signature_checks_total{result="valid"}`) == 2 },
		5*time.Second, 10*time.Millisecond, "the renewal was not sent again")

	fake.Advance(time.Minute) // the first token is past its exp and leeway
	moved("still connected")
	require.ErrorIs(t, stop(), context.Canceled)
	assert.Equal(t, int32(1), upgrades.Load(), "one connection: it was never closed for its token")
	assert.Equal(t, int32(2), signed.Load())
}
