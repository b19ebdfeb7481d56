package streamtest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/goeventstream/eventstream/internal/protocol"
	"github.com/goeventstream/eventstream/internal/stream"
)

// testConcurrent lets goroutine clients of several streams post and poll at
// random while time moves and a sweeper runs, then checks the properties
// that lockstep depends on: every client of a stream saw one identical
// order, every accepted event is in the stream exactly once, ticks never
// decreased, and no event arrived with a tick below a t its client had
// already been given.
func testConcurrent(t *testing.T, newStore Factory) {
	const (
		streams   = 4
		clients   = 6
		rounds    = 80
		maxEvents = 3
	)
	e := newEnv(t, newStore, func(c *stream.Config) {
		c.PageEvents = 16
		c.MaxSyncsPerSecond, c.MaxEventsPerSecond = 0, 0 // as fast as they can, on a clock that stands still
	})
	ctx := context.Background()

	// Time moves on its own, but stays below the client timeout so that
	// every client stays connected and the stream is never reset.
	var stop atomic.Bool
	var bg sync.WaitGroup
	bg.Add(2)
	go func() {
		defer bg.Done()
		for !stop.Load() && e.clock.Now().Sub(Start) < 5*time.Second {
			e.clock.Advance(3 * time.Millisecond)
			runtime.Gosched()
		}
	}()
	go func() {
		defer bg.Done()
		for !stop.Load() {
			_, err := e.store.Sweep(ctx)
			assert.NoError(t, err)
			runtime.Gosched()
		}
	}()

	type client struct {
		stream   string
		id       string
		accepted []string         // bodies of the events the store accepted
		seen     []protocol.Event // every event received, in order
		lastT    int64
	}
	all := make([]*client, 0, streams*clients)
	var wg sync.WaitGroup
	for s := range streams {
		for c := range clients {
			cl := &client{stream: fmt.Sprintf("s%d", s), id: fmt.Sprintf("c%d", c)}
			all = append(all, cl)
			wg.Add(1)
			go func(seed uint64) {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(seed, 7))
				for round := range rounds {
					req := &stream.SyncRequest{Stream: cl.stream, PrivateID: cl.id, LastKnownTick: cl.lastT}
					var bodies []string
					if rng.IntN(2) == 0 {
						req.Batch = fmt.Sprintf("%s-%d", cl.id, round)
						for k := range rng.IntN(maxEvents) + 1 {
							bodies = append(bodies, fmt.Sprintf("%s/%s/%d/%d", cl.stream, cl.id, round, k))
						}
						req.Events = Moves(bodies...)
					}
					res, err := e.store.Sync(ctx, req)
					if !assert.NoError(t, err) {
						return
					}
					if req.Batch != "" && rng.IntN(4) == 0 {
						// The reply was "lost": the client retries the same batch.
						res, err = e.store.Sync(ctx, req)
						if !assert.NoError(t, err) {
							return
						}
					}
					cl.accepted = append(cl.accepted, bodies...)
					got := Decode(t, res.Events)
					for _, x := range got {
						if x.T < cl.lastT {
							t.Errorf("%s/%s: event at tick %d after being given t=%d", cl.stream, cl.id, x.T, cl.lastT)
						}
					}
					if res.T < cl.lastT {
						t.Errorf("%s/%s: t went from %d to %d", cl.stream, cl.id, cl.lastT, res.T)
					}
					cl.seen = append(cl.seen, got...)
					cl.lastT = res.T
				}
			}(uint64(s*clients + c))
		}
	}
	wg.Wait()
	stop.Store(true)
	bg.Wait()

	e.clock.Advance(time.Second) // seal every tick a client posted in
	full := map[string][]protocol.Event{}
	for s := range streams {
		name := fmt.Sprintf("s%d", s)
		full[name] = e.all(name, "reader")
	}
	for _, cl := range all {
		log := full[cl.stream]
		require.LessOrEqual(t, len(cl.seen), len(log))
		assert.Equal(t, log[:len(cl.seen)], cl.seen, "%s/%s saw another order", cl.stream, cl.id)
		for i, x := range log {
			if x.T < cl.lastT && i >= len(cl.seen) {
				t.Errorf("%s/%s missed %+v", cl.stream, cl.id, x)
				break
			}
		}
	}
	for name, log := range full {
		count := map[string]int{}
		for _, x := range log {
			if x.Type == "move" {
				count[x.Body]++
			}
		}
		accepted := 0
		for _, cl := range all {
			if cl.stream != name {
				continue
			}
			for _, b := range cl.accepted {
				accepted++
				assert.Equal(t, 1, count[b], "%s: event %q", name, b)
			}
		}
		assert.Len(t, count, accepted, "%s holds events nobody posted", name)
	}
}
