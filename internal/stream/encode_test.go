package stream

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
			enc := appendString(nil, tt.give)
			var got string
			require.NoError(t, json.Unmarshal(enc, &got), "encoded %q", enc)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestAppendEventIsJSON(t *testing.T) {
	enc := appendEvent(nil, 42, "mo\"ve", "7", []byte(`"b\u00e9"`))
	require.Equal(t, byte(','), enc[0])
	var got struct {
		T      int64  `json:"t"`
		Type   string `json:"type"`
		Origin string `json:"origin"`
		Body   string `json:"body"`
	}
	require.NoError(t, json.Unmarshal(enc[1:], &got))
	assert.Equal(t, int64(42), got.T)
	assert.Equal(t, "mo\"ve", got.Type)
	assert.Equal(t, "7", got.Origin)
	assert.Equal(t, "bé", got.Body)
}
