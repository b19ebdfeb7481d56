package gamesim_test

import (
	"context"
	"fmt"
	"time"

	"github.com/goeventstream/eventstream/internal/apitest"
	"github.com/goeventstream/eventstream/pkg/esclient"
	"github.com/goeventstream/eventstream/pkg/gamesim"
)

// game is a whole Sim: every connected player is an entity that drifts at
// random and jumps when its owner says so.
type game struct{ players map[string]*player }

type player struct{ x, jumps int }

func (p *player) SimTick(d *gamesim.Driver) { p.x += d.Rand().IntN(3) - 1 }

func (g *game) OnReset(d *gamesim.Driver, _ gamesim.Reset) { g.players = map[string]*player{} }

func (g *game) OnConnect(d *gamesim.Driver, id string) {
	g.players[id] = &player{}
	_ = d.Spawn(g.players[id])
}

func (g *game) OnDisconnect(d *gamesim.Driver, id string) {
	_ = d.Destroy(g.players[id])
	delete(g.players, id)
}

func (g *game) OnClientEvent(d *gamesim.Driver, e esclient.Event) {
	if p := g.players[e.Origin]; p != nil && e.Type == "jump" {
		p.x += 10
		p.jumps++
	}
}

// A game loop: every frame calls Update, which runs the callbacks of the
// ticks that are due; the player's input goes out with SendEvent and is
// acted on when it comes back, like everyone else's.
func Example_gameLoop() {
	url, stop := apitest.Start() // a running eventstreamd, such as http://localhost:9922
	defer stop()

	c, err := esclient.New(esclient.Config{BaseURL: url, Stream: "demo", PrivateID: "example-player"})
	if err != nil {
		panic(err)
	}
	g := &game{}
	d := gamesim.New(c, g, gamesim.Config{})
	defer d.Close()

	jumped := false
	deadline := time.Now().Add(10 * time.Second)
	for now := range time.Tick(16 * time.Millisecond) { // about 60 frames a second
		d.Update(now)
		me := g.players[d.PublicID()]
		switch {
		case now.After(deadline):
			fmt.Println("no reply from the server")
			return
		case me == nil: // not in the game yet
		case !jumped: // the player pressed jump
			jumped = d.SendEvent("jump", "") == nil
		case me.jumps > 0:
			fmt.Println("player", d.PublicID(), "jumped at tick", d.Tick() > 0)
			return
		}
	}
	// Output:
	// player 1 jumped at tick true
}

// A test of a simulation replays a recorded stream: no server, no time,
// the same state as every live client at the same tick.
func ExampleReplay() {
	events := []esclient.Event{
		{T: 0, Type: esclient.TypeReset, Origin: "_", Body: "6db8b8f2-16c9-427d-9fc9-de43870ed0db"},
		{T: 1, Type: esclient.TypeConnect, Origin: "_", Body: "1"},
		{T: 3, Type: "jump", Origin: "1"},
	}
	// Two replays of one stream reach the same state: so do live clients.
	for range 2 {
		g := &game{}
		d, err := gamesim.Replay(g, events, 20, gamesim.Config{})
		if err != nil {
			panic(err)
		}
		fmt.Println("tick", d.Tick(), "entities", len(d.Entities()), "x", g.players["1"].x)
	}
	// Output:
	// tick 19 entities 1 x 9
	// tick 19 entities 1 x 9
}

// jumper is a bot: it plays by itself, its entity deciding from the
// simulation and sending its input from SimTick. It sends nothing while
// the Driver re-simulates ticks played before it joined (Replaying), where
// SendEvent would refuse.
type jumper struct {
	game
	sent, seen int
	done       func()
}

func (b *jumper) OnReset(d *gamesim.Driver, r gamesim.Reset) {
	b.game.OnReset(d, r)
	_ = d.Spawn(&brain{b})
}

func (b *jumper) OnClientEvent(d *gamesim.Driver, e esclient.Event) {
	b.game.OnClientEvent(d, e)
	if e.Type == "jump" && e.Origin == d.PublicID() {
		if b.seen++; b.seen == 3 {
			b.done()
		}
	}
}

type brain struct{ b *jumper }

func (br *brain) SimTick(d *gamesim.Driver) {
	if !d.Replaying() && br.b.sent < 3 && d.Tick()%5 == 0 {
		if d.SendEvent("jump", "") == nil {
			br.b.sent++
		}
	}
}

// A headless bot: Run drives the simulation in real time with no game loop
// of its own, until the context ends.
func Example_headlessBot() {
	url, stop := apitest.Start()
	defer stop()

	c, err := esclient.New(esclient.Config{BaseURL: url, Stream: "arena", PrivateID: "bot-1"})
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b := &jumper{done: cancel}
	err = gamesim.New(c, b, gamesim.Config{}).Run(ctx)
	fmt.Println(err, "- the bot saw", b.seen, "of its jumps")
	// Output:
	// context canceled - the bot saw 3 of its jumps
}
