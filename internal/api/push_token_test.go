package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/goeventstream/eventstream/internal/api"
	"github.com/goeventstream/eventstream/internal/protocol"
	"github.com/goeventstream/eventstream/internal/redistest"
	"github.com/goeventstream/eventstream/internal/stream"
)

// expiresAt is a claims edit: the token expires d after the harness's
// start.
func expiresAt(d time.Duration) func(jwt.MapClaims) {
	return func(c jwt.MapClaims) { c["exp"] = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(d).Unix() }
}

// authPushHarness is a push harness with auth on, pinging often, so that
// an expiry on the fake clock is noticed at once.
func authPushHarness(t *testing.T, url redisURL) (*harness, string) {
	return pushHarnessOn(t, url, withAuth(t, "open-"), func(a *api.Config, _ *stream.Config) {
		a.Push.PingInterval = 10 * time.Millisecond
		a.Push.MaxLag = 24 * time.Hour // the fake clock jumps by minutes
	})
}

// readUntil reads messages until keep takes one, within a generous time.
func readUntil(t *testing.T, c *websocket.Conn, keep func([]byte) bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for {
		_, b, err := c.Read(ctx)
		require.NoError(t, err)
		if keep(b) {
			return
		}
	}
}

// errorMessage reads messages until an error, and returns it.
func errorMessage(t *testing.T, c *websocket.Conn) protocol.ErrorBody {
	t.Helper()
	var e protocol.ErrorReply
	readUntil(t, c, func(b []byte) bool { return json.Unmarshal(b, &e) == nil && e.Error.Code != "" })
	return e.Error
}

// closeCode reads until c is closed, and returns the close code.
func closeCode(t *testing.T, c *websocket.Conn) websocket.StatusCode {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for {
		if _, _, err := c.Read(ctx); err != nil {
			require.NoError(t, ctx.Err(), "not closed in time")
			return websocket.CloseStatus(err)
		}
	}
}

func send(t *testing.T, c *websocket.Conn, msg string) {
	t.Helper()
	require.NoError(t, c.Write(context.Background(), websocket.MessageText, []byte(msg)))
}

func TestPushTokens(t *testing.T) { testPushTokens(t, "") }

func TestPushTokensRedis(t *testing.T) { testPushTokens(t, redisURL(redistest.Start(t).URL())) }

