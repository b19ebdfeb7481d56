// Command hostile attacks an eventstreamd the way the fault campaign of
// docs/operations.md does, for a while, and says what the server answered:
// thousands of idle keep-alive connections, slowloris headers and bodies,
// and one client posting full requests back to back at one stream (about
// 100 times a player's rate). Run esbench beside it to see that the
// well-behaved clients are still served (scripts/hostile.sh does).
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9946", "the server's host:port")
	idle := flag.Int("idle", 10_000, "idle keep-alive connections")
	slow := flag.Int("slowloris", 200, "connections that send their headers, or their body, a byte a second")
	duration := flag.Duration("duration", 60*time.Second, "how long to attack")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), *duration)
	defer cancel()
	var wg sync.WaitGroup

	// Idle keep-alive connections: one request each, then silence.
	var opened, closedEarly atomic.Int64
	for range *idle {
		conn, err := net.Dial("tcp", *addr)
		if err != nil {
			fmt.Fprintln(os.Stderr, "hostile: idle connection:", err)
			break
		}
		fmt.Fprintf(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
		r := bufio.NewReader(conn)
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			conn.Close()
			continue
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		opened.Add(1)
		wg.Add(1)
		go func() { // holds it, and notices when the server closes it
			defer wg.Done()
			defer conn.Close()
			go func() { <-ctx.Done(); conn.Close() }()
			if _, err := r.ReadByte(); err != nil && ctx.Err() == nil {
				closedEarly.Add(1)
			}
		}()
	}

	// Slowloris: headers, or a body, a byte a second.
	var slowCut atomic.Int64
	for i := range *slow {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := net.Dial("tcp", *addr)
			if err != nil {
				return
			}
			defer conn.Close()
			go func() { <-ctx.Done(); conn.Close() }()
			head := "POST /s/slow/0 HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n"
			if i%2 == 0 {
				head = "GET /s/slow/0 HTTP/1.1\r\nHost: x\r\nX-Slow: "
			} else if _, err := io.WriteString(conn, head); err != nil {
				return
			}
			for ctx.Err() == nil {
				if _, err := conn.Write([]byte("a")); err != nil {
					slowCut.Add(1) // the server hung up on it
					return
				}
				time.Sleep(time.Second)
			}
		}()
	}

	// A flooder: 256 events a request, back to back, at one stream.
	var codes sync.Map
	wg.Add(1)
	go func() {
		defer wg.Done()
		client := &http.Client{Timeout: 5 * time.Second}
		body := `{"events":[` + strings.TrimSuffix(strings.Repeat(`{"type":"spam","body":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"},`, 256), ",") + `]}`
		for ctx.Err() == nil {
			resp, err := client.Post("http://"+*addr+"/shared/flooder/0", "application/json", strings.NewReader(body))
			if err != nil {
				continue
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			n, _ := codes.LoadOrStore(resp.StatusCode, new(atomic.Int64))
			n.(*atomic.Int64).Add(1)
		}
	}()

	wg.Wait()
	fmt.Printf("idle keep-alive connections held: %d (closed by the server before the end: %d)\n", opened.Load(), closedEarly.Load())
	fmt.Printf("slowloris connections cut by the server: %d of %d\n", slowCut.Load(), *slow)
	fmt.Print("flooder's answers:")
	codes.Range(func(k, v any) bool { fmt.Printf(" %d×%d", v.(*atomic.Int64).Load(), k); return true })
	fmt.Println()
}
