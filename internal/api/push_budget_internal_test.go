package api

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/goeventstream/eventstream/internal/stream"
)

// TestReadHeldWaitsForRoom: the reads a push connection makes for itself
// (its history pages, its writer's reads and rejoins) take a page of
// in-flight memory before they read, are refused without reading when
// there is none, and hold only what their reply needs once it is known.
func TestReadHeldWaitsForRoom(t *testing.T) {
	ctx := context.Background()
	b := newBudget(1000, 0)
	c := &pushConn{p: &pusher{srv: &Server{inflight: b, limits: Limits{MaxReplyBytes: 600}}}}
	reads := 0
	read := func(context.Context) (*stream.SyncResult, error) {
		reads++
		return &stream.SyncResult{Events: []byte(`{"t":1,"type":"m","origin":"1","body":""}`)}, nil
	}

	other, ok := b.hold(ctx, 500) // another request holds half
	require.True(t, ok)
	_, _, err := c.readHeld(ctx, read)
	require.ErrorIs(t, err, errNoMemory)
	assert.Zero(t, reads, "refused before it read")

	other.release()
	res, mem, err := c.readHeld(ctx, read)
	require.NoError(t, err)
	assert.Equal(t, pushBytes(res), mem.n, "trimmed to what its reply holds")
	_, ok = b.hold(ctx, 1000-mem.n)
	assert.True(t, ok, "the rest was given back")
	_, ok = b.hold(ctx, 1)
	assert.False(t, ok, "and the reply's is held until released")
	n := mem.n
	mem.release()
	_, ok = b.hold(ctx, n)
	assert.True(t, ok, "released")
}
