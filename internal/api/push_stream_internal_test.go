package api

import (
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/goeventstream/eventstream/internal/stream"
)

// TestPushNextCoalescesInOneCopy: a client far behind in the window is
// sent what it missed, up to a page, in one message built by copying each
// read once (main copied everything coalesced so far again for each read
// it added: 30 MB to build a page of 64 reads of 16 KB, for each client of
// a stream that fell behind at once, 1.5 GB in a second when 100 stalled
// clients of a busy stream were cut).
func TestPushNextCoalescesInOneCopy(t *testing.T) {
	const reads, perRead = pushWindow, 16_000
	s := &pushStream{p: &pusher{srv: &Server{limits: Limits{MaxReplyBytes: 1 << 20}}}}
	body := strings.Repeat("x", perRead-40)
	var want []string
	for i := range int64(reads) {
		var ev []byte
		if i%8 != 1 { // and quiet reads among them
			ev = fmt.Appendf(nil, `{"t":%d,"type":"m","origin":"1","body":"%s"}`, i, body)
			want = append(want, string(ev))
		}
		s.window = append(s.window, pushSlice{epoch: "e", from: i, t: i + 1, events: ev, tickRate: 20})
	}
	var res stream.SyncResult
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	found, newest, _ := s.next(stream.SyncRequest{LastKnownTick: 0, Epoch: "e"}, &res)
	runtime.ReadMemStats(&after)
	require.True(t, found)
	require.EqualValues(t, reads, newest)
	require.EqualValues(t, reads, res.T, "every read, a page at most")
	require.True(t, strings.Join(want, ",") == string(res.Events), "each read's events once, in order")
	require.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(3*len(res.Events)), "bytes allocated to build it")
	for i, sl := range s.window {
		require.Equal(t, int64(i), sl.from)
		require.Equal(t, i%8 == 1, len(sl.events) == 0, "the window's reads are left as they were")
		if len(sl.events) > 0 {
			require.True(t, strings.HasSuffix(string(sl.events), `"}`), "read %d is left as it was", i)
		}
	}
}
