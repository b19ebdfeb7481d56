// Command mygame is the game of the README ("Use it in your game"), whole:
// every player is a dot that drifts at random and jumps on "jump". The
// README quotes this file, and a test keeps the two the same.
//
//	go run ./examples/mygame -profile alice
package main

import (
	"encoding/binary"
	"errors"
	"flag"
	"log"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/goeventstream/eventstream/pkg/esclient"
	"github.com/goeventstream/eventstream/pkg/gamesim"
)

type game struct {
	players map[string]*player
	order   []string // public ids in connect order, the order of d.Entities()
}
type player struct{ x int }

func (p *player) SimTick(d *gamesim.Driver) { p.x += d.Rand().IntN(3) - 1 }

func (g *game) OnReset(d *gamesim.Driver, r gamesim.Reset) {
	g.players, g.order = map[string]*player{}, nil
}
func (g *game) OnConnect(d *gamesim.Driver, id string) {
	g.players[id] = &player{}
	g.order = append(g.order, id)
	_ = d.Spawn(g.players[id])
}
func (g *game) OnDisconnect(d *gamesim.Driver, id string) {
	_ = d.Destroy(g.players[id])
	delete(g.players, id)
	g.order = slices.DeleteFunc(g.order, func(o string) bool { return o == id })
}
func (g *game) OnClientEvent(d *gamesim.Driver, e esclient.Event) {
	if p := g.players[e.Origin]; p != nil && e.Type == "jump" {
		p.x += 10
	}
}

func main() {
	profile := flag.String("profile", "default", "player profile: one per window")
	flag.Parse()
	dir, _ := os.UserConfigDir()
	id, err := esclient.LoadOrCreatePrivateID(filepath.Join(dir, "mygame", *profile, "private-id"))
	if err != nil {
		log.Fatal(err)
	}
	c, err := esclient.New(esclient.Config{BaseURL: "http://localhost:9922", Stream: "demo", PrivateID: id})
	if err != nil {
		log.Fatal(err)
	}
	d := gamesim.New(c, &game{}, gamesim.Config{})
	defer d.Close()
	for now := range time.Tick(16 * time.Millisecond) { // your game loop
		d.Update(now) // runs the callbacks for the ticks that are due
		if err := d.Err(); err != nil {
			log.Fatal(err) // the server refuses this client for good
		}
		// read input: d.SendEvent("jump", ""); draw the game
	}
}

// Snapshot appends the whole state, canonically: the same state gives the
// same bytes on every client (players in connect order, never map order;
// each id with its length, so that Restore can read it back).
func (g *game) Snapshot(d *gamesim.Driver, b []byte) ([]byte, error) {
	for _, id := range g.order {
		b = binary.AppendUvarint(b, uint64(len(id)))
		b = append(b, id...)
		b = binary.AppendVarint(b, int64(g.players[id].x))
	}
	return b, nil
}

// Restore rebuilds the state, spawning the entities in the order they had.
func (g *game) Restore(d *gamesim.Driver, data []byte) error {
	g.players, g.order = map[string]*player{}, nil
	for len(data) > 0 {
		n, w := binary.Uvarint(data)
		if w <= 0 || n > uint64(len(data)-w) {
			return errors.New("a snapshot cut short")
		}
		id := string(data[w : w+int(n)])
		x, v := binary.Varint(data[w+int(n):])
		if v <= 0 {
			return errors.New("a snapshot cut short")
		}
		data = data[w+int(n)+v:]
		g.players[id] = &player{x: int(x)}
		g.order = append(g.order, id)
		if err := d.Spawn(g.players[id]); err != nil {
			return err
		}
	}
	return nil
}

func (g *game) OnDesync(d *gamesim.Driver, x gamesim.Desync) {
	log.Printf("players %v diverged at checkpoint %d", x.IDs, x.Checkpoint)
}
