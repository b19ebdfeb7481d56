package sim

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/goeventstream/eventstream/pkg/esclient"
	"github.com/goeventstream/eventstream/pkg/gamesim"
)

var update = flag.Bool("update", false, "rewrite testdata/vectors.json")

const vectorsFile = "testdata/vectors.json"

// Vectors is testdata/vectors.json, which the TypeScript copy's test
// (examples/web/test/sim.test.mjs) replays too.
type Vectors struct {
	About  string           `json:"about"`
	Events []esclient.Event `json:"events"`
	Until  int64            `json:"until"`
	// Hashes[k] is the first 16 hex digits of the SHA-256 of the Driver's
	// snapshot after tick k (gamesim.SnapshotOf).
	Hashes []string `json:"hashes"`
	// Snapshots are whole snapshots of a few ticks.
	Snapshots []VectorSnapshot `json:"snapshots"`
}

// VectorSnapshot is the Driver's snapshot after tick T.
type VectorSnapshot struct {
	T    int64  `json:"t"`
	Hash string `json:"hash"` // lowercase hex SHA-256, as reported at a checkpoint
	Data string `json:"data"` // base64
}

// script is a recorded stream of four players over 1400 ticks (a round
// and its pause): random keys, a player who leaves and returns, names
// good and bad, malformed inputs and a server event of a later version.
func script() []esclient.Event {
	r := rand.New(rand.NewPCG(18, 1)) // the script's hands, not the game's Rand
	ev := func(t int64, typ, origin, body string) esclient.Event {
		return esclient.Event{T: t, Type: typ, Origin: origin, Body: body}
	}
	server := map[int64][]esclient.Event{
		0:   {ev(0, esclient.TypeReset, "_", "3b0c6a4e-vectors"), ev(0, esclient.TypeConnect, "_", "1")},
		3:   {ev(3, TypeName, "1", "alice")},
		10:  {ev(10, esclient.TypeConnect, "_", "2")},
		12:  {ev(12, TypeName, "2", "bob\u00e9"), ev(12, TypeName, "2", "a name too long")},
		13:  {ev(13, TypeName, "2", "bob")},
		30:  {ev(30, esclient.TypeConnect, "_", "3"), ev(30, TypeInput, "9", "8")}, // an input of nobody
		200: {ev(200, "_z", "_", "a server event of a later version")},
		500: {ev(500, esclient.TypeDisconnect, "_", "2")},
		560: {ev(560, esclient.TypeConnect, "_", "2")},
		900: {ev(900, esclient.TypeConnect, "_", "4"), ev(900, TypeName, "4", "gobot")},
	}
	online := []string{}
	var events []esclient.Event
	for t := range int64(1400) {
		for _, e := range server[t] {
			events = append(events, e)
			switch e.Type {
			case esclient.TypeConnect:
				online = append(online, e.Body)
			case esclient.TypeDisconnect:
				online = deleteID(online, e.Body)
			}
		}
		for _, id := range online {
			switch r.IntN(12) {
			case 0:
				events = append(events, ev(t, TypeInput, id, FormatInput(r.IntN(16))))
			case 1:
				if r.IntN(8) == 0 {
					events = append(events, ev(t, TypeInput, id, []string{"", "g", "10", "F"}[r.IntN(4)]))
				}
			}
		}
	}
	return events
}

func deleteID(ids []string, id string) []string {
	out := ids[:0]
	for _, x := range ids {
		if x != id {
			out = append(out, x)
		}
	}
	return out
}

// observed is a World that hashes its snapshot after every tick, and
// notes what happened, so the test knows the vectors cover the game.
type observed struct {
	World
	collisions int
}

func (o *observed) StateHash(d *gamesim.Driver) uint64 {
	for _, p := range o.Players {
		if p.Cooldown == BumpCooldown {
			o.collisions++
		}
	}
	data, err := gamesim.SnapshotOf(d)
	if err != nil {
		panic(err)
	}
	sum := sha256.Sum256(data)
	return uint64(sum[0])<<56 | uint64(sum[1])<<48 | uint64(sum[2])<<40 | uint64(sum[3])<<32 |
		uint64(sum[4])<<24 | uint64(sum[5])<<16 | uint64(sum[6])<<8 | uint64(sum[7])
}

