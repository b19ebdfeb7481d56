package stream

import (
	"context"
	"slices"

	"github.com/goeventstream/eventstream/internal/protocol"
)

// memCheckpoints is a memory stream's checkpoint state (checkpoint.go).
// It is guarded by the stream's mutex.
type memCheckpoints struct {
	records []ckRecord // by tick, at most maxCheckpoints
	snap    *Snapshot
	// sinceSnap counts the events appended since the last snapshot was
	// stored (or the stream began).
	sinceSnap int64
	// want is the checkpoint whose snapshot the stream asks for, or -1;
	// askPub was asked last, and another may be asked from tick askUntil.
	want     int64
	askPub   string
	askUntil int64
	// floor is the last tick compacted: the events at or below it are
	// dropped. -1 when none are.
	floor   int64
	reports []*memReport // oldest first, at most maxDesyncReports
}

// ckRecord is one checkpoint: open until judged, then its verdict.
type ckRecord struct {
	t         int64
	votes     int // the reports received
	judged    bool
	canonical string // once judged: "" when there is none
}

// memReport is a desync report and its dumps, by public id.
type memReport struct {
	DesyncReport
	dumps map[string][]byte
}

// checkpoint records the request's hash reports, judges the checkpoints
// that are due, and asks the client for a snapshot or a dump. s.mu must
// be held; c is the client of req, connected.
func (s *memStream) checkpoint(cfg *Config, t int64, c *memClient, req *SyncRequest, res *SyncResult) {
	if req.Epoch == "" || req.Epoch == s.epoch { // reports of an older epoch are moot
		for _, h := range req.Hashes {
			s.report(cfg, t, c, h, res)
		}
	}
	for i := range s.ck.records {
		r := &s.ck.records[i]
		if !r.judged && (t >= r.t+1+cfg.judgeTicks() || r.votes >= s.connected) {
			s.judge(cfg, t, r, res)
		}
	}
	// Checkpoints past keeping go, and the snapshot wanted of one with them.
	n := 0
	for n < len(s.ck.records) && s.ck.records[n].t <= t-cfg.keepTicks() {
		n++
	}
	s.ck.records = slices.Delete(s.ck.records, 0, n)
	if s.ck.want >= 0 && s.record(s.ck.want) == nil {
		s.ck.want = -1
	}

	if w := s.ck.want; w >= 0 && (s.ck.askPub == "" || t >= s.ck.askUntil) && voteOf(c.votes, w) == s.record(w).canonical {
		res.Snap = &w
		s.ck.askPub, s.ck.askUntil = c.publicID, t+cfg.judgeTicks()
	}
	if c.dumpAsked {
		d := c.dumpAsk
		res.Dump = &d
		c.dumpAsked = false
	}
}

// record returns the kept checkpoint ck, or nil.
func (s *memStream) record(ck int64) *ckRecord {
	for i := range s.ck.records {
		if s.ck.records[i].t == ck {
			return &s.ck.records[i]
		}
	}
	return nil
}

// report records client c's report h at tick t.
func (s *memStream) report(cfg *Config, t int64, c *memClient, h protocol.HashReport, res *SyncResult) {
	if !cfg.reportable(h.T, t) {
		return
	}
	recs := s.ck.records
	if r := s.record(h.T); r == nil && len(recs) >= maxCheckpoints && h.T < recs[0].t {
		return // older than every checkpoint kept
	}
	votes, added := addVote(c.votes, h.T, h.H)
	if !added {
		return
	}
	c.votes = votes
	r := s.record(h.T)
	switch {
	case r == nil:
		if len(s.ck.records) >= maxCheckpoints {
			if oldest := &s.ck.records[0]; !oldest.judged {
				s.judge(cfg, t, oldest, res)
			}
			s.ck.records = slices.Delete(s.ck.records, 0, 1)
		}
		i, _ := slices.BinarySearchFunc(s.ck.records, h.T, func(r ckRecord, t int64) int { return int(r.t - t) })
		s.ck.records = slices.Insert(s.ck.records, i, ckRecord{t: h.T, votes: 1})
	case !r.judged:
		r.votes++
	case r.canonical != "" && h.H != r.canonical:
		s.desync(t, r.t, r.canonical, []string{c.publicID}, res) // a late report that differs
	}
}

