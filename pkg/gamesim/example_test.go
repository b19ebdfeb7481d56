package gamesim_test

import (
	"fmt"

	"github.com/goeventstream/eventstream/pkg/esclient"
	"github.com/goeventstream/eventstream/pkg/gamesim"
)

// game is a whole Sim: every connected player is an entity that drifts at
// random and jumps when its owner says so.
type game struct{ players map[string]*player }

type player struct{ x int }

func (p *player) SimTick(d *gamesim.Driver) { p.x += d.Rand().IntN(3) - 1 }

func (g *game) OnReset(d *gamesim.Driver) { g.players = map[string]*player{} }

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
	}
}

func ExampleReplay() {
	events := []esclient.Event{
		{T: 0, Type: esclient.TypeReset, Origin: "_", Body: "6db8b8f2-16c9-427d-9fc9-de43870ed0db"},
		{T: 1, Type: esclient.TypeConnect, Origin: "_", Body: "1"},
		{T: 3, Type: "jump", Origin: "1"},
	}
	// Two replays of one stream reach the same state: so do live clients.
	for range 2 {
		g := &game{}
		d := gamesim.Replay(events, g, gamesim.ReplayUntil(20))
		fmt.Println("tick", d.Tick(), "entities", len(d.Entities()), "x", g.players["1"].x)
	}
	// Output:
	// tick 19 entities 1 x 9
	// tick 19 entities 1 x 9
}
