package api_test

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/goeventstream/eventstream/internal/api"
	"github.com/goeventstream/eventstream/internal/stream"
)

// BenchmarkPush measures the push path of one tick: a client posts an
// event, the tick is sealed, the stream's loop reads it once, and every
// connection of the stream is sent it over a real WebSocket on loopback
// and reads it. One op is one tick; ns/op over conns is the cost of one
// push, the server's and the client's reading it.
func BenchmarkPush(b *testing.B) {
	for _, n := range []int{1, 100} {
		b.Run(fmt.Sprintf("conns=%d", n), func(b *testing.B) { benchPush(b, n) })
	}
}

func benchPush(b *testing.B, conns int) {
	h, url := pushHarness(b, func(a *api.Config, s *stream.Config) {
		a.Push.PingInterval, a.Push.MaxLag = time.Hour, time.Hour
		s.MaxSyncsPerSecond, s.MaxEventsPerSecond = 1e15, 1e15 // a clock that barely moves refills nothing
	})
	got := make(chan struct{}, conns)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for i := range conns {
		c := dial(b, fmt.Sprintf("%s/s/c%d/0", url, i))
		go func() {
			for {
				_, msg, err := c.Read(ctx)
				if err != nil {
					return
				}
				for range strings.Count(string(msg), `"type":"m"`) {
					got <- struct{}{}
				}
			}
		}()
	}
	tick := func() {
		h.sync("/s/writer/0", `{"events":[{"type":"m","body":"x"}]}`)
		for h.clock.Timers() == 0 { // the loop waits for its next read
			runtime.Gosched()
		}
		h.clock.Advance(50 * time.Millisecond)
		for range conns {
			<-got
		}
	}
	tick() // every connection has joined
	b.ReportAllocs()
	for b.Loop() {
		tick()
	}
}
