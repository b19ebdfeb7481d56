package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/require"

	"github.com/goeventstream/eventstream/internal/api"
	"github.com/goeventstream/eventstream/internal/protocol"
	"github.com/goeventstream/eventstream/internal/stream"
)

// TestPushFanOut: a stream with more connections than one goroutine
// writes a tick to sends every connection every event once, in the
// stream's order, each push's t the next one's start, while some clients
// pause their reading and others post on their connections (their
// acknowledgements written beside the pushes), so that pushes go both by
// the stream's loop and by the connections' own writers.
func TestPushFanOut(t *testing.T) {
	const conns, ticks = 150, 30
	h, url := pushHarness(t, func(a *api.Config, s *stream.Config) {
		s.MaxSyncsPerSecond, s.MaxEventsPerSecond, s.MaxStreamBytesPerSecond, s.MaxJoinsPerSecond = 0, 0, 0, 0
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type seen struct {
		mu     sync.Mutex
		events []protocol.Event
		t      int64
		err    error
	}
	got := make([]*seen, conns)
	cs := make([]*websocket.Conn, conns)
	for i := range conns {
		cs[i] = dial(t, fmt.Sprintf("%s/s/c%d/0", url, i))
		cs[i].SetReadLimit(-1)
		got[i] = &seen{}
		go func(c *websocket.Conn, g *seen, pause bool) {
			for n := 0; ; n++ {
				_, b, err := c.Read(ctx)
				if err != nil {
					return
				}
				if bytes.HasPrefix(b, []byte(`{"batch":`)) {
					continue
				}
				var r protocol.SyncReply
				g.mu.Lock()
				if err := json.Unmarshal(b, &r); err != nil && g.err == nil {
					g.err = fmt.Errorf("%w: %s", err, b)
				}
				for _, e := range r.Events {
					if e.T < g.t && g.err == nil {
						g.err = fmt.Errorf("event of tick %d after a push up to %d", e.T, g.t)
					}
				}
				if r.T < g.t && g.err == nil {
					g.err = fmt.Errorf("t %d after t %d", r.T, g.t)
				}
				g.events, g.t = append(g.events, r.Events...), r.T
				g.mu.Unlock()
				if pause && n%4 == 3 {
					time.Sleep(15 * time.Millisecond) // a client busy elsewhere
				}
			}
		}(cs[i], got[i], i%3 == 0)
	}
	for tick := range ticks {
		h.sync("/s/writer/0", fmt.Sprintf(`{"events":[{"type":"m","body":"w%d"}]}`, tick))
		for i := 0; i < conns; i += 5 {
			msg := fmt.Sprintf(`{"batch":"b%d-%d","events":[{"type":"m","body":"c%d-%d"}]}`, i, tick, i, tick)
			require.NoError(t, cs[i].Write(ctx, websocket.MessageText, []byte(msg)))
		}
		advance(t, h, 50*time.Millisecond)
	}
	advance(t, h, 50*time.Millisecond) // every message of the last tick is applied by now, or in this one
	advance(t, h, 50*time.Millisecond)
	want := h.all("s", "reader")
	require.Greater(t, len(want), conns+ticks*(1+conns/5)/2, "most posts were applied")
	for i, g := range got {
		require.Eventually(t, func() bool {
			g.mu.Lock()
			defer g.mu.Unlock()
			return len(g.events) >= len(want) || g.err != nil
		}, 20*time.Second, time.Millisecond, "connection %d", i)
		g.mu.Lock()
		require.NoError(t, g.err, "connection %d", i)
		require.Equal(t, want, g.events[:len(want)], "connection %d: every event once, in order", i)
		g.mu.Unlock()
	}
}