// judge judges the open checkpoint r at tick t.
func (s *memStream) judge(cfg *Config, t int64, r *ckRecord, res *SyncResult) {
	votes := s.votes(r.t)
	canonical, diverged := judge(votes, s.connected, cfg.CheckpointQuorum)
	r.judged, r.canonical = true, canonical
	res.Judged++
	if len(diverged) > 0 {
		s.desync(t, r.t, canonical, diverged, res)
	}
	if canonical != "" && cfg.SnapshotEvery > 0 && s.ck.sinceSnap >= cfg.SnapshotEvery &&
		(s.ck.snap == nil || r.t > s.ck.snap.T) && r.t > s.ck.want {
		s.ck.want = r.t
	}
}

// votes returns the votes of the connected clients for checkpoint ck, in
// ascending public id order.
func (s *memStream) votes(ck int64) []vote {
	var out []vote
	for _, c := range s.clients {
		if h := voteOf(c.votes, ck); c.connected && h != "" {
			out = append(out, vote{pub: c.publicID, hash: h})
		}
	}
	slices.SortFunc(out, func(a, b vote) int { return pubLess(a.pub, b.pub) })
	return out
}

// desync appends "_x" at tick t naming the clients diverged at checkpoint
// ck, and records who is to be asked for a dump.
func (s *memStream) desync(t, ck int64, canonical string, diverged []string, res *SyncResult) {
	s.lastT = t
	s.append(t, protocol.TypeDesync, desyncBody(ck, diverged), serverOrigin)
	res.Diverged += len(diverged)

	rep := s.desyncReport(ck)
	if rep == nil {
		rep = &memReport{DesyncReport: DesyncReport{T: ck, At: t, Hash: canonical}, dumps: make(map[string][]byte)}
		if canonical != "" {
			for _, v := range s.votes(ck) {
				if v.hash == canonical {
					s.askDump(rep, v.pub, v.hash)
					break
				}
			}
		}
		s.ck.reports = append(s.ck.reports, rep)
		if len(s.ck.reports) > maxDesyncReports {
			s.ck.reports = slices.Delete(s.ck.reports, 0, 1)
		}
	}
	for _, pub := range diverged {
		s.askDump(rep, pub, voteOf(s.clientByPub(pub).votes, ck))
	}
}

// desyncReport returns the desync report of checkpoint ck, or nil.
func (s *memStream) desyncReport(ck int64) *memReport {
	for _, r := range s.ck.reports {
		if r.T == ck {
			return r
		}
	}
	return nil
}

// askDump adds the client pub to rep, unless it is there or rep is full,
// and asks it for its dump at its next sync.
func (s *memStream) askDump(rep *memReport, pub, hash string) {
	if len(rep.Clients) >= maxDumpsPerReport ||
		slices.ContainsFunc(rep.Clients, func(c DesyncClient) bool { return c.PublicID == pub }) {
		return
	}
	rep.Clients = append(rep.Clients, DesyncClient{PublicID: pub, Hash: hash})
	c := s.clientByPub(pub)
	c.dumpAsk, c.dumpAsked = rep.T, true
}

// clientByPub returns the client of a public id; it must exist.
func (s *memStream) clientByPub(pub string) *memClient {
	for _, c := range s.clients {
		if c.publicID == pub {
			return c
		}
	}
	panic("stream: no client has public id " + pub)
}

