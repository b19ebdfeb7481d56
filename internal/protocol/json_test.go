package protocol_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/goeventstream/eventstream/internal/protocol"
)

func TestAppendStringRoundTrips(t *testing.T) {
	tests := []struct {
		give string
		want string // the decoded value
	}{
		{give: "", want: ""},
		{give: "move", want: "move"},
		{give: `quote " and \ backslash`, want: `quote " and \ backslash`},
		{give: "control \x00\x01\n\t\x1f", want: "control \x00\x01\n\t\x1f"},
		{give: "unicode é ☃ 🎮", want: "unicode é ☃ 🎮"},
		{give: "<html>&amp;", want: "<html>&amp;"},
		{give: "bad \xff utf8", want: "bad \ufffd utf8"},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			enc := protocol.AppendString(nil, tt.give)
			var got string
			require.NoError(t, json.Unmarshal(enc, &got), "encoded %q", enc)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestValidName(t *testing.T) {
	tests := []struct {
		give string
		want bool
	}{
		{give: "foo", want: true},
		{give: "A-Z_a.z~0-9", want: true},
		{give: "", want: false},
		{give: string(make([]byte, 129)), want: false},
		{give: "has space", want: false},
		{give: "slash/", want: false},
		{give: "pct%41", want: false},
		{give: "é", want: false},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, protocol.ValidName(tt.give), "%q", tt.give)
	}
	long := make([]byte, 128)
	for i := range long {
		long[i] = 'x'
	}
	assert.True(t, protocol.ValidName(string(long)), "128 characters")
	assert.False(t, protocol.ValidName(string(long)+"x"), "129 characters")
}
