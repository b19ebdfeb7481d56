package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/goeventstream/eventstream/internal/apitest"
	"github.com/goeventstream/eventstream/internal/protocol"
	"github.com/goeventstream/eventstream/internal/redistest"
	"github.com/goeventstream/eventstream/pkg/esclient"
)

// balancer sends each request to a random live replica, as a load balancer
// without affinity would.
type balancer struct {
	mu    sync.Mutex
	addrs []string
	rt    http.RoundTripper
}

func (b *balancer) set(i int, addr string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.addrs[i] = addr
}

func (b *balancer) RoundTrip(r *http.Request) (*http.Response, error) {
	b.mu.Lock()
	addr := b.addrs[rand.IntN(len(b.addrs))]
	b.mu.Unlock()
	r = r.Clone(r.Context())
	r.URL.Host = addr
	r.Host = addr
	return b.rt.RoundTrip(r)
}

// TestReplicasShareStreams runs three replicas on one Redis, sends every
// request to a random one, kills one with SIGKILL and starts it again, and
// checks that the protocol held as with one process.
func TestReplicasShareStreams(t *testing.T) {
	redis := redistest.Start(t)
	args := []string{"-store", redis.URL(), "-store-secret", redistest.Secret, "-client-timeout", "2s",
		"-sweep-interval", "100ms"}
	replicas := make([]*apitest.Process, 3)
	bal := &balancer{addrs: make([]string, 3), rt: &http.Transport{}}
	t.Cleanup(func() { bal.rt.(*http.Transport).CloseIdleConnections() })
	for i := range replicas {
		replicas[i] = apitest.StartBinary(t, nil, args...)
		bal.set(i, replicas[i].Addr)
	}

	type client struct {
		stream, id string
		c          *esclient.Client
		quitAt     time.Duration // 0: keeps syncing
		sent       int
		seen       []esclient.Event
		lastT      int64
		publicID   string
	}
	var clients []*client
	for s := range 2 {
		for c := range 4 {
			cl := &client{stream: fmt.Sprintf("game-%d", s), id: fmt.Sprintf("player-%d-%d", s, c)}
			if c == 3 {
				cl.quitAt = 1500 * time.Millisecond
			}
			var err error
			cl.c, err = esclient.New(esclient.Config{BaseURL: "http://replicas", Stream: cl.stream, PrivateID: cl.id,
				HTTPClient: &http.Client{Transport: bal, Timeout: 5 * time.Second}})
			require.NoError(t, err)
			clients = append(clients, cl)
		}
	}
	syncOnce := func(cl *client) {
		u, err := cl.c.Sync(context.Background())
		if err != nil {
			return // a replica is down: the batch is kept and retried
		}
		if u.T < cl.lastT {
			t.Errorf("%s: t went back from %d to %d", cl.id, cl.lastT, u.T)
		}
		for _, e := range u.Events {
			if e.T < cl.lastT {
				t.Errorf("%s: event at tick %d after t=%d", cl.id, e.T, cl.lastT)
			}
		}
		if u.Reset && cl.lastT > 0 {
			t.Errorf("%s: the stream was reset", cl.id)
		}
		cl.seen = append(cl.seen, u.Events...)
		cl.lastT, cl.publicID = u.T, u.PublicID
	}

	start := time.Now()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i, cl := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(i), 1))
			for {
				select {
				case <-stop:
					return
				case <-time.After(time.Duration(50+rng.IntN(100)) * time.Millisecond):
				}
				if cl.quitAt > 0 && time.Since(start) > cl.quitAt {
					return
				}
				if rng.IntN(2) == 0 && cl.c.Send("move", fmt.Sprintf("%s/%d", cl.id, cl.sent)) == nil {
					cl.sent++
				}
				syncOnce(cl)
			}
		}()
	}

	time.Sleep(2 * time.Second) // the game runs; nothing is timed by this
	replicas[1].Kill()          // mid-run, with no warning
	time.Sleep(time.Second)
	replicas[1] = apitest.StartBinary(t, nil, args...)
	bal.set(1, replicas[1].Addr)
	time.Sleep(3 * time.Second) // the quitters are disconnected meanwhile
	close(stop)
	wg.Wait()

	// Every queued event goes out; then each stream is read whole.
	for _, cl := range clients {
		for tries := 0; cl.c.Pending() > 0 && tries < 50; tries++ {
			syncOnce(cl)
		}
		require.Zero(t, cl.c.Pending(), "%s could not send its events", cl.id)
	}
	time.Sleep(200 * time.Millisecond) // seal the tick of the last events
	refs := map[string][]esclient.Event{}
	refT := map[string]int64{}
	for s := range 2 {
		name := fmt.Sprintf("game-%d", s)
		r, err := esclient.New(esclient.Config{BaseURL: "http://replicas", Stream: name, PrivateID: "reader",
			HTTPClient: &http.Client{Transport: bal, Timeout: 5 * time.Second}})
		require.NoError(t, err)
		for {
			u, err := r.Sync(context.Background())
			require.NoError(t, err)
			refs[name] = append(refs[name], u.Events...)
			if !u.More {
				refT[name] = u.T
				break
			}
		}
	}

	for _, cl := range clients {
		for tries := 0; cl.lastT < refT[cl.stream] && tries < 50; tries++ {
			syncOnce(cl)
		}
		var got []esclient.Event
		for _, e := range cl.seen {
			if e.T < refT[cl.stream] {
				got = append(got, e)
			}
		}
		// A client that left catches up here too: it sees every event below
		// refT, in the one order.
		assert.Equal(t, refs[cl.stream], got, "%s saw another order", cl.id)
	}
	for name, ref := range refs {
		bodies := map[string]int{}
		disconnects := map[string]int{}
		for _, e := range ref {
			switch e.Type {
			case "move":
				bodies[e.Body]++
			case esclient.TypeDisconnect:
				disconnects[e.Body]++
			}
		}
		for _, cl := range clients {
			if cl.stream != name {
				continue
			}
			for k := range cl.sent {
				assert.Equal(t, 1, bodies[fmt.Sprintf("%s/%d", cl.id, k)], "%s: event %d of %s", name, k, cl.id)
			}
			wantD := 0
			if cl.quitAt > 0 {
				wantD = 1
			}
			assert.Equal(t, wantD, disconnects[cl.publicID], "%s: disconnects of %s (public id %s)", name, cl.id, cl.publicID)
		}
	}
}

