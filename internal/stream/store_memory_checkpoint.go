package stream

import (
	"cmp"
	"context"
	"math"
	"slices"

	"github.com/goeventstream/eventstream/internal/protocol"
)

// memCheckpoints is a memory stream's checkpoint state (checkpoint.go).
// It is guarded by the stream's mutex.
type memCheckpoints struct {
	records []*ckRecord // by tick, at most maxCheckpoints
	// due is the first tick at which an open checkpoint is to be judged,
	// or noTick.
	due  int64
	snap *Snapshot
	// sinceSnap counts the events appended since the last snapshot was
	// stored (or the stream began).
	sinceSnap int64
	// want is the checkpoint whose snapshot the stream asks for, or -1,
	// and wantHash its canonical hash; askPub was asked last, and another
	// may be asked from tick askUntil.
	want     int64
	wantHash string
	askPub   string
	askUntil int64
	// compactedTo is the last tick compacted: the events at or below it
	// are dropped. -1 when none are.
	compactedTo int64
	reports     []*memReport // oldest first, at most maxDesyncReports
	// snapBy uploaded the snapshot: its retry is answered as stored.
	snapBy string
}

// ckRecord is one checkpoint: open until judged, then its verdict.
type ckRecord struct {
	t         int64
	votes     map[string]string // public id -> the hash it reported
	judged    bool
	canonical string // once judged: "" when there is none
}

// memReport is a desync report and its dumps, by public id.
type memReport struct {
	DesyncReport
	dumps map[string]*memDump
	late  bool // made by a late report, not by a verdict (maxDesyncReports)
}

// checkpoint records the request's hash reports and judges the
// checkpoints that are due, then asks the client for a snapshot or a
// dump. s.mu must be held; c is the client of req, connected.
func (s *memStream) checkpoint(cfg *Config, t int64, c *memClient, req *SyncRequest, res *SyncResult) {
	reports := len(req.Hashes) > 0 && (req.Epoch == "" || req.Epoch == s.epoch) // those of an older epoch are moot
	if reports || t >= s.ck.due {
		s.judgeDue(cfg, t, c, req.Hashes, reports, res)
	}
	if w := s.ck.want; w >= 0 && (s.ck.askPub == "" || t >= s.ck.askUntil) && s.voteOf(w, c.publicID) == s.ck.wantHash {
		snap := w // not w, whose address would move it to the heap on every sync
		res.Snap = &snap
		s.ck.askPub, s.ck.askUntil = c.publicID, cfg.askAgainAt(t)
	}
	if c.dumpOwed && t >= c.dumpAskAt {
		if c.dumpOwed = s.dumpOwed(c.dumpAsk, c.publicID); c.dumpOwed {
			d := c.dumpAsk
			res.Dump = &d
			c.dumpAskAt = cfg.askAgainAt(t)
		}
	}
}

// dumpOwed reports whether the desync report of checkpoint ck is still
// kept and waits for the dump of client pub. Mirrored in dump_owed
// (lua/checkpoint.lua).
func (s *memStream) dumpOwed(ck int64, pub string) bool {
	rep := s.desyncReport(ck)
	if rep == nil {
		return false
	}
	_, stored := rep.dumps[pub]
	return !stored
}

// judgeDue records the reports, if any, then judges every open
// checkpoint that is due (Config.judgeAt), or, when reports came,
// reported by as many clients as are connected. Checkpoints no longer
// kept (Config.kept) go. Mirrored in the checkpoint part of lua/sync.lua.
func (s *memStream) judgeDue(cfg *Config, t int64, c *memClient, hashes []protocol.HashReport, reports bool, res *SyncResult) {
	if reports {
		for _, h := range hashes {
			s.report(cfg, t, c, h, res)
		}
	}
	s.ck.due = noTick
	for _, r := range s.ck.records {
		if !r.judged && (t >= cfg.judgeAt(r.t) || (reports && len(r.votes) >= s.eligible(cfg, r.t))) {
			s.judge(cfg, t, r, res)
		}
		if !r.judged {
			s.ck.due = min(s.ck.due, cfg.judgeAt(r.t))
		}
	}
	n := 0
	for n < len(s.ck.records) && !cfg.kept(s.ck.records[n].t, t) {
		n++
	}
	s.ck.records = slices.Delete(s.ck.records, 0, n)
	if s.ck.want >= 0 && s.record(s.ck.want) == nil {
		s.ck.want = -1
	}
}

