// Command bots is a small headless game played on eventstreamd: each
// player owns a bot on a 32×32 grid, steers it at random, and drops food
// that the bots race to eat. It shows everything a game does with
// pkg/gamesim: a Sim, entities, Rand, SendEvent and checkpoints.
//
//	go run ./examples/bots -url http://localhost:9922 -stream demo -n 4
//
// At every checkpoint (each second of game time with the server's default
// -checkpoint-interval 20) each player prints its public id, the tick and
// the checkpoint hash it reports: the lowercase hex SHA-256 of its snapshot,
// the same hash GET /{stream}/desyncs lists and the browser demo shows
// under "Last checkpoint". Start a second run on the same stream: it
// prints the same hash for the same tick.
//
// The world is a gamesim.Snapshotter, so it takes part in the server's
// checkpoints: -desync-at 200 breaks player 1's state once, at tick 200,
// as a bug would. The server names it in an "_x" within a checkpoint or
// two, every player prints the desync, player 1 reloads the last verified
// snapshot (or, when the stream has none yet, as with the server's default
// -snapshot-every 10000, re-simulates it from tick 0) and agrees again, and
// GET /{stream}/desyncs lists the two dumps to diff.
//
// -spectators 2 adds spectators (esclient.Config.Spectate: a tournament
// screen): they simulate the game as the players do and print the same
// checkpoint hash for the same tick, but never appear in the game nor
// report their hashes.
package main

import (
	"context"
	"encoding/binary"
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
	spectators := fs.Int("spectators", 0, "spectators to run in this process: they watch, and print the checkpoint hashes too")
	duration := fs.Duration("duration", 0, "how long to play; 0 means until interrupted")
	desyncAt := fs.Int64("desync-at", 0, "break player 1's state at this tick, once, to show desync detection; 0 never")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *n < 0 || *spectators < 0 || *n+*spectators < 1 {
		return errors.New("-n and -spectators must not be negative, and one of them at least 1")
	}
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}

	var mu sync.Mutex // one line at a time
	errs := make(chan error, *n+*spectators)
	for i := range *n + *spectators {
		cfg := esclient.Config{BaseURL: *url, Stream: *streamName, PrivateID: uuid.NewString()}
		who := fmt.Sprintf("player %d", i+1)
		if i >= *n {
			cfg.Spectate, who = true, fmt.Sprintf("spectator %d", i-*n+1)
			if (i-*n)%2 == 1 {
				cfg.Transport = esclient.Poll // every other one polls
			}
		}
		c, err := esclient.New(cfg)
		if err != nil {
			return err
		}
		go func() {
			var breakAt int64
			if i == 0 {
				breakAt = *desyncAt
			}
			errs <- play(ctx, who, c, breakAt, func(line string) {
				mu.Lock()
				defer mu.Unlock()
				fmt.Fprintln(out, line)
			})
		}()
	}
	var first error
	for range *n + *spectators {
		if err := <-errs; err != nil && first == nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
			first = err
		}
	}
	return first
}

// play runs one player, who ("player 1"): a game loop calling Update,
// and random input; or a spectator, which sends none.
func play(ctx context.Context, who string, c *esclient.Client, breakAt int64, print func(string)) error {
	w := &world{breakAt: breakAt}
	w.print = func(d *gamesim.Driver, format string, args ...any) {
		print(fmt.Sprintf("%s id=%s tick=%d ", who, d.PublicID(), d.Tick()) + fmt.Sprintf(format, args...))
	}
	d := gamesim.New(c, w, gamesim.Config{})
	defer d.Close()
	apart := fnv.New64a() // each player's hands apart
	_, _ = apart.Write([]byte(who))
	hands := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), apart.Sum64()))
	frame := time.NewTicker(16 * time.Millisecond) // about 60 frames a second
	defer frame.Stop()
	nextInput := time.Now()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case now := <-frame.C:
			d.Update(now)
			if err := d.Err(); err != nil {
				return err
			}
			if !c.Spectator() && now.After(nextInput) { // the player's hands, not the simulation
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

	// Not simulation state: the bug -desync-at plants, and the output.
	breakAt int64
	broken  bool
	print   func(d *gamesim.Driver, format string, args ...any)
}

type cell struct{ x, y int }

func (w *world) OnReset(*gamesim.Driver, gamesim.Reset) {
	w.bots, w.order, w.food = map[string]*bot{}, nil, nil
}

