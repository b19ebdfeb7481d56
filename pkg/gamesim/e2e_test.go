package gamesim_test

import (
	"context"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/goeventstream/eventstream/internal/apitest"
	"github.com/goeventstream/eventstream/internal/stream"
	"github.com/goeventstream/eventstream/pkg/esclient"
	"github.com/goeventstream/eventstream/pkg/gamesim"
)

// arena is a small game: each connected client owns a bot that walks
// where its owner says, with a random stagger; "seed" events spawn
// critters that wander at random and die of old age.
type arena struct {
	bots     map[string]*bot // by public id; iterated only through order
	order    []string        // public ids in connect order
	critters []*bot          // in spawn order
}

type bot struct {
	owner      string
	x, y       int64
	dx, dy     int64
	steps      int64
	alive      bool
	isCritter  bool
	age, lifes int64
	arena      *arena
}

func (a *arena) OnReset(d *gamesim.Driver, _ gamesim.Reset) { *a = arena{bots: map[string]*bot{}} }

func (a *arena) OnConnect(d *gamesim.Driver, id string) {
	b := a.bots[id]
	if b == nil {
		b = &bot{owner: id, x: d.Rand().Int64N(100), y: d.Rand().Int64N(100), arena: a}
		a.bots[id] = b
		a.order = append(a.order, id)
	}
	if !b.alive {
		b.alive = true
		_ = d.Spawn(b)
	}
}

func (a *arena) OnDisconnect(d *gamesim.Driver, id string) {
	if b := a.bots[id]; b != nil && b.alive {
		b.alive = false
		_ = d.Destroy(b)
	}
}

func (a *arena) OnClientEvent(d *gamesim.Driver, e esclient.Event) {
	switch e.Type {
	case "move":
		if b := a.bots[e.Origin]; b != nil {
			n, _ := strconv.Atoi(e.Body)
			b.dx, b.dy = int64(n%3-1), int64(n/3%3-1)
		}
	case "seed":
		c := &bot{isCritter: true, x: d.Rand().Int64N(100), y: d.Rand().Int64N(100), lifes: 20 + d.Rand().Int64N(40), arena: a}
		if d.Spawn(c) == nil {
			a.critters = append(a.critters, c)
		}
	}
}

func (b *bot) SimTick(d *gamesim.Driver) {
	if b.isCritter {
		b.x += d.Rand().Int64N(3) - 1
		b.y += d.Rand().Int64N(3) - 1
		if b.age++; b.age > b.lifes && d.Destroy(b) == nil {
			b.arena.critters = slices.DeleteFunc(b.arena.critters, func(c *bot) bool { return c == b })
		}
		return
	}
	b.x += b.dx
	b.y += b.dy
	if d.Rand().IntN(4) == 0 {
		b.x += d.Rand().Int64N(3) - 1
	}
	b.steps++
}

func (a *arena) StateHash(*gamesim.Driver) uint64 {
	f := fnv.New64a()
	for _, id := range a.order {
		b := a.bots[id]
		fmt.Fprintf(f, "%s:%d,%d,%d,%t;", id, b.x, b.y, b.steps, b.alive)
	}
	for _, c := range a.critters {
		fmt.Fprintf(f, "c:%d,%d,%d;", c.x, c.y, c.age)
	}
	return f.Sum64()
}

// realServer runs the api and a memory store on the real clock, with a
// sweeper, so that silent clients are disconnected after timeout.
func realServer(t *testing.T, timeout time.Duration) string {
	t.Helper()
	cfg := stream.DefaultConfig()
	cfg.ClientTimeout = timeout
	srv, store := apitest.NewServer(t, cfg, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); (&stream.Sweeper{Store: store, Interval: 50 * time.Millisecond}).Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return srv.URL
}

// livePlayer runs one Driver of the arena and sends random input, until stopped.
type livePlayer struct {
	name   string
	driver *gamesim.Driver
	cancel context.CancelFunc
	done   chan struct{}
}

