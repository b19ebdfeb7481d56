package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/goeventstream/eventstream/internal/apitest"
)

var (
	hashLine   = regexp.MustCompile(`^player (\d+) id=(\d+) tick=(\d+) checkpoint hash=([0-9a-f]{64})$`)
	brokeLine  = regexp.MustCompile(`^player 1 id=(\d+) tick=(\d+) broke its state on purpose`)
	desyncLine = regexp.MustCompile(`^player (\d+) id=(\d+) tick=(\d+) desync at checkpoint (\d+): players \[([\d ]+)\]`)
	loadedLine = regexp.MustCompile(`^player (\d+) id=(\d+) tick=\d+ loaded the verified snapshot of tick (\d+)$`)
)

// TestDesyncEndToEnd runs five bots on the real binary, one of them broken
// on purpose at tick 60: the server names exactly that one in "_x" within
// two checkpoints, every bot hears of it at the same tick, the broken one
// reloads the verified state and agrees again, and the desync report holds
// two dumps that differ. A sixth bot joins once the stream is compacted and
// starts from the snapshot.
func TestDesyncEndToEnd(t *testing.T) {
	url := apitest.StartBinary(t, nil, "-snapshot-every", "30", "-history-retain", "1s").URL()

	var outs [2]apitest.Output
	var wg sync.WaitGroup
	for i, run1 := range [][]string{
		{"-n", "5", "-desync-at", "60", "-duration", "8s"},
		{"-n", "1", "-duration", "3s"}, // joins after 5 s, when the start is compacted
	} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i == 1 {
				time.Sleep(5 * time.Second)
			}
			args := append([]string{"-url", url, "-stream", "e2e"}, run1...)
			assert.NoError(t, run(context.Background(), args, &outs[i]))
		}()
	}
	wg.Wait()
	lines := strings.Split(strings.TrimSpace(outs[0].String()+outs[1].String()), "\n")

	var broken string
	var brokeAt int64
	hashes := map[int64]map[string]string{} // tick -> public id -> hash
	desyncs := map[string]string{}          // public id that printed -> what
	loaded := map[string]int64{}            // public id -> the tick of the snapshot it loaded
	for _, l := range lines {
		if m := brokeLine.FindStringSubmatch(l); m != nil {
			require.Empty(t, broken, "broken once")
			broken, brokeAt = m[1], atoi(m[2])
		}
		if m := hashLine.FindStringSubmatch(l); m != nil {
			tick := atoi(m[3])
			if hashes[tick] == nil {
				hashes[tick] = map[string]string{}
			}
			hashes[tick][m[2]] = m[4]
		}
		if m := desyncLine.FindStringSubmatch(l); m != nil {
			desyncs[m[2]] = m[3] + " " + m[4] + " " + m[5]
		}
		if m := loadedLine.FindStringSubmatch(l); m != nil {
			loaded[m[2]] = atoi(m[3])
		}
	}
	require.NotEmpty(t, broken, "player 1 broke its state: %s", lines)
	checkpoint := (brokeAt + 19) / 20 * 20

	// Every bot of the first run printed the same desync, at the same tick,
	// naming the broken one only, within two checkpoints.
	require.Len(t, desyncs, 5, "%v", lines)
	var x string
	for _, d := range desyncs {
		if x == "" {
			x = d
		}
		assert.Equal(t, x, d, "one _x, seen at one tick by all")
	}
	var at, ck int64
	var ids string
	_, err := fmt.Sscanf(x, "%d %d %s", &at, &ck, &ids)
	require.NoError(t, err)
	assert.Equal(t, checkpoint, ck, "the first checkpoint after the break")
	assert.Equal(t, broken, ids, "exactly the broken bot")
	assert.LessOrEqual(t, at, checkpoint+2*20, "named within two checkpoints")

	// It reloaded, and agrees again; it did not agree at the checkpoint.
	assert.Contains(t, loaded, broken, "the broken bot reloaded the verified snapshot")
	agreed := 0
	for tick, byID := range hashes {
		var first string
		for _, h := range byID {
			first = h
			break
		}
		same := true
		for _, h := range byID {
			same = same && h == first
		}
		switch {
		case tick == checkpoint:
			assert.False(t, same, "tick %d: the broken bot's state differed: %v", tick, byID)
		case tick >= at+20:
			assert.True(t, same, "tick %d: every bot agrees after the reload: %v", tick, byID)
			if len(byID) > 1 {
				agreed++
			}
		}
	}
	assert.GreaterOrEqual(t, agreed, 3, "checkpoints compared after the reload")

	// The late joiner started from the snapshot, and agreed with the others.
	var late string
	for id := range loaded {
		if id != broken {
			late = id
		}
	}
	require.NotEmpty(t, late, "the sixth bot loaded the snapshot: %v", loaded)
	compared := 0
	for tick, byID := range hashes {
		if h, ok := byID[late]; ok && len(byID) > 1 {
			for id, other := range byID {
				if id == broken && tick < at+20 {
					continue // the broken bot, before its reload
				}
				assert.Equal(t, other, h, "tick %d: %s and the late joiner %s", tick, id, late)
			}
			compared++
		}
	}
	assert.Positive(t, compared, "the late joiner printed hashes of ticks the others did")

	// The desync report: the canonical bot's dump and the broken one's.
	var reps struct {
		Desyncs []struct {
			T       int64  `json:"t"`
			Hash    string `json:"hash"`
			Clients []struct {
				ID, Hash, Dump string
			} `json:"clients"`
		} `json:"desyncs"`
	}
	getJSON(t, url+"/e2e/desyncs", &reps)
	require.Len(t, reps.Desyncs, 1)
	rep := reps.Desyncs[0]
	assert.Equal(t, checkpoint, rep.T)
	require.Len(t, rep.Clients, 2)
	assert.Equal(t, rep.Hash, rep.Clients[0].Hash, "the first agreed")
	assert.Equal(t, broken, rep.Clients[1].ID)
	assert.NotEqual(t, rep.Hash, rep.Clients[1].Hash)
	assert.Equal(t, rep.Clients[1].Hash, hashes[checkpoint][broken], "the bots print the hash the server lists")
	assert.Equal(t, rep.Hash, hashes[checkpoint][rep.Clients[0].ID], "the bots print the hash the server lists")
	good, bad := get(t, url+rep.Clients[0].Dump), get(t, url+rep.Clients[1].Dump)
	assert.NotEmpty(t, good)
	assert.NotEqual(t, good, bad, "the two dumps differ")
}

func atoi(s string) int64 {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		panic(err)
	}
	return n
}

func get(t *testing.T, url string) []byte {
	t.Helper()
	require.NotEqual(t, "", url)
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, url)
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return b
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	require.NoError(t, json.Unmarshal(get(t, url), v))
}
