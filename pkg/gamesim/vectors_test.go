package gamesim_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/goeventstream/eventstream/internal/refsim"
	"github.com/goeventstream/eventstream/pkg/esclient"
	"github.com/goeventstream/eventstream/pkg/gamesim"
)

// The vectors of docs/gamesim-spec.md: what Go's gamesim computes, committed
// under testdata/vectors and read by clients/ts's tests too, so that a
// change in either language that breaks the other fails. Go does not
// promise math/rand/v2's mappings forever: a Go release that changes them
// fails TestVectors, and the spec, the TS client and the vectors must then
// be looked at together.
var updateVectors = flag.Bool("update", false, "rewrite testdata/vectors from this Go's gamesim")

const vectorsDir = "testdata/vectors"

func TestVectors(t *testing.T) {
	for _, tt := range []struct {
		file string
		make func(t *testing.T) any
	}{
		{file: "rand.json", make: func(*testing.T) any { return randVectors() }},
		{file: "stream.json", make: streamVectors},
		{file: "encodings.json", make: func(*testing.T) any { return encodingVectors() }},
		{file: "checkpoints.json", make: checkpointVectors},
	} {
		t.Run(tt.file, func(t *testing.T) {
			if tt.file == "rand.json" && strconv.IntSize != 64 {
				t.Skip("Int, Uint, IntN and UintN differ where Go's int has 32 bits (docs/gamesim-spec.md); the vectors are 64-bit Go's")
			}
			got, err := json.MarshalIndent(tt.make(t), "", " ")
			require.NoError(t, err)
			got = append(got, '\n')
			path := filepath.Join(vectorsDir, tt.file)
			if *updateVectors {
				require.NoError(t, os.MkdirAll(vectorsDir, 0o755))
				require.NoError(t, os.WriteFile(path, got, 0o644))
			}
			want, err := os.ReadFile(path)
			require.NoError(t, err, "generate the vectors with: go test ./pkg/gamesim -run TestVectors -update")
			if !bytes.Equal(want, got) {
				t.Fatalf("%s differs from what this gamesim computes: a change of the spec (or of math/rand/v2) that every SDK must follow; "+
					"if it is meant, regenerate with -update and change docs/gamesim-spec.md and clients/ts with it", path)
			}
		})
	}
}

// randCase is the draws of each Rand method from a Rand freshly derived
// for (epoch, tick): every list starts again from the tick's first draw.
type randCase struct {
	Epoch   string      `json:"epoch"`
	Tick    int64       `json:"tick"`
	PCG     [2]string   `json:"pcg"` // the PCG's state (hi, lo) once seeded, hex
	Uint64  []string    `json:"uint64"`
	Int64   []string    `json:"int64"`
	Uint32  []uint32    `json:"uint32"`
	Int32   []int32     `json:"int32"`
	Int     []string    `json:"int"`
	Uint    []string    `json:"uint"`
	Float64 []float64   `json:"float64"`
	Float32 []float64   `json:"float32"` // exactly: float64 of the float32
	IntN    []nCase     `json:"intN"`
	Int64N  []nCase     `json:"int64N"`
	Int32N  []nCase     `json:"int32N"`
	Uint32N []nCase     `json:"uint32N"`
	Uint64N []nCase     `json:"uint64N"`
	UintN   []nCase     `json:"uintN"`
	Perm    []permCase  `json:"perm"`
	Shuffle []permCase  `json:"shuffle"` // Want: the swaps' j, for i from n-1 down to 1
	Mixed   []mixedCall `json:"mixed"`
}

// nCase is a method with a bound: its argument and first draws, as decimal
// strings (they may pass 2^53).
type nCase struct {
	N    string   `json:"n"`
	Want []string `json:"want"`
}

type permCase struct {
	N    int   `json:"n"`
	Want []int `json:"want"`
}

// mixedCall is one call of a sequence drawn from one Rand: it checks that
// each method takes as many values from the generator as Go's does.
type mixedCall struct {
	Call string `json:"call"`
	Want any    `json:"want"`
}

const randDraws = 8

