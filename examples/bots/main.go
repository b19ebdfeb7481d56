// Command bots is a small headless game played on eventstreamd: each
// player owns a bot on a 32×32 grid, steers it at random, and drops food
// that the bots race to eat. It shows everything a game does with
// pkg/gamesim: a Sim, entities, Rand, SendEvent and a state hash.
//
//	go run ./examples/bots -url http://localhost:9922 -stream demo -n 4
//
// Every second of game time (20 ticks) each player prints its public id,
// the tick and the hash of its state. Start a second run on the same
// stream: it prints the same hash for the same tick.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"hash/fnv"
	"io"
	"math/rand/v2"
	"os"
	"os/signal"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/google/uuid"

	"github.com/goeventstream/eventstream/pkg/esclient"
	"github.com/goeventstream/eventstream/pkg/gamesim"
)

const size = 32 // the grid is size × size and wraps around

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bots:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("bots", flag.ContinueOnError)
	url := fs.String("url", "http://localhost:9922", "eventstreamd's address")
	streamName := fs.String("stream", "demo", "the stream (game) to join")
	n := fs.Int("n", 4, "players to run in this process")
	duration := fs.Duration("duration", 0, "how long to play; 0 means until interrupted")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *n < 1 {
		return errors.New("-n must be at least 1")
	}
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}

	var mu sync.Mutex // one line at a time
	errs := make(chan error, *n)
	for i := range *n {
		c, err := esclient.New(esclient.Config{BaseURL: *url, Stream: *streamName, PrivateID: uuid.NewString()})
		if err != nil {
			return err
		}
		go func() {
			errs <- play(ctx, i+1, c, func(line string) {
				mu.Lock()
				defer mu.Unlock()
				fmt.Fprintln(out, line)
			})
		}()
	}
	var first error
	for range *n {
		if err := <-errs; err != nil && first == nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
			first = err
		}
	}
	return first
}

// play runs one player: a game loop calling Update, and random input.
func play(ctx context.Context, player int, c *esclient.Client, print func(string)) error {
	d := gamesim.New(c, &world{}, gamesim.Config{RecordHashes: 64})
	defer d.Close()
	hands := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(player)))
	frame := time.NewTicker(16 * time.Millisecond) // about 60 frames a second
	defer frame.Stop()
	nextInput := time.Now()
	printed := int64(-1)
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case now := <-frame.C:
			if d.Update(now) > 0 {
				for _, h := range d.Hashes() {
					if h.Tick > printed && h.Tick%20 == 0 && h.Tick > 0 {
						print(fmt.Sprintf("player %d id=%s tick=%d hash=%016x", player, d.PublicID(), h.Tick, h.Hash))
						printed = h.Tick
					}
				}
			}
			if err := d.Err(); err != nil {
				return err
			}
			if now.After(nextInput) { // the player's hands, not the simulation
				nextInput = now.Add(time.Duration(150+hands.IntN(300)) * time.Millisecond)
				if hands.IntN(4) == 0 {
					_ = d.SendEvent("food", "")
				} else {
					_ = d.SendEvent("steer", string("NESW"[hands.IntN(4)]))
				}
			}
		}
	}
}

// world is the game's Sim. Its state is changed only by its callbacks and
// its entities, in the order the Driver calls them.
type world struct {
	bots  map[string]*bot // by public id; iterated only through order
	order []string        // public ids in connect order
	food  []cell          // in the order it was dropped
}

type cell struct{ x, y int }

func (w *world) OnReset(*gamesim.Driver, gamesim.Reset) { *w = world{bots: map[string]*bot{}} }

func (w *world) OnConnect(d *gamesim.Driver, id string) {
	b := w.bots[id]
	if b == nil {
		b = &bot{w: w, at: cell{d.Rand().IntN(size), d.Rand().IntN(size)}}
		w.bots[id] = b
		w.order = append(w.order, id)
	}
	b.online = true
	_ = d.Spawn(b) // a returning bot keeps its place and score
}

func (w *world) OnDisconnect(d *gamesim.Driver, id string) {
	if b := w.bots[id]; b != nil {
		b.online = false
		_ = d.Destroy(b)
	}
}

func (w *world) OnClientEvent(d *gamesim.Driver, e esclient.Event) {
	switch e.Type {
	case "food":
		w.food = append(w.food, cell{d.Rand().IntN(size), d.Rand().IntN(size)})
	case "steer":
		if b := w.bots[e.Origin]; b != nil && len(e.Body) == 1 {
			b.heading = e.Body[0]
		}
	}
}

// StateHash hashes everything the simulation decides.
func (w *world) StateHash(*gamesim.Driver) uint64 {
	h := fnv.New64a()
	for _, id := range w.order {
		b := w.bots[id]
		fmt.Fprintf(h, "%s:%d,%d,%c,%d,%t;", id, b.at.x, b.at.y, b.heading, b.score, b.online)
	}
	for _, f := range w.food {
		fmt.Fprintf(h, "f%d,%d;", f.x, f.y)
	}
	return h.Sum64()
}

// bot is an entity: it moves one cell per tick where it is steered, and
// now and then one cell astray.
type bot struct {
	w       *world
	at      cell
	heading byte
	score   int
	online  bool
}

func (b *bot) SimTick(d *gamesim.Driver) {
	dx, dy := 0, 0
	switch b.heading {
	case 'N':
		dy = -1
	case 'S':
		dy = 1
	case 'E':
		dx = 1
	case 'W':
		dx = -1
	}
	if d.Rand().IntN(5) == 0 {
		dx += d.Rand().IntN(3) - 1
	}
	b.at = cell{(b.at.x + dx + size) % size, (b.at.y + dy + size) % size}
	if i := slices.Index(b.w.food, b.at); i >= 0 {
		b.w.food = slices.Delete(b.w.food, i, i+1)
		b.score++
	}
}
