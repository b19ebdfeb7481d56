package stream

import (
	"context"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/goeventstream/eventstream/internal/clock"
	"github.com/goeventstream/eventstream/internal/protocol"
)

const serverOrigin = protocol.ServerOrigin

// MemoryStore keeps streams in the memory of one process. It is the
// embedded default and the reference for the protocol's behaviour.
//
// Limits: it serves one process only (two replicas behind a load balancer
// would each invent their own version of a stream), and every stream is
// lost when the process exits.
//
// Each stream has its own mutex; the map of streams is locked only to find,
// create or delete a stream. The lock order is: the map, then a stream,
// then the deadline queue.
type MemoryStore struct {
	cfg   Config
	clock clock.Clock

	mu      sync.RWMutex
	streams map[string]*memStream

	deadlines deadlineQueue
	budget    memBudget
}

var _ Store = (*MemoryStore)(nil)

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore(cfg Config) (*MemoryStore, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	clk := cfg.Clock
	if clk == nil {
		clk = clock.Real()
	}
	return &MemoryStore{cfg: cfg, clock: clk, streams: make(map[string]*memStream)}, nil
}

// Sync implements Store.
func (m *MemoryStore) Sync(_ context.Context, req *SyncRequest) (*SyncResult, error) {
	if err := m.cfg.checkReports(req.Hashes); err != nil {
		return nil, err
	}
	for {
		m.mu.RLock()
		s := m.streams[req.Stream]
		m.mu.RUnlock()
		if s == nil {
			res, err := m.create(req)
			if res == nil && err == nil {
				continue // another request created the stream first
			}
			return res, err
		}
		s.mu.Lock()
		if s.deleted {
			s.mu.Unlock()
			continue // expired since we found it; the next lookup creates a new one
		}
		res, err := s.sync(m, m.clock.Now(), req)
		s.mu.Unlock()
		return res, err
	}
}

// create makes the stream of req and applies req to it. It returns nil and
// no error when the stream already exists.
func (m *MemoryStore) create(req *SyncRequest) (*SyncResult, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.streams[req.Stream] != nil {
		return nil, nil
	}
	if len(m.streams) >= m.cfg.MaxStreams {
		return nil, ErrServerFull
	}
	now := m.clock.Now()
	s := &memStream{
		name:      strings.Clone(req.Stream), // not the request's memory
		epoch:     uuid.NewString(),
		createdMs: now.UnixMilli(),
		tickRate:  m.cfg.TickRate,
		budget:    &m.budget,
		clients:   make(map[string]*memClient),
		byPub:     make(map[string]*memClient),
		ck:        memCheckpoints{want: -1, compactedTo: -1, due: noTick},
		// A new stream's buckets are full.
		byteTokens: m.cfg.streamByteBurst(), joinTokens: m.cfg.joinBurst(), bucketsAt: now.UnixMilli(),
	}
	s.append(0, protocol.TypeReset, protocol.AppendString(nil, s.epoch), serverOrigin)

	// The stream is not shared yet, but its clients are about to be put in
	// the deadline queue, from where a Sweep may reach it.
	s.mu.Lock()
	defer s.mu.Unlock()
	res, err := s.sync(m, now, req)
	if err != nil {
		return nil, err
	}
	res.Created = true
	m.streams[s.name] = s
	return res, nil
}

// Sweep implements Store.
func (m *MemoryStore) Sweep(_ context.Context) (SweepResult, error) {
	var res SweepResult
	now := m.clock.Now()
	for _, d := range m.deadlines.popDue(now) {
		if d.client != nil {
			m.sweepClient(d.stream, d.client, now, &res)
		} else {
			m.sweepStream(d.stream, now, &res)
		}
	}
	return res, nil
}

