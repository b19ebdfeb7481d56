package api_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/goeventstream/eventstream/internal/api"
	"github.com/goeventstream/eventstream/internal/protocol"
	"github.com/goeventstream/eventstream/internal/stream"
)

// TestWorstCaseHeap is the hostile case of docs/operations.md, with the
// default flags: one client fills a stream with events of the largest
// body, then hundreds of clients read its whole history at once. The live
// heap stays within what the flags allow: the stream's bytes, and the
// in-flight budget for the syncs in progress (each a body and a page).
func TestWorstCaseHeap(t *testing.T) {
	if testing.Short() {
		t.Skip("fills 64 MiB and reads it hundreds of times; skipped with -short")
	}
	h := newHarness(t)
	limits, cfg := api.DefaultLimits(), stream.DefaultConfig()

	// Fill: three events of the largest body a request, as the body cap
	// allows, a tick of the fake clock whenever the tick holds a page.
	body := strings.Repeat("x", protocol.DefaultMaxEventBodyBytes)
	post := `{"events":[` + strings.Repeat(`{"type":"m","body":"`+body+`"},`, 2) + `{"type":"m","body":"` + body + `"}]}`
	var stored int64
	for {
		rec := h.do(http.MethodPost, "/s/attacker/0", post)
		if rec.Code == http.StatusTooManyRequests {
			h.clock.Advance(cfg.TickDuration())
			continue
		}
		if rec.Code == http.StatusConflict {
			break // stream_full: the stream holds -max-stream-bytes
		}
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
		stored += 3 * int64(len(body)+40)
	}
	h.clock.Advance(cfg.TickDuration())
	require.Greater(t, stored, cfg.MaxStreamBytes*9/10, "the stream is full")

	srv := httptest.NewServer(h.server)
	t.Cleanup(srv.Close)
	base := liveHeap()

	// Read: 500 clients at once, each the first pages of the whole history.
	peak := samplePeak()
	var ok, busy atomic.Int64
	var readers sync.WaitGroup
	start := make(chan struct{})
	for i := range 500 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
			<-start
			from := int64(0)
			for range 2 {
				resp, err := client.Get(srv.URL + fmt.Sprintf("/s/reader-%d/%d", i, from))
				if err != nil {
					t.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				switch resp.StatusCode {
				case http.StatusOK:
					ok.Add(1)
					from += 8 // a later page next time
				case http.StatusServiceUnavailable:
					busy.Add(1)
				default:
					t.Errorf("status %d", resp.StatusCode)
				}
			}
		}()
	}
	close(start)
	readers.Wait()
	peakLive := peak()

	bound := base + uint64(limits.MaxInflightBytes) + 32<<20 // and the runtime's own slack
	t.Logf("stored %d MiB; heap before the reads %d MiB, peak %d MiB, bound %d MiB; %d pages sent, %d answered server_busy",
		stored>>20, base>>20, peakLive>>20, bound>>20, ok.Load(), busy.Load())
	assert.Positive(t, ok.Load())
	assert.LessOrEqual(t, peakLive, bound, "the live heap passed what the flags allow")
	assert.LessOrEqual(t, base, uint64(cfg.MaxStreamBytes)*5/4+16<<20, "a full stream takes about its bytes")
}

// liveHeap collects, and returns the live heap it marked.
func liveHeap() uint64 {
	runtime.GC()
	live := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(live)
	return live[0].Value.Uint64()
}

// samplePeak samples the live heap every 20 ms until the function it
// returns is called, which returns the largest it saw.
func samplePeak() (stop func() uint64) {
	var peak uint64
	done := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			select {
			case <-done:
				return
			case <-time.After(20 * time.Millisecond):
			}
			peak = max(peak, liveHeap())
		}
	}()
	return func() uint64 {
		close(done)
		<-sampled
		return peak
	}
}
