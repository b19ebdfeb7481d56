package api

import (
	"net/url"
	"strings"
	"testing"
)

// BenchmarkQueryTokens is what the search for a token costs in a query of
// the longest request line a server takes (16 KiB), and in a push upgrade's.
func BenchmarkQueryTokens(b *testing.B) {
	for _, tt := range []struct{ name, raw string }{
		{"upgrade", "epoch=0b1c5e2a-7f3d-4c8e-9a6b-1d2e3f405162&access_token=" + strings.Repeat("x", 600)},
		{"params=4000", strings.Repeat("a=1&", 4000)},
	} {
		b.Run(tt.name, func(b *testing.B) {
			b.Run("parse", func(b *testing.B) {
				for b.Loop() {
					q, _ := url.ParseQuery(tt.raw)
					_ = q[accessTokenParam]
				}
			})
			b.Run("search", func(b *testing.B) {
				for b.Loop() {
					queryTokens(tt.raw)
				}
			})
		})
	}
}
