// Command signtoken signs a stream token as a game's backend would
// (docs/protocol.md, "Tokens"), with the HS256 secret in
// EVENTSTREAMD_AUTH_SECRET, and prints it:
//
//	TOKEN=$(go run ./examples/signtoken -sub me -stream foo)
//	curl -XPOST -H "Authorization: Bearer $TOKEN" -d '{}' localhost:9922/foo/me/0
package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func main() {
	sub := flag.String("sub", "me", "the player: the private id it uses")
	stream := flag.String("stream", "foo", `the stream it admits to, or a prefix ending in "*"`)
	role := flag.String("role", "player", "player or spectator")
	ttl := flag.Duration("ttl", time.Hour, "how long the token is valid")
	flag.Parse()
	token, err := sign([]byte(os.Getenv("EVENTSTREAMD_AUTH_SECRET")), *sub, *stream, *role, *ttl)
	if err != nil {
		fmt.Fprintln(os.Stderr, "signtoken:", err)
		os.Exit(1)
	}
	fmt.Println(token)
}

// sign is all a backend needs to admit a player to a stream.
func sign(secret []byte, sub, stream, role string, ttl time.Duration) (string, error) {
	if len(secret) < 32 {
		return "", fmt.Errorf("EVENTSTREAMD_AUTH_SECRET must hold the server's secret, at least 32 bytes")
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub":    sub,    // the private id of the paths it may use
		"stream": stream, // or "room-*" for every room
		"role":   role,
		"exp":    time.Now().Add(ttl).Unix(), // required
	}).SignedString(secret)
}