func (m *MemoryStore) sweepClient(s *memStream, c *memClient, now time.Time, res *SweepResult) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c.queued = false
	if s.deleted || !c.connected {
		return
	}
	if deadline := c.lastSeen.Add(m.cfg.ClientTimeout); deadline.After(now) {
		m.deadlines.push(deadline, s, c)
		c.queued = true
		return
	}
	t := s.tickAt(now)
	s.lastT = t
	s.append(t, protocol.TypeDisconnect, protocol.AppendString(nil, c.publicID), serverOrigin)
	c.connected, c.left = false, t
	s.connected--
	res.Disconnected = append(res.Disconnected, Disconnect{Stream: s.name, PublicID: c.publicID, T: t})
	if s.connected == 0 {
		s.emptySince = now
		if !s.expiryQueued {
			m.deadlines.push(now.Add(m.cfg.StreamTTL), s, nil)
			s.expiryQueued = true
		}
	}
}

func (m *MemoryStore) sweepStream(s *memStream, now time.Time, res *SweepResult) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expiryQueued = false
	if s.deleted || s.connected > 0 {
		return
	}
	if deadline := s.emptySince.Add(m.cfg.StreamTTL); deadline.After(now) {
		m.deadlines.push(deadline, s, nil)
		s.expiryQueued = true
		return
	}
	s.deleted = true
	if s.changed != nil { // its watchers read, and find it gone
		close(s.changed)
		s.changed = nil
	}
	m.budget.forgetStream(s)
	delete(m.streams, s.name)
	res.Expired = append(res.Expired, s.name)
}

// Stats implements Store.
func (m *MemoryStore) Stats(_ context.Context, limit int) (Stats, error) {
	m.mu.RLock()
	all := make([]*memStream, 0, len(m.streams))
	for _, s := range m.streams {
		all = append(all, s)
	}
	m.mu.RUnlock()

	now := m.clock.Now()
	st := Stats{Streams: len(all), PerStream: make([]StreamStats, 0, len(all)), CheckpointBytes: m.budget.held.Load()}
	for _, s := range all {
		s.mu.Lock()
		ss := StreamStats{Stream: s.name, T: s.tickAt(now), Clients: s.connected,
			Events: int64(len(s.index)), Bytes: s.bytes()}
		s.mu.Unlock()
		st.Clients += ss.Clients
		st.PerStream = append(st.PerStream, ss)
	}
	st.rank(limit)
	return st, nil
}

// Ping implements Store; memory is always available.
func (m *MemoryStore) Ping(context.Context) error { return nil }

// memStream is one stream. All fields but name, epoch, createdMs and
// tickRate are guarded by mu.
type memStream struct {
	name      string
	epoch     string
	createdMs int64 // Unix milliseconds
	tickRate  int

	mu    sync.Mutex
	lastT int64
	// log holds the retained events encoded as JSON, each preceded by a
	// comma; index[i] says where event i ends and its tick. Both grow at
	// the end and lose their start to compaction; index is in tick order,
	// so a reply is one binary search and one copy of bytes encoded once,
	// at append time. Ends count from the stream's first byte: the
	// compacted bytes, base of them, come before log[0].
	log   []byte
	index []eventRef
	base  int64

	ck     memCheckpoints
	budget *memBudget // the store's

	clients   map[string]*memClient // by private id
	byPub     map[string]*memClient // by public id
	nextID    int
	connected int
	lastJoin  int64 // the tick of the latest "_c"
	// The stream's buckets (ratelimit.go), as of bucketsAt (ms).
	byteTokens, joinTokens float64
	bucketsAt              int64
	emptySince             time.Time
	expiryQueued           bool
	deleted                bool

	// newest is the tick of the newest event (Watch); changed, if not nil,
	// is closed when the next event is added or the stream is deleted.
	newest  atomic.Int64
	changed chan struct{}
}

type eventRef struct {
	t   int64
	end int64
}