// makeVectors replays the script and records what the vectors hold.
func makeVectors(t *testing.T) (Vectors, *observed) {
	events := script()
	const until = 1400
	o := &observed{}
	d, err := gamesim.Replay(o, events, until, gamesim.Config{RecordHashes: until})
	require.NoError(t, err)
	v := Vectors{
		About:  "Gem Rush (examples/web/sim) replayed by gamesim: the hash after every tick, and whole snapshots; made by go test ./examples/web/sim -update",
		Events: events,
		Until:  until,
	}
	for i, h := range d.Hashes() {
		require.Equal(t, int64(i), h.Tick)
		v.Hashes = append(v.Hashes, fmt.Sprintf("%016x", h.Hash))
	}
	for _, k := range []int64{0, 20, 640, 1399} {
		d, err := gamesim.Replay(&World{}, head(events, k+1), k+1, gamesim.Config{})
		require.NoError(t, err)
		data, err := gamesim.SnapshotOf(d)
		require.NoError(t, err)
		v.Snapshots = append(v.Snapshots, VectorSnapshot{T: k, Hash: esclient.HashOf(data), Data: base64.StdEncoding.EncodeToString(data)})
	}
	return v, o
}

// head returns the events below tick end.
func head(events []esclient.Event, end int64) []esclient.Event {
	for i, e := range events {
		if e.T >= end {
			return events[:i]
		}
	}
	return events
}

// TestVectors replays the recorded stream and compares it with the
// committed vectors, which the TypeScript test replays too: a change to
// the game in either language that the other does not make fails one of
// them. Run with -update after changing the game on purpose (and the TS
// copy the same way).
func TestVectors(t *testing.T) {
	v, o := makeVectors(t)
	got := encodeVectors(t, v)

	// The vectors cover the game: discs collide, collect, a round ends.
	assert.Greater(t, o.collisions, 3, "collisions")
	assert.Equal(t, 1, o.Round, "rounds finished")
	assert.Positive(t, o.WinnerScore, "the first round's winner scored")
	assert.NotEmpty(t, o.Winner)
	require.Len(t, o.Players, 4)
	assert.Equal(t, []string{"alice", "bob", "", "gobot"}, []string{o.Players[0].Name, o.Players[1].Name, o.Players[2].Name, o.Players[3].Name})

	if *update {
		require.NoError(t, os.MkdirAll(filepath.Dir(vectorsFile), 0o755))
		require.NoError(t, os.WriteFile(vectorsFile, got, 0o644))
	}
	want, err := os.ReadFile(vectorsFile)
	require.NoError(t, err, "go test ./examples/web/sim -run TestVectors -update writes it")
	if !bytes.Equal(want, got) {
		var old Vectors
		require.NoError(t, json.Unmarshal(want, &old))
		for k := range min(len(old.Hashes), len(v.Hashes)) {
			require.Equal(t, old.Hashes[k], v.Hashes[k], "the first tick whose state differs from the vectors: %d", k)
		}
		require.Equal(t, string(want), string(got), "the vectors changed: if on purpose, run with -update and change src/sim.ts the same way")
	}
}

