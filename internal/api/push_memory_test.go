package api_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime/metrics"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/goeventstream/eventstream/internal/api"
	"github.com/goeventstream/eventstream/internal/stream"
)

// skipFrame reads the server's next frame, and keeps of its payload only
// its last 16 bytes, or all of it if it is as short as a control frame's
// (125 bytes): a client that holds no page in memory. It returns the
// frame's opcode and its payload's length.
func skipFrame(br *bufio.Reader) (op byte, n int64, kept []byte, err error) {
	b, n, err := readFrameHead(br)
	keep := n
	if err == nil && n > 125 {
		keep = 16
		_, err = io.CopyN(io.Discard, br, n-keep)
	}
	if err != nil {
		return 0, 0, nil, err
	}
	kept = make([]byte, keep)
	if _, err = io.ReadFull(br, kept); err != nil {
		return 0, 0, nil, err
	}
	return b & 0x0f, n, kept, nil
}

// fillHistory posts syncs of history to stream s, 4 events of 15 KiB
// each, a tick every perTick syncs.
func fillHistory(t *testing.T, h *harness, s string, perTick, syncs int) {
	t.Helper()
	body := strings.Repeat("x", 15<<10)
	req := `{"events":[` + strings.Repeat(`{"type":"big","body":"`+body+`"},`, 3) + `{"type":"big","body":"` + body + `"}]}`
	for i := range syncs {
		h.sync("/"+s+"/writer/0", req)
		if i%perTick == perTick-1 {
			h.clock.Advance(50 * time.Millisecond)
		}
	}
	h.clock.Advance(50 * time.Millisecond)
}

// TestPushJoinersHoldWhatTheyCount: a flood of clients that join, and
// join again, each reading a long history page after page, under a small
// in-flight budget. A page's push holds what it counts (pushBytes): the
// store's reply, and the message its events are copied into, which is
// framed and queued where it is built. So the pushes allocate two copies
// of each page they send, and the live heap stays within the budget and a
// stated slack. Main framed each message in a copy of it, and queued what
// the socket did not take in another: it allocated three copies of each
// page, and held up to four at once where it counted two.
func TestPushJoinersHoldWhatTheyCount(t *testing.T) {
	if testing.Short() {
		t.Skip("reads 4 MiB of history 64 times; skipped with -short")
	}
	const budget = 8 << 20
	h, url := pushHarness(t, func(a *api.Config, s *stream.Config) {
		a.Push.PingInterval = time.Hour
		a.Limits.MaxInflightBytes = budget
		a.Limits.MaxInflightWait = time.Minute // the joiners are served in turn
		s.MaxSyncsPerSecond, s.MaxEventsPerSecond, s.MaxStreamBytesPerSecond = 0, 0, 0
	})
	fillHistory(t, h, "s", 17, 68) // 4 pages of a tick of 1 MB each

	base := liveHeap()
	allocs := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(allocs)
	allocated := allocs[0].Value.Uint64()
	peak := samplePeak()
	var pages, sent, busy atomic.Int64
	var joiners sync.WaitGroup
	for i := range 32 {
		joiners.Add(1)
		go func() {
			defer joiners.Done()
			for range 2 { // join, and join again
				nc, br, status, err := upgradeRaw(url, fmt.Sprintf("/s/reader-%d/0", i), nil, 16<<10)
				if err != nil {
					t.Error(err)
					return
				}
				if status != http.StatusSwitchingProtocols {
					busy.Add(1)
					continue
				}
				for more := true; more; {
					op, n, last, err := skipFrame(br)
					if err != nil {
						t.Errorf("reader-%d, after %d pages: %v", i, pages.Load(), err)
						break
					}
					if op == 0x1 {
						pages.Add(1)
						sent.Add(n)
						more = bytes.HasSuffix(last, []byte(`"more":true}`))
					}
				}
				nc.Close()
			}
		}()
	}
	joiners.Wait()
	peakLive := peak()
	metrics.Read(allocs)
	allocated = allocs[0].Value.Uint64() - allocated

	// The pushes allocate the store's reply and the message of each page,
	// and little else: the readers keep no page.
	copies := float64(allocated) / float64(sent.Load())
	// The runtime's, the connections' own, and the pages allocated while
	// a collection marks (which it counts as live), as TestWorstCaseHeap.
	const slack = 32 << 20
	bound := base + budget + slack
	t.Logf("%d pages sent, %d MiB, %d upgrades refused; %.2f bytes allocated a byte sent; heap before the joiners %d MiB, peak %d MiB, bound %d MiB",
		pages.Load(), sent.Load()>>20, busy.Load(), copies, base>>20, peakLive>>20, bound>>20)
	require.Equal(t, int64(4*64), pages.Load(), "every joiner got every page, each time")
	assert.Less(t, copies, 2.3, "a page's push allocates the two copies it counts")
	assert.LessOrEqual(t, peakLive, bound, "the live heap passed the in-flight budget")
}

