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
