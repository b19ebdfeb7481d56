package auth

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"
)

// FuzzAudience: the "aud" claim is read as jwt reads it, but for more than
// maxAudiences, which are refused: never an audience jwt would not read.
func FuzzAudience(f *testing.F) {
	for _, s := range []string{`"game"`, `""`, `["a","game"]`, `[]`, `null`, `["a",null]`, `["a",1]`, `{"a":1}`, `["a,b"]`, `1`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var ours audience
		if err := json.Unmarshal(b, &ours); err != nil {
			return
		}
		var theirs jwt.ClaimStrings
		require.NoError(t, json.Unmarshal(b, &theirs), "jwt refuses what we read")
		require.True(t, slices.Equal([]string(theirs), []string(ours)), "jwt reads %q, we %q", theirs, ours)
		require.LessOrEqual(t, len(ours), maxAudiences)
	})
}