// TestWaitsForRedis: a replica that starts before Redis listens at once,
// alive (/healthz 200) but not ready (/readyz 503, syncs 503), and serves
// once Redis answers, as in a deployment where both start at once: the
// liveness probe does not kill it meanwhile.
func TestWaitsForRedis(t *testing.T) {
	redistest.Binary(t)
	port := redistest.FreePort(t)
	logs := newLogLines()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-drain-delay", "0", "-store", fmt.Sprintf("redis://127.0.0.1:%d", port),
			"-store-secret", redistest.Secret}, env(), io.Discard, logs)
	}()
	addr := logs.waitListening(t)
	require.Eventually(t, func() bool { return strings.Contains(logs.all(), "waiting for the store") },
		10*time.Second, 20*time.Millisecond)
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	status := func(method, path string) int {
		req, err := http.NewRequest(method, "http://"+addr+path, nil)
		require.NoError(t, err)
		resp, err := client.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	assert.Equal(t, http.StatusOK, status(http.MethodGet, "/healthz"), "alive")
	assert.Equal(t, http.StatusServiceUnavailable, status(http.MethodGet, "/readyz"), "not ready")
	assert.Equal(t, http.StatusServiceUnavailable, status(http.MethodPost, "/foo/"+secret+"/0"))

	redistest.StartAt(t, port)
	require.Eventually(t, func() bool { return status(http.MethodGet, "/readyz") == http.StatusOK }, 10*time.Second, 50*time.Millisecond)
	seedRequest(t, client, addr)
	cancel()
	require.NoError(t, <-done)
}

// TestStoreWaitReplicas: with -store-wait-replicas 1, a sync on a Redis
// with no replica is answered 503 store_unknown within -store-timeout (it
// stands on the primary, unreplicated, and says so), and once a replica
// follows the primary the same request is answered 200.
func TestStoreWaitReplicas(t *testing.T) {
	primary := redistest.Start(t)
	logs := newLogLines()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-drain-delay", "0", "-store", primary.URL(),
			"-store-secret", redistest.Secret, "-store-timeout", "300ms"}, env("EVENTSTREAMD_STORE_WAIT_REPLICAS", "1"), io.Discard, logs)
	}()
	t.Cleanup(func() { cancel(); require.NoError(t, <-done) })
	addr := logs.waitAddr(t)
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	post := func() (int, string) {
		start := time.Now()
		resp, err := client.Post("http://"+addr+"/g/"+secret+"/0", "application/json", strings.NewReader(`{"events":[{"type":"m"}]}`))
		require.NoError(t, err)
		defer resp.Body.Close()
		assert.Less(t, time.Since(start), 2*time.Second, "answered within the store timeout")
		var e protocol.ErrorReply
		_ = json.NewDecoder(resp.Body).Decode(&e)
		return resp.StatusCode, e.Error.Code
	}

	status, code := post()
	assert.Equal(t, http.StatusServiceUnavailable, status)
	assert.Equal(t, protocol.CodeStoreUnknown, code, "applied on the primary, not replicated: the outcome is unknown")

	redistest.Start(t, "replicaof "+strings.Replace(primary.Addr, ":", " ", 1))
	require.Eventually(t, func() bool {
		status, _ := post()
		return status == http.StatusOK
	}, 15*time.Second, 100*time.Millisecond, "answered once a replica acknowledges")
}