// noTick is a tick no stream reaches.
const noTick = math.MaxInt64

// record returns the kept checkpoint ck, or nil.
func (s *memStream) record(ck int64) *ckRecord {
	for _, r := range s.ck.records {
		if r.t == ck {
			return r
		}
	}
	return nil
}

// voteOf returns the hash the client pub reported for checkpoint ck, or "".
func (s *memStream) voteOf(ck int64, pub string) string {
	if r := s.record(ck); r != nil {
		return r.votes[pub]
	}
	return ""
}

// report records client c's report h at tick t.
func (s *memStream) report(cfg *Config, t int64, c *memClient, h protocol.HashReport, res *SyncResult) {
	if !cfg.reportable(h.T, t) || !cfg.voter(c.joined, h.T) {
		return
	}
	r := s.record(h.T)
	if r == nil {
		if len(s.ck.records) >= maxCheckpoints {
			oldest := s.ck.records[0]
			if h.T < oldest.t {
				return // older than every checkpoint kept
			}
			if !oldest.judged {
				s.judge(cfg, t, oldest, res)
			}
			s.ck.records = slices.Delete(s.ck.records, 0, 1)
		}
		r = &ckRecord{t: h.T, votes: make(map[string]string)}
		i, _ := slices.BinarySearchFunc(s.ck.records, h.T, func(r *ckRecord, t int64) int { return cmp.Compare(r.t, t) })
		s.ck.records = slices.Insert(s.ck.records, i, r)
	}
	if _, repeat := r.votes[c.publicID]; repeat {
		return // the first report counts
	}
	r.votes[c.publicID] = h.H
	if r.judged && r.canonical != "" && h.H != r.canonical {
		s.desync(cfg, t, r, []string{c.publicID}, true, res) // a late report that differs
	}
}

// judge judges the open checkpoint r at tick t. Mirrored in judge
// (lua/sync.lua).
func (s *memStream) judge(cfg *Config, t int64, r *ckRecord, res *SyncResult) {
	canonical, diverged := judge(s.votes(cfg, r), s.eligible(cfg, r.t), cfg.CheckpointQuorum)
	r.judged, r.canonical = true, canonical
	res.Judged++
	if len(diverged) > 0 {
		s.desync(cfg, t, r, diverged, false, res)
	}
	if canonical != "" && cfg.SnapshotEvery > 0 && s.ck.sinceSnap >= cfg.SnapshotEvery &&
		(s.ck.snap == nil || r.t > s.ck.snap.T) && r.t > s.ck.want {
		s.ck.want, s.ck.wantHash = r.t, canonical
	}
}

// votes returns the votes for checkpoint r of its voters still connected
// (Config.voter), in ascending public id order; a voter the stream forgot
// (admission.go) is not connected. Mirrored in connected_votes
// (lua/sync.lua).
func (s *memStream) votes(cfg *Config, r *ckRecord) []vote {
	out := make([]vote, 0, len(r.votes))
	for pub, h := range r.votes {
		if c := s.byPub[pub]; c != nil && c.connected && cfg.voter(c.joined, r.t) {
			out = append(out, vote{pub: pub, hash: h})
		}
	}
	slices.SortFunc(out, func(a, b vote) int { return pubLess(a.pub, b.pub) })
	return out
}