// TestPushAnswersACloseBehindItsQueue: a client that closes while the
// server still has a page queued for it gets the rest of the page and then
// the server's close frame, as RFC 6455 (5.5.1) requires of an endpoint
// that receives a close (main queued the answer behind the page, and
// closed the connection at once, dropping both).
func TestPushAnswersACloseBehindItsQueue(t *testing.T) {
	h, url := pushHarness(t, func(a *api.Config, s *stream.Config) {
		a.Push.WriteBuffer = api.MinWriteBuffer // the page queues
		s.MaxSyncsPerSecond, s.MaxEventsPerSecond, s.MaxStreamBytesPerSecond = 0, 0, 0
	})
	fillHistory(t, h, "s", 15, 15) // a page of 900 KiB: the history, whole
	nc, br, status, err := upgradeRaw(url, "/s/alice/0", nil, 16<<10)
	require.NoError(t, err)
	require.Equal(t, http.StatusSwitchingProtocols, status)
	t.Cleanup(func() { nc.Close() })
	_, err = nc.Write(maskedFrame(0x8, "\x03\xe8")) // close, 1000, while the page is still queued
	require.NoError(t, err)

	require.NoError(t, nc.SetReadDeadline(time.Now().Add(20*time.Second)))
	var ops []byte
	for {
		op, _, payload, err := skipFrame(br)
		if err != nil {
			require.ErrorIs(t, err, io.EOF, "the server closes the connection after its close frame")
			break
		}
		ops = append(ops, op)
		if op == 0x8 {
			require.Equal(t, []byte{0x03, 0xe8}, payload[:2], "the server's close echoes the client's code")
		}
	}
	require.Equal(t, []byte{0x1, 0x8}, ops, "the page, then the server's close frame")
}

// TestPushClosesTheSocketOfAClientGone: a client that goes without a
// close frame (its end shut, as a dropped tab's or a lost network's) has
// its socket closed by the server once its connection ends. Main left it
// open: the WebSocket closes its socket only when closed itself, and a
// connection that ended on its reader's error was not, so each such
// client kept a file descriptor until the process ran out of them (a
// reconnect flood of 50 clients on the binary: accept4 "too many open
// files" after 21 000 connections, every later client refused).
func TestPushClosesTheSocketOfAClientGone(t *testing.T) {
	_, url := pushHarness(t)
	nc, br := rawUpgrade(t, url, "/s/alice/0", nil)
	op, _, _, err := skipFrame(br)
	require.NoError(t, err)
	require.Equal(t, byte(0x1), op, "the first push")
	require.NoError(t, nc.(*net.TCPConn).CloseWrite()) // gone: no close frame

	require.NoError(t, nc.SetReadDeadline(time.Now().Add(10*time.Second)))
	for {
		if _, _, _, err = skipFrame(br); err != nil {
			break
		}
	}
	require.ErrorIs(t, err, io.EOF, "the server closes the socket of a client gone")
}