// encodeVectors writes v as JSON with one event, hash or snapshot a line,
// so that a diff of the file shows what changed.
func encodeVectors(t *testing.T, v Vectors) []byte {
	var b bytes.Buffer
	line := func(prefix string, x any, suffix string) {
		j, err := json.Marshal(x)
		require.NoError(t, err)
		b.WriteString(prefix)
		b.Write(j)
		b.WriteString(suffix)
	}
	list := func(name string, n int, item func(int) any, last bool) {
		b.WriteString(` "` + name + `": [` + "\n")
		for i := range n {
			sep := ",\n"
			if i == n-1 {
				sep = "\n"
			}
			line("  ", item(i), sep)
		}
		if last {
			b.WriteString(" ]\n")
		} else {
			b.WriteString(" ],\n")
		}
	}
	b.WriteString("{\n")
	line(` "about": `, v.About, ",\n")
	line(` "until": `, v.Until, ",\n")
	list("events", len(v.Events), func(i int) any { return v.Events[i] }, false)
	list("hashes", len(v.Hashes), func(i int) any { return v.Hashes[i] }, false)
	list("snapshots", len(v.Snapshots), func(i int) any { return v.Snapshots[i] }, true)
	b.WriteString("}\n")
	var check Vectors
	require.NoError(t, json.Unmarshal(b.Bytes(), &check))
	require.Equal(t, v, check)
	return b.Bytes()
}

// TestSnapshotRoundTrip restores the snapshot of every tick of the
// script into a fresh World and snapshots it again: the same bytes, and
// the replay from it reaches the same end.
func TestSnapshotRoundTrip(t *testing.T) {
	events := script()
	end, err := gamesim.Replay(&World{}, events, 1400, gamesim.Config{})
	require.NoError(t, err)
	want, err := gamesim.SnapshotOf(end)
	require.NoError(t, err)
	for k := int64(0); k < 1400; k += 37 {
		d, err := gamesim.Replay(&World{}, head(events, k+1), k+1, gamesim.Config{})
		require.NoError(t, err)
		data, err := gamesim.SnapshotOf(d)
		require.NoError(t, err)
		rest := events[len(head(events, k+1)):]
		again, err := gamesim.ReplayFrom(&World{}, data, nil, k+1, gamesim.Config{})
		require.NoError(t, err)
		data2, err := gamesim.SnapshotOf(again)
		require.NoError(t, err)
		require.Equal(t, hex.EncodeToString(data), hex.EncodeToString(data2), "tick %d", k)

		from, err := gamesim.ReplayFrom(&World{}, data, rest, 1400, gamesim.Config{})
		require.NoError(t, err)
		got, err := gamesim.SnapshotOf(from)
		require.NoError(t, err)
		require.Equal(t, want, got, "replayed from the snapshot of tick %d", k)
	}
}

func TestRestoreRefusesBadBytes(t *testing.T) {
	d, err := gamesim.Replay(&World{}, head(script(), 100), 100, gamesim.Config{})
	require.NoError(t, err)
	data, err := gamesim.SnapshotOf(d)
	require.NoError(t, err)
	for _, tt := range []struct {
		name string
		give []byte
	}{
		{"cut short", data[:len(data)-1]},
		{"bytes after", append(bytes.Clone(data), 0)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := gamesim.ReplayFrom(&World{}, tt.give, nil, 100, gamesim.Config{})
			require.Error(t, err)
		})
	}
}

func TestParseInput(t *testing.T) {
	for _, tt := range []struct {
		give   string
		want   int
		wantOK bool
	}{
		{"0", 0, true}, {"9", 9, true}, {"a", 10, true}, {"f", 15, true},
		{"", 0, false}, {"g", 0, false}, {"F", 0, false}, {"10", 0, false},
	} {
		got, ok := ParseInput(tt.give)
		assert.Equal(t, tt.wantOK, ok, "%q", tt.give)
		assert.Equal(t, tt.want, got, "%q", tt.give)
	}
	for in := range 16 {
		got, ok := ParseInput(FormatInput(in))
		assert.True(t, ok)
		assert.Equal(t, in, got)
	}
}

func TestIsqrt(t *testing.T) {
	for n := range 100_000 {
		r := isqrt(n)
		require.True(t, r*r <= n && (r+1)*(r+1) > n, "isqrt(%d) = %d", n, r)
	}
	for _, n := range []int{4 * PlayerRadius * PlayerRadius, 1 << 40, 1<<40 - 1} {
		r := isqrt(n)
		require.True(t, r*r <= n && (r+1)*(r+1) > n, "isqrt(%d) = %d", n, r)
	}
}
