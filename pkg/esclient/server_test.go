package esclient_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/goeventstream/eventstream/internal/apitest"
	"github.com/goeventstream/eventstream/internal/clock"
	"github.com/goeventstream/eventstream/internal/stream"
)

// server is a real eventstreamd (api and memory store) on a fake clock.
type server struct {
	*httptest.Server
	store   *stream.MemoryStore
	clock   *clock.Fake
	handler http.Handler
}

func newServer(t *testing.T, edit func(*stream.Config)) *server {
	t.Helper()
	fake := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	cfg := stream.DefaultConfig()
	cfg.Clock = fake
	if edit != nil {
		edit(&cfg)
	}
	store, err := stream.NewMemoryStore(cfg)
	require.NoError(t, err)
	h, err := apitest.Handler(store)
	require.NoError(t, err)
	s := &server{store: store, clock: fake, handler: h}
	s.Server = httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s
}

// tick moves the server's clock one tick on.
func (s *server) tick() { s.clock.Advance(50 * time.Millisecond) }

// exampleServer starts a real eventstreamd on the real clock for the
// examples, and returns its URL and a function that stops it.
func exampleServer() (string, func()) { return apitest.Start() }