func testPushTokens(t *testing.T, url redisURL) {
	t.Run("an upgrade needs a token", func(t *testing.T) {
		_, base := authPushHarness(t, url)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, resp, err := websocket.Dial(ctx, base+"/s/p1/0", nil)
		require.Error(t, err)
		require.NotNil(t, resp)
		assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
		_, resp, err = websocket.Dial(ctx, base+"/s/p1/0?access_token="+token(t, "p2", "s"), nil)
		require.Error(t, err)
		assert.Equal(t, http.StatusForbidden, resp.StatusCode)
	})

	t.Run("renewed, it lives on; unrenewed, it is closed with 4003", func(t *testing.T) {
		h, base := authPushHarness(t, url)
		c := dial(t, base+"/s/p1/0?access_token="+token(t, "p1", "s", expiresAt(time.Minute)))
		next(t, c, func(protocol.SyncReply) bool { return true })

		advance(t, h, 50*time.Second)
		next(t, c, func(r protocol.SyncReply) bool { return len(r.Events) > 0 }) // p1's _c
		send(t, c, `{"token":"`+token(t, "p1", "s", expiresAt(2*time.Minute))+`"}`)
		send(t, c, `{"batch":"b1","events":[{"type":"move","body":"after the renewal"}]}`)
		require.Equal(t, `{"batch":"b1"}`, nextText(t, c), "the renewal is not answered; the next message is applied")
		advance(t, h, time.Minute) // past the first token's exp and its leeway
		got := next(t, c, func(r protocol.SyncReply) bool { return len(r.Events) > 0 })
		assert.Equal(t, "move", got.Events[len(got.Events)-1].Type, "still pushed to")

		advance(t, h, time.Minute) // past the renewed token's exp and its leeway
		assert.Equal(t, api.CloseTokenExpired, closeCode(t, c))
	})

	t.Run("a message after the exp closes it", func(t *testing.T) {
		h, base := pushHarnessOn(t, url, withAuth(t, ""), func(a *api.Config, _ *stream.Config) {
			a.Push.PingInterval, a.Push.MaxLag = time.Hour, 24*time.Hour
		})
		c := dial(t, base+"/s/p1/0?access_token="+token(t, "p1", "s", expiresAt(time.Minute)))
		next(t, c, func(protocol.SyncReply) bool { return true })
		advance(t, h, time.Minute+30*time.Second)
		before := h.read("s")
		send(t, c, `{"events":[{"type":"move","body":"too late"}]}`)
		assert.Equal(t, api.CloseTokenExpired, closeCode(t, c))
		h.clock.Advance(time.Second) // no loop: the connection is closed
		assert.Equal(t, before, h.read("s"), "nothing of it was applied")
	})

	tests := []struct {
		name     string
		role     string // of the connection's token
		give     string
		wantCode string
	}{
		{name: "another sub", give: `{"token":"` + token(t, "p2", "s") + `"}`, wantCode: protocol.CodeForbidden},
		{name: "another stream", give: `{"token":"` + token(t, "p1", "other") + `"}`, wantCode: protocol.CodeForbidden},
		{name: "another role", give: `{"token":"` + token(t, "p1", "s", func(c jwt.MapClaims) { c["role"] = "spectator" }) + `"}`, wantCode: protocol.CodeForbidden},
		{name: "expired", give: `{"token":"` + token(t, "p1", "s", expiresAt(-time.Hour)) + `"}`, wantCode: protocol.CodeTokenExpired},
		{name: "not a token", give: `{"token":"garbage"}`, wantCode: protocol.CodeUnauthorized},
		{name: "a token and events", give: `{"token":"` + token(t, "p1", "s") + `","events":[{"type":"move"}]}`, wantCode: protocol.CodeBadRequest},
		{name: "a spectator's events", role: "spectator", give: `{"events":[{"type":"move"}]}`, wantCode: protocol.CodeForbidden},
		{name: "a spectator's hashes", role: "spectator", give: `{"hashes":[{"t":0,"h":"ab"}]}`, wantCode: protocol.CodeForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, base := authPushHarness(t, url)
			role := tt.role
			if role == "" {
				role = "player"
			}
			tok := token(t, "p1", "s", func(c jwt.MapClaims) { c["role"] = role })
			if role == "spectator" {
				h.sync("/s/owner/0", "", bearer(token(t, "owner", "s"))...) // a spectator creates no stream
			}
			c := dial(t, base+"/s/p1/0?access_token="+tok)
			next(t, c, func(protocol.SyncReply) bool { return true })
			advance(t, h, 100*time.Millisecond)
			before := h.read("s")
			send(t, c, tt.give)
			e := errorMessage(t, c)
			assert.Equal(t, tt.wantCode, e.Code)
			assertNoLeak(t, h, e.Message, tok, tt.give)
			advance(t, h, 100*time.Millisecond)
			assert.Equal(t, before, h.read("s"), "a refused message changed the stream")

			// The connection stays, with its first token.
			send(t, c, `{"token":"`+tok+`"}`)
			advance(t, h, 100*time.Millisecond)
			next(t, c, func(protocol.SyncReply) bool { return true })
		})
	}
}

// nextText reads the next message that is not a push, as text.
func nextText(t *testing.T, c *websocket.Conn) string {
	t.Helper()
	var text string
	readUntil(t, c, func(b []byte) bool { text = string(b); return !strings.HasPrefix(text, `{"id":`) })
	return text
}
