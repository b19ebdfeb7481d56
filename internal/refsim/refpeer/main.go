// Command refpeer plays the reference simulation (internal/refsim) live on
// a stream, with gamesim, for the TypeScript client's tests: a Go client
// and a TypeScript one in one stream must agree on every checkpoint's
// hash, and each must join a compacted stream from the other's snapshot.
//
// It prints one JSON line per checkpoint tick it processed,
// {"t":20,"h":"<hex sha256 of its snapshot>"}, and when -duration has
// passed {"resets":n,"last":tick}: resets is how many times the sim
// started from "_a" (0 when it joined from a snapshot).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/goeventstream/eventstream/internal/refsim"
	"github.com/goeventstream/eventstream/pkg/esclient"
	"github.com/goeventstream/eventstream/pkg/gamesim"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "refpeer:", err)
		os.Exit(1)
	}
}

// peer is the reference sim, counting its resets and printing the hash of
// every checkpoint tick (StateHash runs after each tick).
type peer struct {
	*refsim.Sim
	every  int64
	resets int
	enc    *json.Encoder
}

func (p *peer) OnReset(d *gamesim.Driver, r gamesim.Reset) {
	p.resets++
	p.Sim.OnReset(d, r)
}

func (p *peer) StateHash(d *gamesim.Driver) uint64 {
	if d.Tick()%p.every == 0 {
		snap, err := gamesim.SnapshotOf(d)
		if err == nil {
			_ = p.enc.Encode(map[string]any{"t": d.Tick(), "h": esclient.HashOf(snap)})
		}
	}
	return 0
}

func run() error {
	url := flag.String("url", "http://127.0.0.1:9922", "the server")
	stream := flag.String("stream", "refsim", "the stream")
	id := flag.String("id", "refpeer", "the private id")
	duration := flag.Duration("duration", 5*time.Second, "how long to play")
	every := flag.Int64("every", 20, "print the hash of every tick that is a multiple of this")
	moves := flag.Duration("moves", 100*time.Millisecond, "time between random moves; 0 sends none")
	flag.Parse()

	c, err := esclient.New(esclient.Config{BaseURL: *url, Stream: *stream, PrivateID: *id})
	if err != nil {
		return err
	}
	p := &peer{Sim: &refsim.Sim{}, every: *every, enc: json.NewEncoder(os.Stdout)}
	d := gamesim.New(c, p, gamesim.Config{RecordHashes: 1})
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *duration)
	defer cancel()
	if *moves > 0 {
		go func() {
			t := time.NewTicker(*moves)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					_ = d.SendEvent("move", string("lrud"[rand.IntN(4)])) // not simulation: which key a player presses
				}
			}
		}()
	}
	err = d.Run(ctx)
	if err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
		return err
	}
	return p.enc.Encode(map[string]any{"resets": p.resets, "last": d.Tick()})
}
