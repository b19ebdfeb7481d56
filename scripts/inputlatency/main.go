// Command inputlatency measures a game's input-to-callback latency: the
// time from SendEvent on one gamesim client to OnClientEvent for that event
// on another, on a live server, with each of esclient's transports.
//
//	go run ./scripts/inputlatency -url http://127.0.0.1:9922 -duration 20s
//
// Two players run a Driver each, with Update called every 16 ms as a game
// loop would; the sender sends an event every 100 ms whose body is the
// wall time it was sent; the receiver records when its OnClientEvent sees
// it. Both run in this process, so they share one clock.
package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/goeventstream/eventstream/pkg/esclient"
	"github.com/goeventstream/eventstream/pkg/gamesim"
)

func main() {
	url := flag.String("url", "http://127.0.0.1:9922", "eventstreamd's address")
	duration := flag.Duration("duration", 20*time.Second, "how long to measure each transport")
	every := flag.Duration("every", 100*time.Millisecond, "how often the sender sends, on average (each wait drawn between half and one and a half of it): a second leaves quiet ticks between inputs")
	flag.Parse()
	for _, tr := range []esclient.Transport{esclient.Poll, esclient.Push} {
		lat, err := measure(*url, tr, *duration, *every)
		if err != nil {
			fmt.Fprintln(os.Stderr, "inputlatency:", err)
			os.Exit(1)
		}
		slices.Sort(lat)
		if len(lat) == 0 {
			fmt.Fprintf(os.Stderr, "inputlatency: %v: no event arrived\n", tr)
			os.Exit(1)
		}
		q := func(p float64) time.Duration { return lat[int(p*float64(len(lat)-1))] }
		fmt.Printf("%-5v input to callback: p50 %4.0f ms  p90 %4.0f ms  p99 %4.0f ms  (%d events)\n",
			tr, ms(q(.5)), ms(q(.9)), ms(q(.99)), len(lat))
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// recorder is the receiver's Sim: it records how long events took.
type recorder struct {
	mu  sync.Mutex
	lat []time.Duration
}

func (*recorder) OnReset(*gamesim.Driver, gamesim.Reset) {}
func (*recorder) OnConnect(*gamesim.Driver, string)      {}
func (*recorder) OnDisconnect(*gamesim.Driver, string)   {}
func (r *recorder) OnClientEvent(d *gamesim.Driver, e esclient.Event) {
	if d.Replaying() || e.Type != "input" {
		return
	}
	sent, err := strconv.ParseInt(e.Body, 10, 64)
	if err != nil {
		return
	}
	r.mu.Lock()
	r.lat = append(r.lat, time.Since(time.Unix(0, sent)))
	r.mu.Unlock()
}

func measure(url string, tr esclient.Transport, d, every time.Duration) ([]time.Duration, error) {
	stream := "inputlatency-" + uuid.NewString()[:8]
	ctx, cancel := context.WithTimeout(context.Background(), d+2*time.Second)
	defer cancel()
	rec := &recorder{}
	var drivers []*gamesim.Driver
	for _, sim := range []gamesim.Sim{&recorder{}, rec} {
		c, err := esclient.New(esclient.Config{BaseURL: url, Stream: stream, PrivateID: uuid.NewString(), Transport: tr})
		if err != nil {
			return nil, err
		}
		drivers = append(drivers, gamesim.New(c, sim, gamesim.Config{}))
	}
	sender := drivers[0]
	var wg sync.WaitGroup
	for _, dr := range drivers {
		wg.Add(1)
		go func() { // a game loop
			defer wg.Done()
			defer dr.Close()
			frame := time.NewTicker(16 * time.Millisecond)
			defer frame.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case now := <-frame.C:
					dr.Update(now)
				}
			}
		}()
	}
	time.Sleep(time.Second) // both joined and caught up
	rec.mu.Lock()
	rec.lat = nil
	rec.mu.Unlock()
	input := time.NewTimer(every)
	defer input.Stop()
	end := time.After(d)
loop:
	for {
		select {
		case <-end:
			break loop
		case <-input.C:
			_ = sender.SendEvent("input", strconv.FormatInt(time.Now().UnixNano(), 10))
			input.Reset(every/2 + rand.N(every))
		}
	}
	time.Sleep(time.Second) // the last ones arrive
	cancel()
	wg.Wait()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return rec.lat, nil
}
