package main

import (
	"context"
	"testing"
	"time"

	"github.com/goeventstream/eventstream/internal/loadgen"
)

// TestCheckCatchesWhatAClientGotWrong: a client must see its channel's
// history from where it subscribed, each publication once, in order.
func TestCheckCatchesWhatAClientGotWrong(t *testing.T) {
	ref := []seen{{1, "c0.0"}, {2, "c1.0"}, {3, "c0.1"}, {4, "c1.1"}}
	tests := []struct {
		name   string
		from   uint64
		subbed bool
		give   []seen
		want   int // problems
	}{
		{"all since it subscribed", 1, true, ref[1:], 0},
		{"from the start", 0, true, ref, 0},
		{"one lost", 1, true, []seen{ref[1], ref[3]}, 1},
		{"one twice", 1, true, []seen{ref[1], ref[2], ref[2], ref[3]}, 1},
		{"out of order", 1, true, []seen{ref[2], ref[1], ref[3]}, 1},
		{"another body at an offset", 1, true, []seen{ref[1], {3, "c1.7"}, ref[3]}, 1},
		{"never subscribed", 0, false, nil, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			w := &worker{from: tt.from, subbed: tt.subbed, seen: tt.give}
			var v loadgen.Verification
			w.check(ctx, &v, ref, 4)
			if len(v.Problems) != tt.want {
				t.Fatalf("problems %q, want %d", v.Problems, tt.want)
			}
		})
	}
}

// TestCheckHistoryCatchesLossAndDoubles: a channel's history holds every
// confirmed publication once and nothing never sent.
func TestCheckHistoryCatchesLossAndDoubles(t *testing.T) {
	members := []*worker{{idx: 0, sent: 2, acked: map[int]bool{0: true, 1: true}}, {idx: 1, sent: 1, acked: map[int]bool{0: true}}}
	tests := []struct {
		name string
		give []seen
		want int
	}{
		{"whole", []seen{{1, "c0.0"}, {2, "c1.0"}, {3, "c0.1"}}, 0},
		{"a confirmed one lost", []seen{{1, "c0.0"}, {2, "c1.0"}}, 1},
		{"one twice", []seen{{1, "c0.0"}, {2, "c1.0"}, {3, "c0.1"}, {4, "c0.1"}}, 1},
		{"never sent", []seen{{1, "c0.0"}, {2, "c1.0"}, {3, "c0.1"}, {4, "c1.1"}}, 1},
		{"trimmed", []seen{{2, "c1.0"}, {3, "c0.1"}}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var v loadgen.Verification
			l := &load{}
			l.checkHistory(&v, 0, members, tt.give, uint64(len(tt.give)))
			if len(v.Problems) != tt.want {
				t.Fatalf("problems %q, want %d", v.Problems, tt.want)
			}
		})
	}
}
