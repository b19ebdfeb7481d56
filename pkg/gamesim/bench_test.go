package gamesim_test

import (
	"testing"

	"github.com/goeventstream/eventstream/pkg/esclient"
	"github.com/goeventstream/eventstream/pkg/gamesim"
)

type countSim struct{ events int }

func (*countSim) OnReset(*gamesim.Driver, gamesim.Reset)          {}
func (*countSim) OnConnect(*gamesim.Driver, string)               {}
func (*countSim) OnDisconnect(*gamesim.Driver, string)            {}
func (s *countSim) OnClientEvent(*gamesim.Driver, esclient.Event) { s.events++ }

// BenchmarkReplay replays a stream of 1M events, four per tick, with a
// trivial sim; the budget is at least 1M events a second.
func BenchmarkReplay(b *testing.B) {
	const n = 1_000_000
	events := make([]esclient.Event, 0, n)
	events = append(events, esclient.Event{T: 0, Type: esclient.TypeReset, Origin: "_", Body: "6db8b8f2-16c9-427d-9fc9-de43870ed0db"})
	for i := 1; i < n; i++ {
		events = append(events, esclient.Event{T: int64(i/4 + 1), Type: "move", Origin: "1", Body: "left"})
	}
	b.ReportAllocs()
	for b.Loop() {
		s := &countSim{}
		if _, err := gamesim.Replay(s, events, events[len(events)-1].T+1, gamesim.Config{}); err != nil {
			b.Fatal(err)
		}
		if s.events != n-1 {
			b.Fatalf("replayed %d events", s.events)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
