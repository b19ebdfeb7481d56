// Command pushidle measures what idle push connections cost a server: it
// opens -n WebSocket push connections (-per clients to a stream), holds
// them for -hold, and reports the server's live heap, goroutine stacks and
// resident memory before and after (from its /metrics, after a garbage
// collection it asks for on its -debug-addr), and, with -redis, the
// commands Redis ran per second while they were held.
//
//	eventstreamd -debug-addr 127.0.0.1:6060 &
//	go run ./scripts/pushidle -url http://127.0.0.1:9922 -debug http://127.0.0.1:6060 -n 10000
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/google/uuid"
	"github.com/redis/rueidis"
)

func main() {
	url := flag.String("url", "http://127.0.0.1:9922", "eventstreamd's address")
	n := flag.Int("n", 10_000, "push connections")
	per := flag.Int("per", 10, "connections per stream")
	hold := flag.Duration("hold", 10*time.Second, "how long to hold them")
	redisURL := flag.String("redis", "", "the server's Redis, to count its commands per second")
	flag.StringVar(&debugURL, "debug", "", "the server's -debug-addr, to collect its garbage before each reading (else the heap includes garbage)")
	flag.Parse()
	if err := run(*url, *n, *per, *hold, *redisURL); err != nil {
		fmt.Fprintln(os.Stderr, "pushidle:", err)
		os.Exit(1)
	}
}

func run(url string, n, per int, hold time.Duration, redisURL string) error {
	ctx := context.Background()
	m0, err := memory(url)
	if err != nil {
		return err
	}
	prefix := "idle-" + uuid.NewString()[:8]
	ws := "ws" + strings.TrimPrefix(url, "http")
	conns := make([]*websocket.Conn, n)
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			c, _, err := websocket.Dial(dctx, fmt.Sprintf("%s/%s-%d/c%d/0", ws, prefix, i/per, i), nil)
			if err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
				return
			}
			c.SetReadLimit(-1)
			conns[i] = c
			go func() { // read and drop what is pushed, as a client does
				for {
					if _, _, err := c.Read(ctx); err != nil {
						return
					}
				}
			}()
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	fmt.Printf("%d push connections open on %d streams\n", n, (n+per-1)/per)
	var calls0 int64
	if redisURL != "" {
		if calls0, err = redisCalls(redisURL); err != nil {
			return err
		}
	}
	held, err := memory(url)
	if err != nil {
		return err
	}
	time.Sleep(hold)
	if redisURL != "" {
		calls1, err := redisCalls(redisURL)
		if err != nil {
			return err
		}
		rate := float64(calls1-calls0) / hold.Seconds()
		fmt.Printf("redis: %.0f commands/s: %.2f per stream per second, %.3f per connection per second\n",
			rate, rate/float64((n+per-1)/per), rate/float64(n))
	}
	m1, err := memory(url)
	if err != nil {
		return err
	}
	cpu := (m1.cpu - held.cpu) / hold.Seconds()
	fmt.Printf("server CPU: %.2f cores while they were held, %.1f µs per connection-second\n", cpu, cpu*1e6/float64(n))
	perConn := func(a, b float64) string {
		return fmt.Sprintf("%.1f → %.1f MiB: %.1f KiB per connection", mib(a), mib(b), (b-a)/1024/float64(n))
	}
	heap := "heap allocated"
	if debugURL != "" {
		heap = "live heap"
	}
	fmt.Printf("server %-15s %s\n", heap, perConn(m0.heap, m1.heap))
	fmt.Printf("server %-15s %s\n", "stacks", perConn(m0.stacks, m1.stacks))
	fmt.Printf("server %-15s %s\n", "resident", perConn(m0.rss, m1.rss))
	for _, c := range conns {
		c.Close(websocket.StatusNormalClosure, "")
	}
	return nil
}

func mib(b float64) float64 { return b / (1 << 20) }

// debugURL is the server's -debug-addr, or "".
var debugURL string

// mem is the server's memory at one time.
type mem struct{ heap, stacks, rss, cpu float64 }

// memory reads the server's heap, stacks and resident memory, after a
// garbage collection when debugURL is set.
func memory(url string) (m mem, err error) {
	if debugURL != "" {
		resp, err := http.Get(debugURL + "/debug/pprof/heap?gc=1")
		if err != nil {
			return m, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		return m, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		for name, v := range map[string]*float64{
			"go_memstats_heap_alloc_bytes ":  &m.heap,
			"go_memstats_stack_inuse_bytes ": &m.stacks,
			"process_resident_memory_bytes ": &m.rss,
			"process_cpu_seconds_total ":     &m.cpu,
		} {
			if s, ok := strings.CutPrefix(sc.Text(), name); ok {
				*v, _ = strconv.ParseFloat(s, 64)
			}
		}
	}
	return m, sc.Err()
}

// redisCalls returns the commands Redis has run.
func redisCalls(url string) (int64, error) {
	opt, err := rueidis.ParseURL(url)
	if err != nil {
		return 0, err
	}
	c, err := rueidis.NewClient(opt)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	info, err := c.Do(context.Background(), c.B().Info().Section("stats").Build()).ToString()
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "total_commands_processed:"); ok {
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, fmt.Errorf("no total_commands_processed")
}