func startLivePlayer(t *testing.T, url, name, privateID string, seed uint64) *livePlayer {
	t.Helper()
	httpc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{}}
	t.Cleanup(httpc.CloseIdleConnections)
	c, err := esclient.New(esclient.Config{BaseURL: url, Stream: "arena", PrivateID: privateID, HTTPClient: httpc})
	require.NoError(t, err)
	d := gamesim.New(c, &arena{}, gamesim.Config{RecordHashes: 1 << 20})
	ctx, cancel := context.WithCancel(context.Background())
	p := &livePlayer{name: name, driver: d, cancel: cancel, done: make(chan struct{})}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _ = d.Run(ctx) }()
	go func() { // a player's hands: input at random moments
		defer wg.Done()
		rng := rand.New(rand.NewPCG(seed, seed))
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Duration(20+rng.IntN(80)) * time.Millisecond):
			}
			if rng.IntN(5) == 0 {
				_ = d.SendEvent("seed", "")
			} else {
				_ = d.SendEvent("move", strconv.Itoa(rng.IntN(9)))
			}
		}
	}()
	go func() { wg.Wait(); close(p.done) }()
	return p
}

func (p *livePlayer) stop() {
	p.cancel()
	<-p.done
}

// TestDeterminismEndToEnd plays the arena on a real server with players
// joining at different times, one leaving and coming back, and checks that
// at every tick they processed, all players' states are equal, and equal to
// a Replay of the stream's full event list.
func TestDeterminismEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("plays for several seconds of real time; skipped with -short")
	}
	url := realServer(t, 2*time.Second) // generous: a loaded CI machine must not disconnect a player that syncs

	players := []*livePlayer{
		startLivePlayer(t, url, "alice", "alice-secret", 1),
		startLivePlayer(t, url, "bob", "bob-secret", 2),
	}
	time.Sleep(700 * time.Millisecond) // lets the game run; nothing is timed by it
	players = append(players, startLivePlayer(t, url, "carol", "carol-secret", 3))
	time.Sleep(700 * time.Millisecond)
	players[1].stop() // bob leaves, long enough to be disconnected
	time.Sleep(3500 * time.Millisecond)
	players = append(players,
		startLivePlayer(t, url, "bob-again", "bob-secret", 4),
		startLivePlayer(t, url, "dave", "dave-secret", 5), // a late joiner replays from tick 0
	)
	time.Sleep(1500 * time.Millisecond)
	for _, p := range players {
		if p.name != "bob" {
			p.stop()
		}
	}

	// The whole stream, once every tick the players processed is final.
	reader, err := esclient.New(esclient.Config{BaseURL: url, Stream: "arena", PrivateID: "reader",
		HTTPClient: &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}})
	require.NoError(t, err)
	var all []esclient.Event
	var last esclient.Update
	for {
		last, err = reader.Sync(context.Background())
		require.NoError(t, err)
		all = append(all, last.Events...)
		if !last.More {
			break
		}
	}
	replay, err := gamesim.Replay(&arena{}, all, last.T, gamesim.Config{RecordHashes: 1 << 20})
	require.NoError(t, err)
	want := map[int64]uint64{}
	for _, h := range replay.Hashes() {
		want[h.Tick] = h.Hash
	}

	// Public ids follow the order of arrival, and alice and bob start together.
	bob := players[1].driver.PublicID()
	require.Equal(t, bob, players[3].driver.PublicID(), "bob came back with his public id")
	var presence []string
	for _, e := range all {
		if e.Type == esclient.TypeConnect || e.Type == esclient.TypeDisconnect {
			presence = append(presence, e.Type+e.Body)
		}
	}
	require.Len(t, presence, 6, "all events: %v", all)
	assert.ElementsMatch(t, []string{"_c1", "_c2"}, presence[:2])
	assert.Equal(t, []string{"_c3", "_d" + bob}, presence[2:4], "bob was disconnected, and nobody else")
	assert.ElementsMatch(t, []string{"_c" + bob, "_c4"}, presence[4:])

	for _, p := range players {
		hashes := p.driver.Hashes()
		require.NotEmpty(t, hashes, p.name)
		assert.Equal(t, int64(0), hashes[0].Tick, "%s started from tick 0", p.name)
		assert.Greater(t, len(hashes), 10, "%s processed ticks", p.name)
		for _, h := range hashes {
			w, ok := want[h.Tick]
			require.True(t, ok, "%s processed tick %d, which the replay did not reach", p.name, h.Tick)
			require.Equal(t, w, h.Hash, "%s diverged at tick %d", p.name, h.Tick)
		}
	}
}
