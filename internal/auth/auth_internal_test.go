package auth

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
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

// TestGrantCacheBounded: the grants kept stay within their count and their
// bytes, and to make room the cache drops first those of no more use: of
// an expired token, or verified with keys since replaced.
func TestGrantCacheBounded(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	keys, old := &keySet{}, &keySet{}
	valid := Grant{Sub: "p1", Stream: "s", Expires: now.Add(time.Hour)}
	expired := Grant{Sub: "p1", Stream: "s", Expires: now.Add(-MaxSkew)}
	held := func(c *grantCache) []string {
		var out []string
		for tok := range c.m {
			out = append(out, tok)
		}
		slices.Sort(out)
		return out
	}
	bytes := func(c *grantCache) int {
		n := 0
		for tok, e := range c.m {
			n += size(tok, &e.g)
		}
		return n
	}

	t.Run("by count", func(t *testing.T) {
		c := &grantCache{maxGrants: 3, maxBytes: 1 << 20}
		for _, tok := range []string{"a", "b", "c", "d", "e"} {
			c.put(tok, keys, valid, now)
			require.LessOrEqual(t, len(c.m), 3)
		}
		assert.Len(t, c.m, 3)
		assert.Contains(t, held(c), "e", "the newest is kept")
		assert.Equal(t, bytes(c), c.bytes)
	})
	t.Run("by bytes", func(t *testing.T) {
		c := &grantCache{maxGrants: 100, maxBytes: 2*size("aaaa", &valid) + 10}
		for _, tok := range []string{"aaaa", "bbbb", "cccc", "dddd"} {
			c.put(tok, keys, valid, now)
			require.LessOrEqual(t, c.bytes, c.maxBytes)
		}
		assert.Len(t, c.m, 2)
		assert.Equal(t, bytes(c), c.bytes)
	})
	t.Run("again", func(t *testing.T) {
		c := &grantCache{maxGrants: 3, maxBytes: 1 << 20}
		for range 5 {
			c.put("a", keys, valid, now)
		}
		assert.Len(t, c.m, 1)
		assert.Equal(t, size("a", &valid), c.bytes, "counted once")
	})
	for _, tt := range []struct {
		name string
		keys *keySet // of the grant of no more use
		g    Grant
	}{
		{name: "expired first", keys: keys, g: expired},
		{name: "replaced keys first", keys: old, g: valid},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := &grantCache{maxGrants: 3, maxBytes: 1 << 20}
			c.put("b", keys, valid, now)
			c.put("stale", tt.keys, tt.g, now)
			c.put("c", keys, valid, now)
			c.put("d", keys, valid, now)
			assert.Equal(t, []string{"b", "c", "d"}, held(c))
		})
	}
	_, ok := (&grantCache{m: map[string]cachedGrant{"b": {g: valid, keys: keys}}}).get("b", old)
	assert.False(t, ok, "a grant is used only with the keys it was verified with")
}
