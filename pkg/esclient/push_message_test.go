package esclient

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPushMessageNamesItsEpoch: a push message that posts events names
// the epoch the client read last, so that the server refuses it, rather
// than applying it to a new game, when the stream started anew before the
// client read that (docs/protocol.md, "Push"). A poll names it in the
// target's query instead.
func TestPushMessageNamesItsEpoch(t *testing.T) {
	c, err := New(Config{BaseURL: "http://127.0.0.1:1", Stream: "s", PrivateID: "p"})
	require.NoError(t, err)
	c.epoch = "6db8b8f2-16c9-427d-9fc9-de43870ed0db"
	require.NoError(t, c.Send("move", "left"))

	body := c.nextPush(nil)
	require.NotNil(t, body)
	var msg struct {
		Epoch  string            `json:"epoch"`
		Batch  string            `json:"batch"`
		Events []json.RawMessage `json:"events"`
	}
	require.NoError(t, json.Unmarshal(body.data, &msg))
	assert.Equal(t, c.epoch, msg.Epoch)
	assert.NotEmpty(t, msg.Batch)
	assert.Len(t, msg.Events, 1)

	assert.NotContains(t, string(encodeRequest(body.batch, nil, "")), `"epoch"`, "a poll's body leaves it to the query")
}
