package main

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/goeventstream/eventstream/pkg/esclient"
	"github.com/goeventstream/eventstream/pkg/gamesim"
)

// TestReadmeQuotesMyGame: every Go block of the README marked as quoted
// from this file is a part of it, line for line, so the README's game is
// the one that compiles and that the tests below play.
func TestReadmeQuotesMyGame(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	src, err := os.ReadFile("main.go")
	require.NoError(t, err)
	quoted := regexp.MustCompile("(?s)<!-- quoted from examples/mygame/main.go[^>]*-->\n```go\n(.*?)```\n")
	blocks := quoted.FindAllStringSubmatch(string(readme), -1)
	require.Len(t, blocks, 2, "the README quotes the game and its Snapshotter")
	for _, b := range blocks {
		assert.True(t, strings.Contains(string(src), b[1]), "the README's block is not in main.go:\n%s", b[1])
	}
}

// TestSnapshotRoundTrip: the game restored from its snapshot, and played
// on, reaches the state of the game that played from tick 0, after
// players came and went.
func TestSnapshotRoundTrip(t *testing.T) {
	events := []esclient.Event{
		{T: 0, Type: esclient.TypeReset, Origin: "_", Body: "epoch"},
		{T: 1, Type: esclient.TypeConnect, Origin: "_", Body: "1"},
		{T: 2, Type: esclient.TypeConnect, Origin: "_", Body: "22"},
		{T: 3, Type: esclient.TypeConnect, Origin: "_", Body: "333"},
		{T: 5, Type: "jump", Origin: "22"},
		{T: 8, Type: esclient.TypeDisconnect, Origin: "_", Body: "1"},
		{T: 12, Type: "jump", Origin: "333"},
		{T: 15, Type: esclient.TypeConnect, Origin: "_", Body: "1"},
		{T: 25, Type: "jump", Origin: "1"},
	}
	full, err := gamesim.Replay(&game{}, events, 30, gamesim.Config{})
	require.NoError(t, err)
	want, err := gamesim.SnapshotOf(full)
	require.NoError(t, err)

	half, err := gamesim.Replay(&game{}, events[:8], 20, gamesim.Config{})
	require.NoError(t, err)
	snap, err := gamesim.SnapshotOf(half)
	require.NoError(t, err)
	g := &game{}
	from, err := gamesim.ReplayFrom(g, snap, events[8:], 30, gamesim.Config{})
	require.NoError(t, err)
	got, err := gamesim.SnapshotOf(from)
	require.NoError(t, err)
	assert.Equal(t, want, got)
	assert.Equal(t, []string{"22", "333", "1"}, g.order)

	assert.Error(t, (&game{}).Restore(from, []byte{5, 'a'}), "a snapshot cut short")
}