// compact drops the events at or below the snapshot's tick that are
// older than the history kept, a page at most, and returns how many.
func (s *memStream) compact(cfg *Config, t int64) int {
	if s.ck.snap == nil {
		return 0
	}
	target := min(s.ck.snap.T, t-cfg.retainTicks()-1)
	if target <= s.ck.floor {
		return 0
	}
	hi := s.search(target+1, 0)
	end, more := hi, false
	if hi > 0 {
		end, more = s.page(0, hi, cfg.PageEvents, cfg.PageBytes)
	}
	s.drop(end)
	s.ck.floor = target
	if more {
		s.ck.floor = s.index[0].t - 1 // up to the tick the page left out
	}
	return end
}

// lockStream returns the stream named name, locked, or nil.
func (m *MemoryStore) lockStream(name string) *memStream {
	m.mu.RLock()
	s := m.streams[name]
	m.mu.RUnlock()
	if s == nil {
		return nil
	}
	s.mu.Lock()
	if s.deleted {
		s.mu.Unlock()
		return nil
	}
	return s
}

// PutSnapshot implements Store.
func (m *MemoryStore) PutSnapshot(_ context.Context, up *Upload) (int64, bool, error) {
	hash := hashOf(up.Data) // before the lock
	s := m.lockStream(up.Stream)
	if s == nil {
		return 0, false, ErrNotFound
	}
	defer s.mu.Unlock()
	if s.clients[up.PrivateID] == nil {
		return 0, false, ErrNotFound
	}
	r := s.record(up.T)
	if r == nil || !r.judged || r.canonical != hash {
		return 0, false, ErrSnapshotMismatch
	}
	if s.ck.snap != nil && s.ck.snap.T >= up.T {
		return s.ck.snap.T, false, nil // this one or a later one is kept
	}
	s.ck.snap = &Snapshot{T: up.T, Hash: hash, Epoch: s.epoch, Data: slices.Clone(up.Data)}
	s.ck.sinceSnap = 0
	if s.ck.want <= up.T {
		s.ck.want, s.ck.askPub = -1, ""
	}
	return up.T, true, nil
}

// Snapshot implements Store.
func (m *MemoryStore) Snapshot(_ context.Context, stream string) (*Snapshot, error) {
	s := m.lockStream(stream)
	if s == nil {
		return nil, ErrNotFound
	}
	defer s.mu.Unlock()
	if s.ck.snap == nil {
		return nil, ErrNotFound
	}
	snap := *s.ck.snap // Data is never written once stored
	return &snap, nil
}

// PutDump implements Store.
func (m *MemoryStore) PutDump(_ context.Context, up *Upload) error {
	s := m.lockStream(up.Stream)
	if s == nil {
		return ErrNotFound
	}
	defer s.mu.Unlock()
	c := s.clients[up.PrivateID]
	rep := s.desyncReport(up.T)
	if c == nil || rep == nil {
		return ErrNotFound
	}
	i := slices.IndexFunc(rep.Clients, func(dc DesyncClient) bool { return dc.PublicID == c.publicID })
	if i < 0 {
		return ErrNotFound
	}
	rep.dumps[c.publicID] = slices.Clone(up.Data)
	rep.Clients[i].Dump = true
	return nil
}

// Desyncs implements Store.
func (m *MemoryStore) Desyncs(_ context.Context, stream string) ([]DesyncReport, error) {
	s := m.lockStream(stream)
	if s == nil {
		return nil, ErrNotFound
	}
	defer s.mu.Unlock()
	out := make([]DesyncReport, len(s.ck.reports))
	for i, r := range s.ck.reports {
		out[i] = r.DesyncReport
		out[i].Clients = slices.Clone(r.Clients)
	}
	return out, nil
}

// Dump implements Store.
func (m *MemoryStore) Dump(_ context.Context, stream string, t int64, publicID string) ([]byte, error) {
	s := m.lockStream(stream)
	if s == nil {
		return nil, ErrNotFound
	}
	defer s.mu.Unlock()
	if rep := s.desyncReport(t); rep != nil {
		if d, ok := rep.dumps[publicID]; ok {
			return d, nil
		}
	}
	return nil, ErrNotFound
}
