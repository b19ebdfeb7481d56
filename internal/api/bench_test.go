package api_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/goeventstream/eventstream/internal/api"
	"github.com/goeventstream/eventstream/internal/stream"
)

// BenchmarkHTTPSync measures the HTTP path of a typical sync (handler,
// routing, metrics, JSON) without the network: a client fetching the last
// four ticks of events, 16 events, from a stream with some history.
func BenchmarkHTTPSync(b *testing.B) {
	h := newHarness(b, func(_ *api.Config, s *stream.Config) {
		s.MaxSyncsPerSecond, s.MaxEventsPerSecond = 1e15, 1e15 // a clock that stands still refills nothing
	})
	post := `{"events":[{"type":"move","body":"left"},{"type":"move","body":"right"},{"type":"jump","body":""},{"type":"aim","body":"{\"x\":12,\"y\":-3}"}]}`
	for range 1000 {
		rec := httptest.NewRecorder()
		h.server.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/s/writer/0", strings.NewReader(post)))
		if rec.Code != http.StatusOK {
			b.Fatal(rec.Body.String())
		}
		h.clock.Advance(50 * time.Millisecond)
	}
	req := httptest.NewRequest(http.MethodGet, "/s/reader/997", nil) // t is 1001: ticks 997 to 1000
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.server.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"t":1000`) {
			b.Fatal(rec.Body.String())
		}
	}
}