// OnDesync implements gamesim.DesyncHandler: every player there learns of
// it, once, at the same tick; the Driver of the one named reloads the last
// verified snapshot by itself, or re-simulates from tick 0 without one.
func (w *world) OnDesync(d *gamesim.Driver, x gamesim.Desync) {
	what := "another player"
	if x.Self {
		what = "me: reloading the last verified snapshot, or re-simulating from tick 0 if the stream has none"
	}
	w.print(d, "desync at checkpoint %d: players %v (%s)", x.Checkpoint, x.IDs, what)
}

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
	if w := b.w; w.breakAt > 0 && !w.broken && d.Tick() >= w.breakAt && !d.Replaying() {
		w.broken = true // a bug: state no other player has
		b.score += 1000
		w.print(d, "broke its state on purpose (-desync-at)")
	}
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

// Snapshot implements gamesim.Snapshotter, and prints the checkpoint hash
// the Driver reports of it: a live Driver snapshots at checkpoint ticks.
func (w *world) Snapshot(d *gamesim.Driver, b []byte) ([]byte, error) {
	data, err := w.snapshot(d, b)
	if err == nil {
		w.print(d, "checkpoint hash=%s", esclient.HashOf(data))
	}
	return data, err
}

// snapshot appends the whole state, canonically (ids in connect order,
// never map order), entities in spawn order.
func (w *world) snapshot(d *gamesim.Driver, b []byte) ([]byte, error) {
	b = binary.AppendUvarint(b, uint64(len(w.order)))
	for _, id := range w.order {
		bt := w.bots[id]
		b = binary.AppendUvarint(b, uint64(len(id)))
		b = append(b, id...)
		b = binary.AppendVarint(b, int64(bt.at.x))
		b = binary.AppendVarint(b, int64(bt.at.y))
		b = append(b, bt.heading)
		b = binary.AppendVarint(b, int64(bt.score))
		b = binary.AppendUvarint(b, map[bool]uint64{false: 0, true: 1}[bt.online])
	}
	entities := d.Entities()
	b = binary.AppendUvarint(b, uint64(len(entities)))
	for _, e := range entities {
		i := slices.IndexFunc(w.order, func(id string) bool { return w.bots[id] == e })
		if i < 0 {
			return nil, errors.New("an entity that is not a bot")
		}
		b = binary.AppendUvarint(b, uint64(i))
	}
	b = binary.AppendUvarint(b, uint64(len(w.food)))
	for _, f := range w.food {
		b = binary.AppendVarint(b, int64(f.x))
		b = binary.AppendVarint(b, int64(f.y))
	}
	return b, nil
}

// Restore implements gamesim.Snapshotter.
func (w *world) Restore(d *gamesim.Driver, data []byte) error {
	r := reader{b: data}
	w.bots, w.order, w.food = map[string]*bot{}, nil, nil
	for range r.count() {
		id := string(r.bytes(int(r.uint())))
		bt := &bot{w: w, at: cell{int(r.int()), int(r.int())}}
		bt.heading = r.byte()
		bt.score = int(r.int())
		bt.online = r.uint() == 1
		w.bots[id] = bt
		w.order = append(w.order, id)
	}
	for range r.count() {
		i := r.uint()
		if r.err == nil && i >= uint64(len(w.order)) {
			return errors.New("an entity of no bot")
		}
		if r.err == nil {
			if err := d.Spawn(w.bots[w.order[i]]); err != nil {
				return err
			}
		}
	}
	for range r.count() {
		w.food = append(w.food, cell{int(r.int()), int(r.int())})
	}
	if r.err == nil {
		w.print(d, "loaded the verified snapshot of tick %d", d.Tick())
	}
	return r.err
}

// reader reads what Snapshot appended, keeping the first error.
type reader struct {
	b   []byte
	err error
}

func (r *reader) uint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

// count reads a number of items, each at least one byte.
func (r *reader) count() uint64 {
	n := r.uint()
	if n > uint64(len(r.b)) {
		r.fail()
		return 0
	}
	return n
}

func (r *reader) int() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) byte() byte {
	if len(r.b) < 1 {
		r.fail()
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *reader) bytes(n int) []byte {
	if n > len(r.b) {
		r.fail()
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *reader) fail() {
	if r.err == nil {
		r.err = errors.New("a snapshot cut short")
	}
	r.b = nil
}