type memClient struct {
	publicID  string
	lastSeen  time.Time
	connected bool
	joined    int64 // the tick of its latest "_c" (Config.voter)
	left      int64 // the tick of its latest "_d" (forgetLess)
	queued    bool
	batches   *batchRing
	// The client's fair-use buckets (ratelimit.go), as of refilled (ms).
	syncTokens, eventTokens float64
	refilled                int64
	// The checkpoint whose desync dump the client owes, when dumpOwed; it
	// is asked for it from tick dumpAskAt.
	dumpAsk, dumpAskAt int64
	dumpOwed           bool
}

// batchRing remembers the last protocol.BatchMemory batch ids of a client.
type batchRing struct {
	ids  [protocol.BatchMemory]string
	next int
}

func (r *batchRing) contains(id string) bool {
	return r != nil && slices.Contains(r.ids[:], id)
}

func (r *batchRing) add(id string) {
	r.ids[r.next] = id
	r.next = (r.next + 1) % len(r.ids)
}

// tickAt returns the stream's tick in progress at now (see tickAt).
func (s *memStream) tickAt(now time.Time) int64 {
	return tickAt(s.createdMs, now.UnixMilli(), s.tickRate, s.lastT)
}

func (s *memStream) append(t int64, typ string, body []byte, origin string) {
	s.newest.Store(t)
	if s.changed != nil {
		close(s.changed)
		s.changed = nil
	}
	s.log = appendEvent(s.log, t, typ, origin, body)
	s.index = append(s.index, eventRef{t: t, end: s.base + int64(len(s.log))})
	s.ck.sinceSnap++
}

// drop drops the first n events: compaction.
func (s *memStream) drop(n int) {
	if n == 0 {
		return
	}
	cut := s.index[n-1].end
	s.log = s.log[cut-s.base:]
	s.index = s.index[n:]
	s.base = cut
}

// forgettable returns, when look, the private id and the client the
// stream forgets first (forgetLess) if a new id takes its place, or nil
// when every client is connected. Mirrored in the admission part of
// lua/sync.lua.
func (s *memStream) forgettable(look bool) (string, *memClient) {
	if !look {
		return "", nil
	}
	var priv string
	var first *memClient
	for p, c := range s.clients {
		if !c.connected && (first == nil || forgetLess(c.left, c.publicID, first.left, first.publicID)) {
			priv, first = p, c
		}
	}
	return priv, first
}

