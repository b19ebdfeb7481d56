// Command sweepload measures how late the Redis store's sweeps disconnect
// silent clients: it creates many streams of one client each on a Redis,
// stops syncing, and has one or more replicas sweep them, recording for
// every disconnect how long after its client's deadline it was appended.
//
//	go run ./scripts/sweepload -redis redis://127.0.0.1:6379/0 -streams 100000 -replicas 3
//
// It writes to the Redis it is given, under a prefix of its own; use a
// Redis of its own (make sweep-load starts one).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/goeventstream/eventstream/internal/stream"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "sweepload:", err)
		os.Exit(1)
	}
}

func run() error {
	url := flag.String("redis", "redis://127.0.0.1:6379/0", "Redis URL")
	streams := flag.Int("streams", 100_000, "streams, each with one client")
	replicas := flag.Int("replicas", 1, "replicas sweeping at once")
	timeout := flag.Duration("client-timeout", 10*time.Second, "client timeout")
	flag.Parse()

	cfg := stream.DefaultRedisConfig()
	cfg.URL, cfg.Secret = *url, "sweepload-secret-0123456789"
	cfg.Prefix = "sweepload-" + uuid.NewString()[:8] + ":"
	cfg.ClientTimeout = *timeout
	cfg.MaxStreams = *streams + 1
	stores := make([]*stream.RedisStore, *replicas)
	for i := range stores {
		s, err := stream.NewRedisStore(cfg)
		if err != nil {
			return err
		}
		defer s.Close()
		stores[i] = s
	}
	ctx := context.Background()

	// Every client's deadline is its last sync plus the timeout.
	fmt.Printf("creating %d streams...\n", *streams)
	deadlines := make([]atomic.Int64, *streams)
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	start := time.Now()
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= *streams {
					return
				}
				_, err := stores[i%len(stores)].Sync(ctx, &stream.SyncRequest{Stream: fmt.Sprint("s", i), PrivateID: "p"})
				if err != nil {
					errs <- err
					return
				}
				deadlines[i].Store(time.Now().Add(*timeout).UnixNano())
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	fmt.Printf("created in %v; deadlines span %v\n", time.Since(start).Round(time.Millisecond), time.Since(start).Round(time.Millisecond))

	// Sweep as eventstreamd does, every 250 ms on each replica, until every
	// client was disconnected.
	late := make([]time.Duration, 0, *streams)
	var mu sync.Mutex
	var dups atomic.Int64
	seen := make([]atomic.Bool, *streams)
	sweepCtx, stop := context.WithTimeout(ctx, *timeout+5*time.Minute)
	defer stop()
	for _, s := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTicker(stream.DefaultSweepInterval)
			defer t.Stop()
			for {
				select {
				case <-sweepCtx.Done():
					return
				case <-t.C:
				}
				res, err := s.Sweep(sweepCtx)
				if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
					fmt.Println("sweep failed:", err)
				}
				now := time.Now()
				mu.Lock()
				for _, d := range res.Disconnected {
					var i int
					fmt.Sscanf(d.Stream, "s%d", &i)
					if seen[i].Swap(true) {
						dups.Add(1)
					}
					late = append(late, now.Sub(time.Unix(0, deadlines[i].Load())))
				}
				done := len(late) >= *streams
				mu.Unlock()
				if done {
					stop()
				}
			}
		}()
	}
	wg.Wait()

	slices.Sort(late)
	q := func(p float64) time.Duration {
		return late[min(len(late)-1, int(p*float64(len(late))))].Round(time.Millisecond)
	}
	fmt.Printf("%d streams, %d replicas: %d disconnects (%d twice); lateness after the deadline p50 %v p99 %v max %v\n",
		*streams, *replicas, len(late), dups.Load(), q(0.5), q(0.99), late[len(late)-1].Round(time.Millisecond))
	if len(late) < *streams || dups.Load() > 0 {
		return fmt.Errorf("%d of %d clients disconnected, %d twice", len(late), *streams, dups.Load())
	}
	return nil
}
