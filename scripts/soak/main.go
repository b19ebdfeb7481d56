// Command soak drives an eventstreamd with games that start and end all
// the time, at a steady rate of syncs, and samples the server's /metrics
// (and Redis's memory, if given) as it goes: live heap, goroutines and
// streams held should stay flat after the warm-up, and every stream
// created should expire.
//
//	go run ./scripts/soak -url http://127.0.0.1:9944 -duration 30m -syncs 2000
//
// Run the server with a short -client-timeout and -stream-ttl (scripts/soak.sh
// does) so that ended games expire within the run.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
}

func run() error {
	url := flag.String("url", "http://127.0.0.1:9944", "the server")
	metricsURL := flag.String("metrics", "", "its /metrics, if not on -url")
	redisAddr := flag.String("redis", "", "host:port of its Redis, to sample its memory")
	duration := flag.Duration("duration", 30*time.Minute, "how long to run")
	syncs := flag.Int("syncs", 2000, "syncs a second, in all")
	players := flag.Int("players", 4, "players a game")
	life := flag.Duration("game", 20*time.Second, "how long a game lasts")
	every := flag.Duration("sample", time.Minute, "how often to sample")
	flag.Parse()
	if *metricsURL == "" {
		*metricsURL = *url + "/metrics"
	}

	// A player syncs 5 times a second; games are started so that syncs/5
	// players play at any time.
	concurrent := max(*syncs/5 / *players, 1)
	ctx, cancel := context.WithTimeout(context.Background(), *duration)
	defer cancel()
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 4096}}
	var sent, failed, games atomic.Int64
	var wg sync.WaitGroup
	for g := range concurrent {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Stagger the games, so that they end all the time, not at once.
			sleep(ctx, time.Duration(g)*(*life)/time.Duration(concurrent))
			for ctx.Err() == nil {
				games.Add(1)
				play(ctx, client, *url, uuid.NewString(), *players, *life, &sent, &failed)
			}
		}()
	}

	fmt.Printf("%d games of %d players at a time, %v each: %d syncs/s; sampling every %v\n",
		concurrent, *players, *life, concurrent**players*5, *every)
	fmt.Println("| minute | syncs/s | failed | games started | streams held | created | expired | heap MiB | goroutines | Redis MiB |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|---|")
	start, last := time.Now(), int64(0)
	tick := time.NewTicker(*every)
	defer tick.Stop()
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case <-tick.C:
		}
		if done {
			break
		}
		m, err := scrape(client, *metricsURL)
		if err != nil {
			return err
		}
		redisMiB := "-"
		if *redisAddr != "" {
			if b, err := redisUsedMemory(*redisAddr); err == nil {
				redisMiB = fmt.Sprintf("%.1f", float64(b)/(1<<20))
			}
		}
		n := sent.Load()
		fmt.Printf("| %.0f | %.0f | %d | %d | %.0f | %.0f | %.0f | %.1f | %.0f | %s |\n",
			time.Since(start).Minutes(), float64(n-last)/every.Seconds(), failed.Load(), games.Load(),
			m["eventstreamd_store_streams"], m["eventstreamd_store_streams_created_total"], m["eventstreamd_store_streams_expired_total"],
			m["go_memstats_heap_alloc_bytes"]/(1<<20), m["go_goroutines"], redisMiB)
		last = n
	}
	wg.Wait()
	return nil
}

// play plays one game: players join, sync 5 times a second, a fifth of the
// syncs with an event, until the game ends; then they go silent.
func play(ctx context.Context, client *http.Client, url, game string, players int, life time.Duration, sent, failed *atomic.Int64) {
	ctx, cancel := context.WithTimeout(ctx, life)
	defer cancel()
	var wg sync.WaitGroup
	for p := range players {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("p%d-%s", p, uuid.NewString()[:8])
			t := int64(0)
			tick := time.NewTicker(200 * time.Millisecond)
			defer tick.Stop()
			for {
				body := "{}"
				if rand.IntN(5) == 0 {
					body = `{"events":[{"type":"move","body":"` + strconv.Itoa(rand.IntN(9)) + `"}]}`
				}
				resp, err := client.Post(fmt.Sprintf("%s/soak-%s/%s/%d", url, game, id, t), "application/json", strings.NewReader(body))
				sent.Add(1)
				if err != nil {
					if ctx.Err() == nil {
						failed.Add(1)
					}
				} else {
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						failed.Add(1)
					} else if i := strings.Index(string(b), `"t":`); i >= 0 {
						end := strings.IndexAny(string(b[i+4:]), ",}")
						t, _ = strconv.ParseInt(string(b[i+4:i+4+end]), 10, 64)
					}
				}
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
			}
		}()
	}
	wg.Wait()
}

// scrape reads the unlabelled samples of a /metrics page.
func scrape(client *http.Client, url string) (map[string]float64, error) {
	resp, err := client.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") || strings.Contains(line, "{") {
			continue
		}
		name, val, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(val, 64)
		if err == nil {
			out[name] = v
		}
	}
	return out, sc.Err()
}

// redisUsedMemory asks Redis for used_memory, in bytes.
func redisUsedMemory(addr string) (int64, error) {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := fmt.Fprint(conn, "INFO memory\r\n"); err != nil {
		return 0, err
	}
	sc := bufio.NewScanner(conn)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "used_memory:"); ok {
			return strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		}
	}
	return 0, errors.New("no used_memory in INFO")
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
