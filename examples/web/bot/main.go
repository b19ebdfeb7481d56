// Command bot is a Go player of Gem Rush, the browser demo of
// examples/web: it joins a stream beside the browsers, runs the same
// simulation (examples/web/sim) through pkg/gamesim, and chases the
// nearest gem.
//
//	go run ./examples/web/bot -url http://localhost:9922 -stream demo
//
// It prints its public id once, then, for every checkpoint it reports,
// "checkpoint <tick> <hash>": the same line a page shows in its
// #checkpoint element, so a person (or the browser test) can see that Go
// and the browsers agree. Its private id is kept in -id-file, so a bot
// that is started again is the same player.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/google/uuid"

	"github.com/goeventstream/eventstream/examples/web/sim"
	"github.com/goeventstream/eventstream/pkg/esclient"
	"github.com/goeventstream/eventstream/pkg/gamesim"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		fmt.Fprintln(os.Stderr, "bot:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("bot", flag.ContinueOnError)
	url := fs.String("url", envOr("EVENTSTREAMD_URL", "http://localhost:9922"), "eventstreamd's address (env EVENTSTREAMD_URL)")
	streamName := fs.String("stream", "demo", "the stream (game) to join")
	name := fs.String("name", "gobot", "the name shown beside the bot's disc")
	idFile := fs.String("id-file", "", "file that keeps the bot's private id across runs; empty: a new player every run")
	duration := fs.Duration("duration", 0, "how long to play; 0 means until interrupted")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if !sim.ValidName(*name) {
		return fmt.Errorf("-name must be 1 to %d printable ASCII characters", sim.MaxNameLen)
	}
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	privateID, err := privateID(*idFile)
	if err != nil {
		return err
	}
	c, err := esclient.New(esclient.Config{BaseURL: *url, Stream: *streamName, PrivateID: privateID})
	if err != nil {
		return err
	}
	b := &bot{print: func(s string) { fmt.Fprintln(out, s) }}
	d := gamesim.New(c, b, gamesim.Config{})
	defer d.Close()
	err = b.play(ctx, d, *name)
	if *duration > 0 && errors.Is(err, context.DeadlineExceeded) {
		return nil // played as long as asked
	}
	return err
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// privateID returns the private id kept in file, or a new one (kept there
// when file is given).
func privateID(file string) (string, error) {
	if file == "" {
		return uuid.NewString(), nil
	}
	return esclient.LoadOrCreatePrivateID(file)
}

// bot is the game's World with the checkpoints it reported recorded, and
// the hands that steer its disc.
type bot struct {
	sim.World
	print func(string)
}

// Snapshot records each checkpoint's hash as the Driver reports it: a
// live Driver snapshots only at checkpoint ticks.
func (b *bot) Snapshot(d *gamesim.Driver, buf []byte) ([]byte, error) {
	data, err := b.World.Snapshot(d, buf)
	if err == nil {
		b.print(fmt.Sprintf("checkpoint %d %s", d.Tick(), esclient.HashOf(data)))
	}
	return data, err
}

// OnDesync implements gamesim.DesyncHandler.
func (b *bot) OnDesync(d *gamesim.Driver, x gamesim.Desync) {
	b.print(fmt.Sprintf("desync at checkpoint %d: players %v", x.Checkpoint, x.IDs))
}

// play runs the game loop: the Driver at about 60 frames a second, and a
// decision every 200 ms (a person's reaction time: quicker, and the bot
// is no fun to play against).
func (b *bot) play(ctx context.Context, d *gamesim.Driver, name string) error {
	frame := time.NewTicker(16 * time.Millisecond)
	defer frame.Stop()
	var named bool
	var next time.Time
	input := -1
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case now := <-frame.C:
			d.Update(now)
			if err := d.Err(); err != nil {
				return err
			}
			me := b.Player(d.PublicID())
			if me == nil || d.Replaying() || now.Before(next) {
				continue
			}
			next = now.Add(200 * time.Millisecond)
			if !named {
				b.print("public id " + d.PublicID())
				named = d.SendEvent(sim.TypeName, name) == nil
			}
			if in := b.steer(me); in != input && d.SendEvent(sim.TypeInput, sim.FormatInput(in)) == nil {
				input = in
			}
		}
	}
}

// steer returns the keys that take the disc to the nearest gem, braking
// ahead of it: where the disc will be in 8 ticks is what it aims with.
func (b *bot) steer(me *sim.Player) int {
	x, y := me.X+8*me.VX, me.Y+8*me.VY
	best, bx, by := -1, sim.Width/2, sim.Height/2
	for _, g := range b.Gems {
		if d := (g.X-me.X)*(g.X-me.X) + (g.Y-me.Y)*(g.Y-me.Y); best < 0 || d < best {
			best, bx, by = d, g.X, g.Y
		}
	}
	in := 0
	const dead = 6 * sim.Unit
	switch {
	case bx < x-dead:
		in |= sim.Left
	case bx > x+dead:
		in |= sim.Right
	}
	switch {
	case by < y-dead:
		in |= sim.Up
	case by > y+dead:
		in |= sim.Down
	}
	return in
}
