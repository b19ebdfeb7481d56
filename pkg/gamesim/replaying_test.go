package gamesim_test

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/goeventstream/eventstream/pkg/esclient"
	"github.com/goeventstream/eventstream/pkg/gamesim"
)

// actor is a Sim that acts on every tick from the simulation itself, as a
// bot does: it sends the number of the tick it processes.
type actor struct {
	mu        sync.Mutex
	sent      []int64 // ticks whose act was sent
	refused   []int64 // ticks whose act SendEvent refused with ErrReplaying
	replaying []int64 // ticks processed with Replaying true
}

func (a *actor) OnReset(d *gamesim.Driver, _ gamesim.Reset)  { _ = d.Spawn(&actorBody{a}) }
func (*actor) OnConnect(*gamesim.Driver, string)             {}
func (*actor) OnDisconnect(*gamesim.Driver, string)          {}
func (*actor) OnClientEvent(*gamesim.Driver, esclient.Event) {}

type actorBody struct{ a *actor }

func (b *actorBody) SimTick(d *gamesim.Driver) {
	b.a.mu.Lock()
	defer b.a.mu.Unlock()
	if d.Replaying() {
		b.a.replaying = append(b.a.replaying, d.Tick())
	}
	switch err := d.SendEvent("act", strconv.FormatInt(d.Tick(), 10)); err {
	case nil:
		b.a.sent = append(b.a.sent, d.Tick())
	case gamesim.ErrReplaying:
		b.a.refused = append(b.a.refused, d.Tick())
	}
}

// TestAReturningPlayerDoesNotActTwice plays a Sim that sends from SimTick,
// stops it, and starts it again with the same private id: the second
// session re-simulates the ticks the first acted on, and must not send
// their inputs again.
func TestAReturningPlayerDoesNotActTwice(t *testing.T) {
	if testing.Short() {
		t.Skip("plays for a second of real time; skipped with -short")
	}
	url := realServer(t, 10*time.Second)
	play := func(d time.Duration) *actor {
		httpc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{}}
		t.Cleanup(httpc.CloseIdleConnections)
		c, err := esclient.New(esclient.Config{BaseURL: url, Stream: "acts", PrivateID: "player", HTTPClient: httpc})
		require.NoError(t, err)
		a := &actor{}
		drv := gamesim.New(c, a, gamesim.Config{})
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		_ = drv.Run(ctx)
		// Run returns once the network goroutine stopped: what was queued
		// and not sent is lost with the session, as in a game that quits.
		return a
	}
	first := play(1500 * time.Millisecond)
	second := play(1500 * time.Millisecond)
	require.NotEmpty(t, first.sent, "the first session acted")
	require.NotEmpty(t, second.replaying, "the second session re-simulated the first one's ticks")
	assert.Equal(t, second.replaying, second.refused, "every act of a re-simulated tick was refused")
	assert.Greater(t, second.sent[0], first.sent[len(first.sent)-1], "the second session acted only on ticks new to it")

	reader, err := esclient.New(esclient.Config{BaseURL: url, Stream: "acts", PrivateID: "reader"})
	require.NoError(t, err)
	seen := map[string]int{}
	for {
		u, err := reader.Sync(context.Background())
		require.NoError(t, err)
		for _, e := range u.Events {
			if e.Type == "act" {
				seen[e.Body]++
			}
		}
		if !u.More {
			break
		}
	}
	require.NotEmpty(t, seen)
	for tick, n := range seen {
		assert.Equal(t, 1, n, "the act of tick %s was sent %d times", tick, n)
	}
}