// sync applies req at now. s.mu must be held. Every check comes before the
// first change, so a request that fails changes nothing.
func (s *memStream) sync(m *MemoryStore, now time.Time, req *SyncRequest) (*SyncResult, error) {
	if req.misdirected(s.epoch) { // and a stream being created has a new epoch: it is not kept
		return nil, ErrEpochMismatch
	}
	t := s.tickAt(now)
	c := s.clients[req.PrivateID]
	if c == nil && req.KnownOnly {
		return nil, ErrNewClient
	}
	connect := c == nil || !c.connected
	forgetPriv, forgetC := s.forgettable(c == nil && len(s.clients) >= knownPerSlot*m.cfg.MaxClientsPerStream)
	forget, err := m.cfg.admit(c == nil, connect, forgetC != nil, len(s.clients), s.connected)
	if err != nil {
		return nil, err
	}
	repeat := req.Batch != "" && c != nil && c.batches.contains(req.Batch)
	nowMs := now.UnixMilli()
	syncs, events := m.cfg.syncBurst(), float64(m.cfg.EventBurst) // a new client's are full
	if c != nil {
		syncs = refill(c.syncTokens, c.refilled, nowMs, m.cfg.MaxSyncsPerSecond, m.cfg.syncBurst())
		events = refill(c.eventTokens, c.refilled, nowMs, m.cfg.MaxEventsPerSecond, float64(m.cfg.EventBurst))
	}
	posted := len(req.Events)
	if repeat {
		posted = 0
	}
	if err := m.cfg.rateLimited(syncs, events, posted); err != nil {
		return nil, err
	}
	n, size := 0, int64(0)  // the events and bytes the request would append
	postedBytes := int64(0) // of them, the client's events'
	var pub string          // the client's public id, when the request appends
	if connect || (!repeat && len(req.Events) > 0) {
		pub = strconv.Itoa(s.nextID + 1)
		if c != nil {
			pub = c.publicID
		}
	}
	if connect {
		n, size = 1, int64(eventLen(t, protocol.TypeConnect, serverOrigin, protocol.AppendString(nil, pub)))
	}
	if !repeat {
		for _, e := range req.Events {
			n++
			postedBytes += int64(eventLen(t, e.Type, pub, e.Body))
		}
		size += postedBytes
	}
	streamBytes := refill(s.byteTokens, s.bucketsAt, nowMs, m.cfg.MaxStreamBytesPerSecond, m.cfg.streamByteBurst())
	joins := refill(s.joinTokens, s.bucketsAt, nowMs, m.cfg.MaxJoinsPerSecond, m.cfg.joinBurst())
	if err := m.cfg.streamLimited(streamBytes, joins, postedBytes, c == nil); err != nil {
		return nil, err
	}
	compacted := s.compact(&m.cfg, t)
	// A request that appends nothing is always served: a stream past its
	// caps (by the disconnects a sweep appends) can still be read.
	switch {
	case n > 0 && len(s.index)+n > m.cfg.MaxEventsPerStream:
		return nil, ErrEventCap
	case n > 0 && s.bytes()+size > m.cfg.MaxStreamBytes:
		return nil, ErrByteCap
	case n > 0 && s.tickBytes(t)+size+int64(n) > int64(m.cfg.PageBytes)+1:
		return nil, ErrTickFull
	}

	s.lastT = t
	s.byteTokens = spend(streamBytes, float64(postedBytes), m.cfg.MaxStreamBytesPerSecond)
	s.joinTokens, s.bucketsAt = joins, nowMs
	if c == nil {
		s.joinTokens = spend(joins, 1, m.cfg.MaxJoinsPerSecond)
		if forget {
			delete(s.clients, forgetPriv)
			delete(s.byPub, forgetC.publicID)
		}
		s.nextID++
		c = &memClient{publicID: pub}
		s.clients[strings.Clone(req.PrivateID)] = c
		s.byPub[pub] = c
	}
	c.lastSeen = now
	c.syncTokens = spend(syncs, 1, m.cfg.MaxSyncsPerSecond)
	c.eventTokens = spend(events, float64(posted), m.cfg.MaxEventsPerSecond)
	c.refilled = nowMs
	if connect {
		c.connected, c.joined = true, t
		s.connected++
		s.lastJoin = t
		s.append(t, protocol.TypeConnect, protocol.AppendString(nil, c.publicID), serverOrigin)
		if !c.queued {
			m.deadlines.push(now.Add(m.cfg.ClientTimeout), s, c)
			c.queued = true
		}
	}
	res := &SyncResult{PublicID: c.publicID, Epoch: s.epoch, TickRate: s.tickRate, Connected: connect,
		Checkpoint: m.cfg.CheckpointInterval, Compacted: compacted}
	if !repeat {
		for _, e := range req.Events {
			s.append(t, e.Type, e.Body, c.publicID)
		}
		res.Appended = len(req.Events)
		if req.Batch != "" {
			if c.batches == nil {
				c.batches = new(batchRing)
			}
			c.batches.add(req.Batch)
		}
	}

	if m.cfg.CheckpointInterval > 0 {
		s.checkpoint(&m.cfg, t, c, req, res)
	}

	s.reply(&m.cfg, t, req, res)
	return res, nil
}

// reply sets the events of res: those with req.LastKnownTick <= tick < t,
// a page at most (docs/protocol.md, "Ticks", 4 to 6). s.mu must be held.
func (s *memStream) reply(cfg *Config, t int64, req *SyncRequest, res *SyncResult) {
	from, base, compacted := s.replyStart(req.LastKnownTick, req.Epoch, t)
	if compacted {
		b := base // not base, whose address would move it to the heap on every sync
		res.Base = &b
	}
	lo, hi := s.search(from, 0), s.search(t, 0)
	end, more := s.page(lo, hi, cfg.PageEvents, cfg.PageBytes)
	res.T, res.More = t, more
	if more {
		res.T = s.index[end].t
	}
	if end > lo {
		res.Events = append(req.Buf[:0], s.log[s.start(lo)+1-s.base:s.index[end-1].end-s.base]...)
	}
}