var (
	vectorEpochs = []string{"6db8b8f2-16c9-427d-9fc9-de43870ed0db", "", "époque 🙂"}
	vectorTicks  = []int64{0, 1, 2, 19, 20, 1000, 1<<32 + 5, 1<<53 - 1}
	// Bounds: small, powers of two (masked), and near 2^63 and 2^64,
	// where about half the draws are rejected and drawn again.
	intNs    = []int64{1, 2, 3, 6, 10, 100, 1 << 20, 1000003, 1<<31 - 1, 1<<40 + 7, 1<<53 - 1}
	int64Ns  = []int64{1, 7, 1 << 32, 1<<62 + 12345, 3 << 61, math.MaxInt64}
	int32Ns  = []int64{1, 6, 1 << 16, 1<<31 - 1}
	uint32Ns = []int64{1, 5, 1 << 31, 1<<32 - 1}
	uint64Ns = []uint64{1, 9, 1 << 63, 1<<63 + 1, math.MaxUint64}
	permNs   = []int{0, 1, 2, 5, 10, 52}
)

func draws[T any](epoch string, k int64, f func(r *rand.Rand) T) []T {
	r, _ := gamesim.RandAt(epoch, k)
	out := make([]T, randDraws)
	for i := range out {
		out[i] = f(r)
	}
	return out
}

func nCases[N int64 | uint64](epoch string, k int64, ns []N, f func(r *rand.Rand, n N) string) []nCase {
	var out []nCase
	for _, n := range ns {
		r, _ := gamesim.RandAt(epoch, k)
		c := nCase{N: fmt.Sprint(n)}
		for range randDraws / 2 {
			c.Want = append(c.Want, f(r, n))
		}
		out = append(out, c)
	}
	return out
}

func randVectors() any {
	var cases []randCase
	for _, epoch := range vectorEpochs {
		for _, k := range vectorTicks {
			c := randCase{Epoch: epoch, Tick: k}
			_, c.PCG = gamesim.RandAt(epoch, k)
			c.Uint64 = draws(epoch, k, func(r *rand.Rand) string { return strconv.FormatUint(r.Uint64(), 10) })
			c.Int64 = draws(epoch, k, func(r *rand.Rand) string { return strconv.FormatInt(r.Int64(), 10) })
			c.Uint32 = draws(epoch, k, (*rand.Rand).Uint32)
			c.Int32 = draws(epoch, k, (*rand.Rand).Int32)
			c.Int = draws(epoch, k, func(r *rand.Rand) string { return strconv.FormatInt(int64(r.Int()), 10) })
			c.Uint = draws(epoch, k, func(r *rand.Rand) string { return strconv.FormatUint(uint64(r.Uint()), 10) })
			c.Float64 = draws(epoch, k, (*rand.Rand).Float64)
			c.Float32 = draws(epoch, k, func(r *rand.Rand) float64 { return float64(r.Float32()) })
			c.IntN = nCases(epoch, k, intNs, func(r *rand.Rand, n int64) string { return strconv.Itoa(r.IntN(int(n))) })
			c.Int64N = nCases(epoch, k, int64Ns, func(r *rand.Rand, n int64) string { return strconv.FormatInt(r.Int64N(n), 10) })
			c.Int32N = nCases(epoch, k, int32Ns, func(r *rand.Rand, n int64) string { return strconv.Itoa(int(r.Int32N(int32(n)))) })
			c.Uint32N = nCases(epoch, k, uint32Ns, func(r *rand.Rand, n int64) string { return strconv.Itoa(int(r.Uint32N(uint32(n)))) })
			c.Uint64N = nCases(epoch, k, uint64Ns, func(r *rand.Rand, n uint64) string { return strconv.FormatUint(r.Uint64N(n), 10) })
			c.UintN = nCases(epoch, k, uint64Ns, func(r *rand.Rand, n uint64) string { return strconv.FormatUint(uint64(r.UintN(uint(n))), 10) })
			for _, n := range permNs {
				r, _ := gamesim.RandAt(epoch, k)
				c.Perm = append(c.Perm, permCase{N: n, Want: r.Perm(n)})
				r, _ = gamesim.RandAt(epoch, k)
				sc := permCase{N: n, Want: []int{}}
				r.Shuffle(n, func(_, j int) { sc.Want = append(sc.Want, j) })
				c.Shuffle = append(c.Shuffle, sc)
			}
			c.Mixed = mixedDraws(epoch, k)
			cases = append(cases, c)
		}
	}
	return map[string]any{
		"comment": "gamesim's Rand: docs/gamesim-spec.md. Generated by go test ./pkg/gamesim -run TestVectors -update",
		"cases":   cases,
	}
}