// eligible returns how many connected clients vote on checkpoint ck
// (Config.voter): all of them unless one connected too late. Mirrored in
// eligible (lua/sync.lua).
func (s *memStream) eligible(cfg *Config, ck int64) int {
	if cfg.voter(s.lastJoin, ck) {
		return s.connected
	}
	n := 0
	for _, c := range s.clients {
		if c.connected && cfg.voter(c.joined, ck) {
			n++
		}
	}
	return n
}

// desync appends "_x" at tick t naming the clients diverged at
// checkpoint r, and records who is to be asked for a dump; late says a
// late report, not a verdict, named them. Mirrored in desync
// (lua/sync.lua).
func (s *memStream) desync(cfg *Config, t int64, r *ckRecord, diverged []string, late bool, res *SyncResult) {
	s.lastT = t
	s.append(t, protocol.TypeDesync, desyncBody(r.t, diverged), serverOrigin)
	res.Diverged += len(diverged)

	rep := s.desyncReport(r.t)
	if rep == nil {
		rep = &memReport{DesyncReport: DesyncReport{T: r.t, At: t, Hash: r.canonical}, dumps: make(map[string]*memDump), late: late}
		s.ck.reports = append(s.ck.reports, rep)
		if len(s.ck.reports) > maxDesyncReports {
			drop := 0 // the oldest made by a late report, else the oldest (maxDesyncReports)
			if i := slices.IndexFunc(s.ck.reports, func(r *memReport) bool { return r.late }); i >= 0 {
				drop = i
			}
			gone := s.ck.reports[drop]
			s.ck.reports = slices.Delete(s.ck.reports, drop, drop+1)
			for _, d := range gone.dumps {
				s.budget.forget(d)
			}
			if gone == rep {
				return // every report kept is a verdict's
			}
		}
		for _, v := range s.votes(cfg, r) { // the canonical hash is never "" here: a tie names nobody
			if v.hash == r.canonical {
				s.askDump(rep, v.pub, v.hash)
				break
			}
		}
	}
	for _, pub := range diverged {
		s.askDump(rep, pub, r.votes[pub])
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
// and asks it for its dump at its next sync, and again every judgeAfter
// (Config.askAgainAt) until the dump is stored or the report dropped: an
// ask or an upload may be lost.
func (s *memStream) askDump(rep *memReport, pub, hash string) {
	if len(rep.Clients) >= maxDumpsPerReport ||
		slices.ContainsFunc(rep.Clients, func(c DesyncClient) bool { return c.PublicID == pub }) {
		return
	}
	rep.Clients = append(rep.Clients, DesyncClient{PublicID: pub, Hash: hash})
	c := s.clientByPub(pub)
	c.dumpAsk, c.dumpAskAt, c.dumpOwed = rep.T, 0, true
}

// clientByPub returns the client of a public id; it must exist.
func (s *memStream) clientByPub(pub string) *memClient {
	c := s.byPub[pub]
	if c == nil {
		panic("stream: no client has public id " + pub)
	}
	return c
}

// compact drops the events at or below the snapshot's tick that are
// older than the history kept, a page at most, and returns how many. With
// SnapshotEvery 0 the stream keeps its full history, even when a client
// uploads a snapshot it was not asked for.
func (s *memStream) compact(cfg *Config, t int64) int {
	if s.ck.snap == nil || cfg.SnapshotEvery == 0 {
		return 0
	}
	target := min(s.ck.snap.T, t-cfg.retainTicks()-1)
	if target <= s.ck.compactedTo {
		return 0
	}
	hi := s.search(target+1, 0)
	end, more := hi, false
	if hi > 0 {
		end, more = s.page(0, hi, cfg.PageEvents, cfg.PageBytes)
	}
	s.drop(end)
	s.ck.compactedTo = target
	if more {
		s.ck.compactedTo = s.index[0].t - 1 // up to the tick the page left out
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
	// Checked, then the budget taken (which may lock other streams to drop
	// their dumps), then checked again and stored.
	if t, done, err := m.checkSnapshot(up, hash, nil); done || err != nil {
		return t, false, err
	}
	size := checkpointCost(len(up.Data))
	if err := m.cfg.fitBudget(size, m.budget.add, m.budget.dropOldest); err != nil {
		return 0, false, err
	}
	var stored bool
	t, _, err := m.checkSnapshot(up, hash, func(s *memStream, c *memClient) {
		if s.ck.snap != nil {
			m.budget.add(-checkpointCost(len(s.ck.snap.Data)))
		}
		s.ck.snap = &Snapshot{T: up.T, Hash: hash, Epoch: s.epoch, Data: slices.Clone(up.Data)}
		s.ck.sinceSnap, s.ck.snapBy = 0, c.publicID
		if s.ck.want <= up.T {
			s.ck.want, s.ck.askPub = -1, ""
		}
		stored = true
	})
	if !stored {
		m.budget.add(-size)
		return t, false, err
	}
	return up.T, true, nil
}

// checkSnapshot checks up, whose hash is hash, against its stream: it
// returns an error, or the tick of a snapshot kept instead and true, or
// calls store with the stream locked when up is to be stored.
func (m *MemoryStore) checkSnapshot(up *Upload, hash string, store func(*memStream, *memClient)) (int64, bool, error) {
	s := m.lockStream(up.Stream)
	if s == nil {
		return 0, false, ErrNotFound
	}
	defer s.mu.Unlock()
	c := s.clients[up.PrivateID]
	if c == nil {
		return 0, false, ErrNotFound
	}
	if !s.ck.asked(up.T, c.publicID) {
		return 0, false, ErrForbidden
	}
	if s.ck.snap != nil && s.ck.snap.T >= up.T {
		return s.ck.snap.T, true, nil // this one or a later one is kept
	}
	r := s.record(up.T)
	if r == nil || !r.judged || r.canonical != hash || !m.cfg.kept(up.T, s.tickAt(m.clock.Now())) {
		return 0, false, ErrSnapshotMismatch
	}
	if store != nil {
		store(s, c)
	}
	return 0, false, nil
}

// asked reports whether client pub may upload its snapshot of checkpoint
// ck: it is the client last asked for it, or the one whose snapshot of ck
// is kept (a retry of an upload whose answer was lost). Mirrored in
// snap_asked (lua/checkpoint.lua).
func (k *memCheckpoints) asked(ck int64, pub string) bool {
	return (k.want == ck && k.askPub == pub) || (k.snap != nil && k.snap.T == ck && k.snapBy == pub)
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
	// Checked, then the budget taken (which may lock other streams to drop
	// their dumps), then checked again and stored.
	if err := m.checkDump(up, nil); err != nil {
		return err
	}
	size := checkpointCost(len(up.Data))
	if err := m.cfg.fitBudget(size, m.budget.add, m.budget.dropOldest); err != nil {
		return err
	}
	stored := false
	err := m.checkDump(up, func(s *memStream, rep *memReport, i int) {
		pub := rep.Clients[i].PublicID
		if old := rep.dumps[pub]; old != nil {
			m.budget.forget(old)
		}
		d := &memDump{s: s, t: rep.T, pub: pub, data: slices.Clone(up.Data)}
		rep.dumps[pub] = d
		rep.Clients[i].Dump = true
		m.budget.push(d)
		stored = true
	})
	if !stored {
		m.budget.add(-size)
	}
	return err
}

// checkDump checks up against its stream, and calls store with the stream
// locked when it is to be stored: the client of rep.Clients[i].
func (m *MemoryStore) checkDump(up *Upload, store func(*memStream, *memReport, int)) error {
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
		return ErrForbidden // the report did not ask this client
	}
	if store != nil {
		store(s, rep, i)
	}
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
		if d, ok := rep.dumps[publicID]; ok && !d.gone.Load() {
			return d.data, nil
		}
	}
	return nil, ErrNotFound
}