// replyStart returns the first tick of a reply at tick t to a client that
// has seen the ticks below known of epoch ("" when it does not say): 0
// when the client is behind a reset (ahead of t, or of another epoch), so
// that it is sent the whole stream; and when the ticks it asks for are
// compacted, the tick after the snapshot's, base, which the reply names.
// Mirrored in reply_start (lua/prelude.lua).
func (s *memStream) replyStart(known int64, epoch string, t int64) (from, base int64, compacted bool) {
	from = known
	if from > t || (epoch != "" && epoch != s.epoch) {
		from = 0
	}
	if s.ck.compactedTo >= 0 && from <= s.ck.compactedTo {
		return s.ck.snap.T + 1, s.ck.snap.T, true
	}
	return from, 0, false
}

// Watch implements Watcher.
func (m *MemoryStore) Watch(stream string) (epoch string, newest int64, changed <-chan struct{}, ok bool) {
	s := m.lockStream(stream)
	if s == nil {
		return "", 0, nil, true
	}
	defer s.mu.Unlock()
	if s.changed == nil {
		s.changed = make(chan struct{})
	}
	return s.epoch, s.newest.Load(), s.changed, true
}

// Read implements Store.
func (m *MemoryStore) Read(_ context.Context, req *SyncRequest) (*SyncResult, error) {
	s := m.lockStream(req.Stream)
	if s == nil {
		return nil, ErrNotFound
	}
	defer s.mu.Unlock()
	res := &SyncResult{Epoch: s.epoch, TickRate: s.tickRate, Checkpoint: m.cfg.CheckpointInterval}
	t := s.tickAt(m.clock.Now())
	s.lastT = t // issued: a clock that steps back cannot stamp below it
	s.reply(&m.cfg, t, req, res)
	return res, nil
}

// start returns where event i starts, at its comma, counting from the
// stream's first byte (log[0] is at base).
func (s *memStream) start(i int) int64 {
	if i == 0 {
		return s.base
	}
	return s.index[i-1].end
}

// bytes returns the size of the stream's events, without the commas
// between them.
func (s *memStream) bytes() int64 { return int64(len(s.log) - len(s.index)) }

// tickBytes returns the bytes of the events of tick t, the tick in
// progress, each with its comma: the last events of the log.
func (s *memStream) tickBytes(t int64) int64 {
	return s.base + int64(len(s.log)) - s.start(s.search(t, 0))
}

// search returns the index of the first event at or after tick t, looking
// from index i on.
func (s *memStream) search(t int64, i int) int {
	return i + sort.Search(len(s.index)-i, func(j int) bool { return s.index[i+j].t >= t })
}

// page cuts the events [lo, hi) to at most limit events and limitBytes
// bytes (as in a reply: commas between events) at a tick boundary, and
// returns the end of the page and whether events were left out. A first
// tick larger than the limits is sent whole. Mirrored in read_page
// (lua/prelude.lua).
func (s *memStream) page(lo, hi, limit, limitBytes int) (end int, more bool) {
	start := s.start(lo) + 1 // the first event, after its comma
	// The first event that does not fit: by count, or by bytes.
	over := min(hi, lo+limit)
	over = lo + sort.Search(over-lo, func(j int) bool { return s.index[lo+j].end-start > int64(limitBytes) })
	if over == hi {
		return hi, false
	}
	cut := s.index[over].t // the tick that does not fit
	if cut == s.index[lo].t {
		end = min(s.search(cut+1, lo), hi)
	} else {
		end = s.search(cut, lo)
	}
	return end, end < hi
}