// mixedDraws draws a fixed sequence of calls from one Rand.
func mixedDraws(epoch string, k int64) []mixedCall {
	r, _ := gamesim.RandAt(epoch, k)
	u := func(v uint64) string { return strconv.FormatUint(v, 10) }
	i := func(v int64) string { return strconv.FormatInt(v, 10) }
	var out []mixedCall
	add := func(call string, want any) { out = append(out, mixedCall{Call: call, Want: want}) }
	for range 3 {
		add("Uint64()", u(r.Uint64()))
		add("IntN(6)", i(int64(r.IntN(6))))
		add("Float64()", r.Float64())
		add("Perm(3)", r.Perm(3))
		add("Int64N(1000000000000)", i(r.Int64N(1e12)))
		add("Uint32()", i(int64(r.Uint32())))
		add("Uint64N(9223372036854775809)", u(r.Uint64N(1<<63+1)))
		add("Float32()", float64(r.Float32()))
		add("Int32N(7)", i(int64(r.Int32N(7))))
		add("Int64()", i(r.Int64()))
		add("Uint32N(4294967295)", i(int64(r.Uint32N(math.MaxUint32))))
		add("IntN(8)", i(int64(r.IntN(8))))
	}
	return out
}

// streamVector is a recorded stream, the state hash of the reference sim
// after each of its ticks, and the snapshot of one tick.
type streamVector struct {
	Comment  string           `json:"comment"`
	Until    int64            `json:"until"`
	Events   []esclient.Event `json:"events"`
	Hashes   []string         `json:"hashes"` // after tick 0, 1, …, Until-1
	Snapshot snapshotVector   `json:"snapshot"`
	Empty    snapshotVector   `json:"empty"` // an empty sim's snapshot: the header alone
}

type snapshotVector struct {
	Tick int64  `json:"tick"`
	Hex  string `json:"hex"`
	Hash string `json:"hash"`
}

const (
	vectorUntil    = 300
	vectorSnapTick = 200
)

// vectorStream makes the recorded stream: a fixed, arbitrary mix of
// connects, disconnects, moves, spawns, drops, a server event of a later
// protocol and a desync report, several events to a tick.
func vectorStream() []esclient.Event {
	g := rand.New(rand.NewPCG(18, 2026))
	ev := func(t int64, typ, origin, body string) esclient.Event {
		return esclient.Event{T: t, Type: typ, Origin: origin, Body: body}
	}
	events := []esclient.Event{ev(0, esclient.TypeReset, "_", vectorEpochs[0]), ev(0, esclient.TypeConnect, "_", "1")}
	connected := []string{"1"}
	for k := int64(1); k < vectorUntil; k++ {
		switch k {
		case 5, 40:
			id := strconv.Itoa(len(connected) + 1)
			events = append(events, ev(k, esclient.TypeConnect, "_", id))
			connected = append(connected, id)
		case 100:
			events = append(events, ev(k, "_z", "_", "a server event of a later protocol"))
		case 120:
			events = append(events, ev(k, esclient.TypeDesync, "_", `{"t":100,"ids":["3"]}`))
		case 150:
			events = append(events, ev(k, esclient.TypeDisconnect, "_", "2"))
		case 170:
			events = append(events, ev(k, esclient.TypeConnect, "_", "2"))
		case 201:
			events = append(events, ev(k, "drop", "1", ""), ev(k, "drop", "3", ""))
		}
		for range g.IntN(4) {
			origin := connected[g.IntN(len(connected))]
			if k >= 150 && k < 170 && origin == "2" {
				continue // disconnected
			}
			switch x := g.IntN(20); {
			case x < 14:
				events = append(events, ev(k, "move", origin, string("lrud"[g.IntN(4)])))
			case x < 16:
				events = append(events, ev(k, "coin", origin, ""))
			case x < 17:
				events = append(events, ev(k, "drop", origin, ""))
			case x < 19:
				events = append(events, ev(k, "jump", origin, ""))
			default:
				events = append(events, ev(k, "chat", origin, `{"text":"gg \u00e9"}`))
			}
		}
	}
	return events
}

