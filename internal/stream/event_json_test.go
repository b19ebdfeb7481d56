package stream

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

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

// TestEventsFrom: the tail of a reply's events from a tick on, found by
// the events' heads, even where a body holds what looks like one.
func TestEventsFrom(t *testing.T) {
	var b []byte
	b = appendEvent(b, 3, "m", "1", []byte(`"a,{\"t\":9"`))
	b = appendEvent(b, 3, "m", "1", []byte(`"b"`))
	b = appendEvent(b, 5, "m", "2", []byte(`","`))
	b = appendEvent(b, 7, "m", "2", []byte(`""`))
	events := b[1:] // as a reply holds them: no comma before the first
	tests := []struct {
		give  int64
		wantN int // events in the tail
	}{
		{give: 0, wantN: 4},
		{give: 3, wantN: 4},
		{give: 4, wantN: 2},
		{give: 6, wantN: 1},
		{give: 7, wantN: 1},
		{give: 8, wantN: 0},
	}
	for _, tt := range tests {
		got := EventsFrom(events, tt.give)
		assert.Len(t, splitEvents(got), tt.wantN, "from %d", tt.give)
		if tt.wantN > 0 {
			assert.True(t, json.Valid(append(append([]byte("["), got...), ']')), "from %d: %s", tt.give, got)
		}
	}
}
