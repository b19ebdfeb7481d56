package stream

import (
	"slices"
	"sync"
	"sync/atomic"
)

// memBudget is the memory store's checkpoint budget (checkpoint_budget.go):
// the bytes of snapshots and dumps held, and the dumps stored, oldest
// first, for the budget to drop. Its mutex is taken after a stream's, never
// before: dropOldest releases it before it locks the dump's stream.
type memBudget struct {
	held atomic.Int64

	mu sync.Mutex
	q  []*memDump // oldest first; some gone since, skipped when met
	// compactAt is the length of q from which the dumps gone are removed
	// from it, so that it stays within twice the dumps held.
	compactAt int
}

// memDump is a stored dump. gone is set, under its stream's lock, when it
// is dropped, replaced, or goes with its report or its stream.
type memDump struct {
	s    *memStream
	t    int64
	pub  string
	data []byte
	gone atomic.Bool
}

// add adds n to the bytes held and returns the total.
func (b *memBudget) add(n int64) (int64, error) { return b.held.Add(n), nil }

// push queues a dump just stored. Its stream's lock is held.
func (b *memBudget) push(d *memDump) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.q = append(b.q, d)
	if len(b.q) >= b.compactAt {
		b.q = slices.DeleteFunc(b.q, func(d *memDump) bool { return d.gone.Load() })
		b.compactAt = 2*len(b.q) + 64
	}
}

// forget gives back the bytes of a dump that is no longer held. Its
// stream's lock is held.
func (b *memBudget) forget(d *memDump) {
	if !d.gone.Swap(true) {
		b.held.Add(-checkpointCost(len(d.data)))
		d.data = nil
	}
}

// dropOldest drops the oldest dump still held, for fitBudget, which gives
// its bytes back.
func (b *memBudget) dropOldest() (int64, bool, error) {
	for {
		b.mu.Lock()
		if len(b.q) == 0 {
			b.mu.Unlock()
			return 0, false, nil
		}
		d := b.q[0]
		b.q[0] = nil
		b.q = b.q[1:]
		b.mu.Unlock()
		if freed, ok := d.drop(); ok {
			return freed, true, nil
		}
	}
}

// drop empties d, unless it is gone, and returns its size. Its report
// keeps it, so that its client is not asked for it again: the report says
// the dump is not there (DesyncClient.Dump). Mirrored in
// lua/drop_dump.lua.
func (d *memDump) drop() (int64, bool) {
	s := d.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if d.gone.Load() {
		return 0, false
	}
	d.gone.Store(true)
	rep := s.desyncReport(d.t) // d is not gone: its report is kept
	for i := range rep.Clients {
		if rep.Clients[i].PublicID == d.pub {
			rep.Clients[i].Dump = false
		}
	}
	n := checkpointCost(len(d.data))
	d.data = nil
	return n, true
}

// forgetStream gives back the bytes of a stream deleted: its snapshot's
// and its dumps'. The stream's lock is held.
func (b *memBudget) forgetStream(s *memStream) {
	if s.ck.snap != nil {
		b.held.Add(-checkpointCost(len(s.ck.snap.Data)))
	}
	for _, rep := range s.ck.reports {
		for _, d := range rep.dumps {
			b.forget(d)
		}
	}
}