func streamVectors(t *testing.T) any {
	events := vectorStream()
	v := streamVector{
		Comment: "the reference sim of docs/gamesim-spec.md replayed through this stream: hashes[k] is the state hash after tick k. Generated by go test ./pkg/gamesim -run TestVectors -update",
		Until:   vectorUntil,
		Events:  events,
	}
	for k := int64(1); k <= vectorUntil; k++ {
		d, err := gamesim.Replay(&refsim.Sim{}, events[:countBelow(events, k)], k, gamesim.Config{})
		require.NoError(t, err)
		snap, err := gamesim.SnapshotOf(d)
		require.NoError(t, err)
		v.Hashes = append(v.Hashes, esclient.HashOf(snap))
		if k-1 == vectorSnapTick {
			v.Snapshot = snapshotVector{Tick: k - 1, Hex: hex.EncodeToString(snap), Hash: esclient.HashOf(snap)}
		}
	}

	// A snapshot restored and played on gives the same hashes as the
	// replay from tick 0: the Go side of what the TS tests check too.
	data, err := hex.DecodeString(v.Snapshot.Hex)
	require.NoError(t, err)
	var after []esclient.Event
	for _, e := range events {
		if e.T > vectorSnapTick {
			after = append(after, e)
		}
	}
	for _, until := range []int64{vectorSnapTick + 2, vectorUntil} {
		d, err := gamesim.ReplayFrom(&refsim.Sim{}, data, after[:countBelow(after, until)], until, gamesim.Config{})
		require.NoError(t, err)
		snap, err := gamesim.SnapshotOf(d)
		require.NoError(t, err)
		require.Equal(t, v.Hashes[until-1], esclient.HashOf(snap), "restored from tick %d, then played to %d", vectorSnapTick, until)
	}

	// The header alone: a sim with no entities and no state of its own.
	d, err := gamesim.Replay(emptySim{}, events[:1], 3, gamesim.Config{})
	require.NoError(t, err)
	empty, err := gamesim.SnapshotOf(d)
	require.NoError(t, err)
	v.Empty = snapshotVector{Tick: d.Tick(), Hex: hex.EncodeToString(empty), Hash: esclient.HashOf(empty)}
	return v
}

func countBelow(events []esclient.Event, until int64) int {
	n := 0
	for n < len(events) && events[n].T < until {
		n++
	}
	return n
}

// emptySim has no state: its snapshot is the Driver's header.
type emptySim struct{}

func (emptySim) OnReset(*gamesim.Driver, gamesim.Reset)               {}
func (emptySim) OnConnect(*gamesim.Driver, string)                    {}
func (emptySim) OnDisconnect(*gamesim.Driver, string)                 {}
func (emptySim) OnClientEvent(*gamesim.Driver, esclient.Event)        {}
func (emptySim) Snapshot(_ *gamesim.Driver, b []byte) ([]byte, error) { return b, nil }
func (emptySim) Restore(*gamesim.Driver, []byte) error                { return nil }

// encodingCase is a value and its encoding, hex.
type encodingCase struct {
	V   string `json:"v"` // decimal, or for floats Go's %v of the value
	Hex string `json:"hex"`
}

// encodingVectors are the encodings of docs/gamesim-spec.md ("Encodings")
// that a canonical snapshot is made of, as encoding/binary writes them.
func encodingVectors() any {
	var uv, v, f []encodingCase
	for _, x := range []uint64{0, 1, 127, 128, 255, 300, 16383, 16384, 1 << 32, 1<<53 - 1, 1 << 63, math.MaxUint64} {
		uv = append(uv, encodingCase{V: strconv.FormatUint(x, 10), Hex: hex.EncodeToString(binary.AppendUvarint(nil, x))})
	}
	for _, x := range []int64{0, -1, 1, -64, 64, -65, 1000, -1000, 1<<53 - 1, -(1<<53 - 1), math.MaxInt64, math.MinInt64} {
		v = append(v, encodingCase{V: strconv.FormatInt(x, 10), Hex: hex.EncodeToString(binary.AppendVarint(nil, x))})
	}
	for _, x := range []float64{0, math.Copysign(0, -1), 0.1, -2.5, 1e300, math.SmallestNonzeroFloat64, math.Inf(1)} {
		f = append(f, encodingCase{V: strconv.FormatFloat(x, 'g', -1, 64), Hex: hex.EncodeToString(binary.BigEndian.AppendUint64(nil, math.Float64bits(x)))})
	}
	return map[string]any{
		"comment": "the encodings of docs/gamesim-spec.md, as Go's encoding/binary writes them. Generated by go test ./pkg/gamesim -run TestVectors -update",
		"uvarint": uv,
		"varint":  v,
		"float64": f,
	}
}

