package stream

import (
	"context"
	"testing"

	"github.com/redis/rueidis"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/goeventstream/eventstream/internal/redistest"
)

// TestDecodeSyncReply feeds decodeSyncReply replies that a real Redis
// returned for a Lua table, so that every value it reads is checked as the
// sync script's reply would be.
func TestDecodeSyncReply(t *testing.T) {
	reply := scriptReplies(t)

	t.Run("ok", func(t *testing.T) {
		got, err := decodeSyncReply(reply(t, `{"ok", "3", 42, "ep", 20, 1, 0, 1, 2, '{"t":41}', 0, 40, 20, -1, 0, 1, 2, 3}`))
		require.NoError(t, err)
		assert.Equal(t, "3", got.PublicID)
		assert.Equal(t, int64(42), got.T)
		assert.Equal(t, "ep", got.Epoch)
		assert.Equal(t, 20, got.TickRate)
		assert.True(t, got.More)
		assert.False(t, got.Created)
		assert.True(t, got.Connected)
		assert.Equal(t, 2, got.Appended)
		assert.Equal(t, `{"t":41}`, string(got.events))
		assert.False(t, got.skipped)
		assert.Equal(t, int64(40), got.covered)
		require.NotNil(t, got.Snap)
		assert.Equal(t, int64(20), *got.Snap)
		assert.Nil(t, got.Dump, "-1 is none")
		require.NotNil(t, got.Base)
		assert.Equal(t, int64(0), *got.Base, "tick 0 is a checkpoint")
		assert.Equal(t, []int{1, 2, 3}, []int{got.Judged, got.Diverged, got.Compacted})
	})
	for _, tt := range []struct {
		code string
		want error
	}{
		{code: "server_full", want: ErrServerFull},
		{code: "client_cap", want: ErrClientCap},
		{code: "event_cap", want: ErrEventCap},
	} {
		t.Run(tt.code, func(t *testing.T) {
			_, err := decodeSyncReply(reply(t, `{"err", "`+tt.code+`"}`))
			assert.ErrorIs(t, err, tt.want)
		})
	}
	for _, tt := range []struct {
		name string
		give string
		want string
	}{
		{name: "unknown code", give: `{"err", "nope"}`, want: `unknown error "nope"`},
		{name: "unknown status", give: `{"maybe"}`, want: `answered "maybe"`},
		{name: "a value missing", give: `{"ok", "3", 42, "ep", 20, 1, 0, 1, 2, "", 0, 40, 20, -1, -1, 0, 0}`, want: "value 18 is missing"},
		{name: "a value too many", give: `{"ok", "3", 42, "ep", 20, 1, 0, 1, 2, "", 0, 40, 20, -1, -1, 0, 0, 0, 7}`, want: "19 values, not 18"},
		{name: "a number that is not", give: `{"ok", "3", "x", "ep", 20, 1, 0, 1, 2, "", 0, 40, 20, -1, -1, 0, 0, 0}`, want: "value 3"},
		{name: "a flag that is not", give: `{"ok", "3", 42, "ep", 20, 2, 0, 1, 2, "", 0, 40, 20, -1, -1, 0, 0, 0}`, want: "value 6 is 2, not 0 or 1"},
		{name: "a string that is a list", give: `{"ok", {"3"}, 42, "ep", 20, 1, 0, 1, 2, "", 0, 40, 20, -1, -1, 0, 0, 0}`, want: "value 2"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decodeSyncReply(reply(t, tt.give))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			assert.NotErrorIs(t, err, ErrUnavailable, "a reply that is wrong is a bug, not an outage")
		})
	}
}

func TestDecodeSweepReply(t *testing.T) {
	reply := scriptReplies(t)
	eval := func(lua string) []rueidis.RedisMessage { return reply(t, lua) }
	got, err := decodeSweepReply(eval(`{"ok", 1500, 7, "2", "5"}`))
	require.NoError(t, err)
	assert.Equal(t, sweepReply{status: "ok", next: 1500, t: 7, disconnected: []string{"2", "5"}}, got)
	got, err = decodeSweepReply(eval(`{"expired"}`))
	require.NoError(t, err)
	assert.Equal(t, "expired", got.status)
	_, err = decodeSweepReply(eval(`{"ok", 1500}`))
	assert.ErrorContains(t, err, "value 3 is missing")
	_, err = decodeSweepReply(eval(`{"gone", 1}`))
	assert.ErrorContains(t, err, "2 values, not 1")
}

// scriptReplies returns a function that has a real redis-server return
// the Lua table lua, as a script's reply.
func scriptReplies(t *testing.T) func(t *testing.T, lua string) []rueidis.RedisMessage {
	srv := redistest.Start(t)
	client := srv.Client(t)
	return func(t *testing.T, lua string) []rueidis.RedisMessage {
		t.Helper()
		vals, err := client.Do(context.Background(), client.B().Eval().Script("return "+lua).Numkeys(0).Build()).ToArray()
		require.NoError(t, err)
		return vals
	}
}
