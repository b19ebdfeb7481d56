package gamesim_test

import (
	"context"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/goeventstream/eventstream/internal/apitest"
	"github.com/goeventstream/eventstream/internal/auth"
	"github.com/goeventstream/eventstream/internal/protocol"
	"github.com/goeventstream/eventstream/internal/stream"
	"github.com/goeventstream/eventstream/pkg/esclient"
	"github.com/goeventstream/eventstream/pkg/gamesim"
)

// TestDriverWithTokens: a Driver plays on a server with auth on through
// its client's Config.Token (the token renewed as it nears its exp), and
// without one it gets the server's refusal as its error.
func TestDriverWithTokens(t *testing.T) {
	secret := []byte("the HS256 secret of the gamesim tests")
	store, err := stream.NewMemoryStore(stream.DefaultConfig())
	require.NoError(t, err)
	v, err := auth.New(auth.Config{Secret: secret})
	require.NoError(t, err)
	h, err := apitest.AuthHandler(store, v, nil)
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	for _, transport := range []esclient.Transport{esclient.Poll, esclient.Push} {
		var calls atomic.Int32
		c, err := esclient.New(esclient.Config{BaseURL: srv.URL, Stream: "arena", PrivateID: "bot-1", Transport: transport,
			Token: func(context.Context) (string, error) {
				calls.Add(1)
				// 30 s: within the renewal margin at once, so it is renewed before each request, and on a push connection at each turn of its loop.
				return jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
					"sub": "bot-1", "stream": "arena", "exp": time.Now().Add(30 * time.Second).Unix(),
				}).SignedString(secret)
			}})
		require.NoError(t, err)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		b := &jumper{done: cancel}
		err = gamesim.New(c, b, gamesim.Config{}).Run(ctx)
		cancel()
		require.ErrorIs(t, err, context.Canceled, "transport %v", transport)
		assert.Equal(t, 3, b.seen, "the bot saw its jumps")
		assert.Greater(t, calls.Load(), int32(1), "the token was renewed (by push, on the connection)")
	}

	c, err := esclient.New(esclient.Config{BaseURL: srv.URL, Stream: "arena", PrivateID: "bot-2", Transport: esclient.Poll})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = gamesim.New(c, &jumper{done: cancel}, gamesim.Config{}).Run(ctx)
	var se *esclient.Error
	require.ErrorAs(t, err, &se)
	assert.Equal(t, protocol.CodeUnauthorized, se.Code)
}