// checkpointVector is what a client does against a server that answers as
// each step says, and the LastCheckpoint it has after each step
// (docs/gamesim-spec.md, "The last checkpoint").
type checkpointVector struct {
	Comment string           `json:"comment"`
	Steps   []checkpointStep `json:"steps"`
}

type checkpointStep struct {
	// Do is "sync": a sync answered by a reply of Epoch; "snapshot": GET
	// /{stream}/snapshot served Data as the snapshot of checkpoint T of
	// Epoch; "put": PUT …/snapshot/T of Data answered {"t":T,"stored":Stored}.
	Do     string          `json:"do"`
	T      int64           `json:"t,omitempty"`
	Epoch  string          `json:"epoch,omitempty"`
	Data   string          `json:"data,omitempty"`
	Stored bool            `json:"stored,omitempty"`
	Want   *checkpointWant `json:"want"` // null for none
}

type checkpointWant struct {
	T     int64  `json:"t"`
	Hash  string `json:"hash"`
	Epoch string `json:"epoch"`
}

// checkpointVectors plays the steps through an esclient.Client and keeps
// its LastCheckpoint after each.
func checkpointVectors(t *testing.T) any {
	e1, e2 := vectorEpochs[0], "0f4c2b8e-1d3a-4e5b-9c6d-7e8f9a0b1c2d"
	steps := []checkpointStep{
		{Do: "snapshot", T: 20, Epoch: e1, Data: "s20"}, // before the first sync: taken, of its epoch
		{Do: "sync", Epoch: e1},
		{Do: "snapshot", T: 60, Epoch: e1, Data: "s60"},
		{Do: "snapshot", T: 40, Epoch: e1, Data: "s40"}, // older: kept the later
		{Do: "snapshot", T: 60, Epoch: e1, Data: "s60"},
		{Do: "snapshot", T: 80, Epoch: e2, Data: "s80"}, // of another epoch
		{Do: "put", T: 100, Data: "p100"},               // not stored: says nothing
		{Do: "put", T: 100, Data: "p100", Stored: true},
		{Do: "put", T: 80, Data: "p80", Stored: true}, // older
		{Do: "sync", Epoch: e1},
		{Do: "sync", Epoch: e2}, // a new epoch clears it
		{Do: "put", T: 40, Data: "p40", Stored: true},
		{Do: "snapshot", T: 20, Epoch: e1, Data: "s20"},
	}
	var mu sync.Mutex
	var step checkpointStep
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		s := step
		mu.Unlock()
		switch {
		case r.URL.Path == "/s/snapshot":
			w.Header().Set("Eventstream-Tick", strconv.FormatInt(s.T, 10))
			w.Header().Set("Eventstream-Hash", esclient.HashOf([]byte(s.Data)))
			w.Header().Set("Eventstream-Epoch", s.Epoch)
			_, _ = w.Write([]byte(s.Data))
		case r.Method == http.MethodPut:
			_, _ = fmt.Fprintf(w, `{"t":%d,"stored":%t}`, s.T, s.Stored)
		default:
			_, _ = fmt.Fprintf(w, `{"id":"1","t":200,"epoch":%q,"tps":20,"ckpt":20,"events":[]}`, s.Epoch)
		}
	}))
	defer srv.Close()
	c, err := esclient.New(esclient.Config{BaseURL: srv.URL, Stream: "s", PrivateID: "p", Transport: esclient.Poll})
	require.NoError(t, err)
	ctx := context.Background()
	for i := range steps {
		mu.Lock()
		step = steps[i]
		mu.Unlock()
		switch steps[i].Do {
		case "sync":
			_, err = c.Sync(ctx)
		case "snapshot":
			_, err = c.Snapshot(ctx)
		case "put":
			_, err = c.PutSnapshot(ctx, steps[i].T, []byte(steps[i].Data))
		}
		require.NoError(t, err, "step %d", i)
		if cp, ok := c.LastCheckpoint(); ok {
			steps[i].Want = &checkpointWant{T: cp.T, Hash: cp.Hash, Epoch: cp.Epoch}
		}
	}
	return checkpointVector{
		Comment: "LastCheckpoint (docs/gamesim-spec.md, \"The last checkpoint\") after each step against a server that answers as the step says. Generated by go test ./pkg/gamesim -run TestVectors -update",
		Steps:   steps,
	}
}
