package esclient_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/goeventstream/eventstream/internal/apitest"
	"github.com/goeventstream/eventstream/internal/auth"
	"github.com/goeventstream/eventstream/internal/stream"
	"github.com/goeventstream/eventstream/pkg/esclient"
)

// A server with auth on admits the players the game's backend signs a
// token for (docs/protocol.md, "Tokens"). Config.Token asks the backend:
// here it signs the token itself, as the backend would.
func ExampleConfig_token() {
	secret := []byte("the server's -auth-secret, 32+ bytes")
	url, stop := exampleAuthServer(secret) // eventstreamd -auth-secret …
	defer stop()

	fromBackend := func(ctx context.Context) (string, error) {
		return jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
			"sub":    "player-7", // the private id the client uses
			"stream": "match-*",  // every match
			"exp":    time.Now().Add(time.Hour).Unix(),
		}).SignedString(secret)
	}
	c, err := esclient.New(esclient.Config{BaseURL: url, Stream: "match-1", PrivateID: "player-7", Token: fromBackend})
	if err != nil {
		panic(err)
	}
	u, err := c.Sync(context.Background())
	if err != nil {
		panic(err)
	}
	fmt.Println("joined as", u.PublicID)

	stranger, err := esclient.New(esclient.Config{BaseURL: url, Stream: "match-1", PrivateID: "someone"})
	if err != nil {
		panic(err)
	}
	var se *esclient.Error
	if _, err := stranger.Sync(context.Background()); errors.As(err, &se) {
		fmt.Println("without a token:", se.Status, se.Code)
	}
	// Output:
	// joined as 1
	// without a token: 401 unauthorized
}

// exampleAuthServer starts a real eventstreamd with auth on, and returns
// its URL and a function that stops it.
func exampleAuthServer(secret []byte) (string, func()) {
	store, err := stream.NewMemoryStore(stream.DefaultConfig())
	if err != nil {
		panic(err)
	}
	v, err := auth.New(auth.Config{Secret: secret})
	if err != nil {
		panic(err)
	}
	h, err := apitest.AuthHandler(store, v, nil)
	if err != nil {
		panic(err)
	}
	srv := httptest.NewServer(h)
	return srv.URL, srv.Close
}
