package api_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/goeventstream/eventstream/internal/apitest"
	"github.com/goeventstream/eventstream/internal/redistest"
	"github.com/goeventstream/eventstream/internal/stream"
)

// TestRedisOutageUnderLoad syncs from many clients while Redis hangs
// (SIGSTOP), then dies and comes back: every request is answered within
// the store's timeout, 200 or 503, never left hanging.
func TestRedisOutageUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("runs an outage of a few seconds; skipped with -short")
	}
	const timeout = 300 * time.Millisecond
	srv := redistest.Start(t)
	cfg := stream.DefaultRedisConfig()
	cfg.URL, cfg.Secret, cfg.Timeout = srv.URL(), redistest.Secret, timeout
	cfg.MaxSyncsPerSecond, cfg.MaxEventsPerSecond = 0, 0 // clients as fast as they go
	cfg.MaxStreamBytesPerSecond = 0
	store, err := stream.NewRedisStore(cfg)
	require.NoError(t, err)
	t.Cleanup(store.Close)
	handler, err := apitest.Handler(store)
	require.NoError(t, err)
	do := func(target string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, target, strings.NewReader(`{"events":[{"type":"m"}]}`)))
		return rec
	}

	var (
		stop    atomic.Bool
		wg      sync.WaitGroup
		slowest atomic.Int64
		counts  sync.Map // status -> *atomic.Int64
	)
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				start := time.Now()
				rec := do(fmt.Sprintf("/s%d/c%d/0", i%4, i))
				d := time.Since(start)
				for old := slowest.Load(); int64(d) > old && !slowest.CompareAndSwap(old, int64(d)); old = slowest.Load() {
				}
				n, _ := counts.LoadOrStore(rec.Code, new(atomic.Int64))
				n.(*atomic.Int64).Add(1)
				if rec.Code != http.StatusOK && rec.Code != http.StatusServiceUnavailable {
					t.Errorf("status %d: %s", rec.Code, rec.Body.String())
				}
			}
		}()
	}
	pause := func() { time.Sleep(time.Second) } // load runs meanwhile; nothing is timed by it
	pause()
	srv.Freeze(t)
	pause()
	srv.Thaw(t)
	pause()
	srv.Stop()
	pause()
	srv.Restart(t)
	pause()
	stop.Store(true)
	wg.Wait()

	got := map[int]int64{}
	counts.Range(func(k, v any) bool { got[k.(int)] = v.(*atomic.Int64).Load(); return true })
	t.Logf("answers %v; slowest %v", got, time.Duration(slowest.Load()))
	assert.Positive(t, got[http.StatusServiceUnavailable], "the outage was seen")
	assert.Positive(t, got[http.StatusOK], "and served around it")
	require.LessOrEqual(t, time.Duration(slowest.Load()), timeout+700*time.Millisecond, "a request waited past the store's timeout")
}
