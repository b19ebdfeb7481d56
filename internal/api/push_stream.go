package api

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/goeventstream/eventstream/internal/clock"
	"github.com/goeventstream/eventstream/internal/protocol"
	"github.com/goeventstream/eventstream/internal/stream"
)

// A stream's loop (pushStream): it reads the stream's new ticks right
// after each is sealed, once for all its connections (loop), keeps the
// recent reads in a window, and serves each connection from it, what a
// connection has not been sent yet coalesced into one message (next).

// pushWindow is how many of a stream's recent reads its loop keeps at
// least, so that a connection a little behind is served from memory. It
// keeps up to twice as many, and drops the older half at once: dropping
// one a tick moved the whole window every tick.
const pushWindow = 64

// pushSlice is one read of a stream: its events of the ticks [from, t).
type pushSlice struct {
	epoch    string
	from, t  int64
	events   []byte
	tickRate int
	ckpt     int64
	base     *int64
}

// result is a push of sl with events (sl's, or their tail).
func (sl *pushSlice) result(events []byte) stream.SyncResult {
	return stream.SyncResult{T: sl.t, Epoch: sl.epoch, TickRate: sl.tickRate, Events: events,
		Checkpoint: sl.ckpt, Base: sl.base}
}

// pushStream is the loop of one stream.
type pushStream struct {
	name string
	p    *pusher

	mu     sync.RWMutex // the connections' writers read the window together
	conns  map[*pushConn]struct{}
	window []pushSlice // oldest first
	stop   context.CancelFunc
}

// loop reads the stream's new ticks once a tick, for every connection.
func (s *pushStream) loop(ctx context.Context, from int64, epoch string, tickRate int) {
	tick := time.Second / time.Duration(max(tickRate, 1))
	// Read right after each tick is sealed, once a tick, where the reads
	// so far say ticks begin (tickPhase); at worst twice a tick. A read
	// that finds the same tick in progress sends nothing. The first is at
	// once: the first connection was sent its reply some time ago.
	clk := s.p.srv.clock
	prev := clk.Now()
	phase := newTickPhase(tick, prev)
	t := clk.NewTimer(0)
	defer t.Stop()
	// An empty tick is told at least every QuietInterval: clients learn
	// that time moves on, in fewer messages.
	var quiet int64 // ticks read since the last push
	quietTicks := int64(max(s.p.cfg.QuietInterval/tick, 1))
	// A store that tells where a stream's newest event is, and when it
	// gains one (stream.Watcher), is read only when the stream has events
	// the last read did not return, or when a quiet push is due: after
	// such a read the loop sleeps through the ticks between (the phase
	// moving on a tick for each), and an event wakes it to read once its
	// tick has ended. While it sleeps, phase.next() is where tick
	// req.LastKnownTick+1 begins, and the timer is set ahead ticks past it.
	var ahead int64
	var changed <-chan struct{}
	req := &stream.SyncRequest{Stream: s.name, LastKnownTick: from, Epoch: epoch}
	var offer []*pushConn
	for {
		select {
		case <-ctx.Done():
			return
		case <-changed:
			changed = nil
			t.Stop()
			if ep, newest, _, ok := stream.WatchOf(s.p.srv.store, s.name); ok && ep == req.Epoch {
				ahead = min(ahead, max(newest-req.LastKnownTick, 0))
			} else {
				ahead = 0 // deleted, or created anew: read now
			}
			s.wake(t, phase.next().Add(time.Duration(ahead)*tick))
			continue
		case <-t.C():
		}
		changed = nil
		for ; ahead > 0; ahead-- { // the ticks slept through
			phase.skip()
		}
		start, read, advanced := clk.Now(), false, false
		for more := true; more; {
			res, err := s.p.srv.store.Read(ctx, req)
			if err != nil {
				if errors.Is(err, stream.ErrNotFound) {
					s.closeAll(CloseStreamGone, "the stream expired; sync to create it anew")
				}
				break // the next tick tries again
			}
			read, more = true, res.More
			if res.T == req.LastKnownTick && res.Epoch == req.Epoch && len(res.Events) == 0 {
				break // the same tick in progress
			}
			advanced = true
			sl := pushSlice{epoch: res.Epoch, from: req.LastKnownTick, t: res.T, events: append([]byte(nil), res.Events...),
				tickRate: res.TickRate, ckpt: res.Checkpoint, base: res.Base}
			if res.Epoch != req.Epoch {
				sl.from = 0 // a new incarnation: read from its start
			}
			req.LastKnownTick, req.Epoch = res.T, res.Epoch
			s.mu.Lock()
			s.window = append(s.window, sl)
			if len(s.window) > 2*pushWindow {
				s.window = slices.Delete(s.window, 0, len(s.window)-pushWindow)
			}
			if quiet += sl.t - sl.from; len(sl.events) == 0 && quiet < quietTicks && !more {
				s.mu.Unlock()
				continue
			}
			quiet = 0
			// The connections are sent the window once it is theirs to
			// read: under the lock, a thousand writes would wait for it.
			offer = offer[:0]
			for c := range s.conns {
				offer = append(offer, c)
			}
			s.mu.Unlock()
			s.offer(offer)
		}
		if !read { // the store failed: the next tick tries again
			t.Reset(tick)
			continue
		}
		phase.observe(prev, start, clk.Now(), advanced)
		prev = start
		if ep, newest, ch, ok := stream.WatchOf(s.p.srv.store, s.name); ok && ep == req.Epoch &&
			newest < req.LastKnownTick && phase.learned() {
			// Every event is read: sleep until the quiet push is due, or
			// an event comes.
			ahead, changed = max(quietTicks-quiet-1, 0), ch
		}
		s.wake(t, phase.next().Add(time.Duration(ahead)*tick))
	}
}

// pushFanout is how many connections of a stream one goroutine is sent a
// tick on: a stream of more is written on several cores.
const pushFanout = 64

// offer sends conns what the window holds for them (pushConn.offer): the
// loop itself the first pushFanout, and a goroutine each further
// pushFanout, and returns once all are sent.
func (s *pushStream) offer(conns []*pushConn) {
	var others *sync.WaitGroup
	if len(conns) > pushFanout {
		others = s.fanOut(conns[pushFanout:])
	}
	for _, c := range conns[:min(len(conns), pushFanout)] {
		c.offer(s)
	}
	if others != nil {
		others.Wait()
	}
}

// fanOut offers the window to conns, pushFanout by pushFanout, each on a
// goroutine of its own, and returns what waits for them all.
func (s *pushStream) fanOut(conns []*pushConn) *sync.WaitGroup {
	wg := new(sync.WaitGroup)
	for part := range slices.Chunk(conns, pushFanout) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, c := range part {
				c.offer(s)
			}
		}()
	}
	return wg
}

// wake sets t to fire at at, on the loop's clock: at once if at has
// passed, even while the clock moves during the call.
func (s *pushStream) wake(t clock.Timer, at time.Time) {
	clk := s.p.srv.clock
	for {
		d := at.Sub(clk.Now())
		t.Reset(d)
		if d <= 0 || clk.Now().Before(at) {
			return
		}
		t.Stop() // the clock passed at between the two looks: fire now
	}
}

// closeAll closes every connection of the stream.
func (s *pushStream) closeAll(code websocket.StatusCode, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		go c.ws.Close(code, reason)
	}
}

// next sets *res to what the window holds for a client at req's cursor,
// and reports whether it holds anything, and the newest tick read and its
// epoch: a client of another epoch is served nothing from the window (it
// rejoins). With nothing read yet, they are req's.
func (s *pushStream) next(req stream.SyncRequest, res *stream.SyncResult) (found bool, newest int64, epoch string) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if len(s.window) == 0 {
		return false, req.LastKnownTick, req.Epoch
	}
	last := s.window[len(s.window)-1]
	newest, epoch = last.t, last.epoch
	switch {
	case epoch != req.Epoch:
		return false, newest, epoch
	case last.from <= req.LastKnownTick: // up to date, or one read behind: most clients
		if req.LastKnownTick >= last.t {
			return false, newest, epoch
		}
		*res = last.result(stream.EventsFrom(last.events, req.LastKnownTick))
		return true, newest, epoch
	}
	for i, sl := range s.window {
		if sl.epoch != req.Epoch || sl.from > req.LastKnownTick || req.LastKnownTick >= sl.t {
			continue
		}
		*res = sl.result(stream.EventsFrom(sl.events, req.LastKnownTick))
		// What follows is coalesced into the same message, a page at most:
		// the reads it takes are counted first, then their events copied
		// once, unless one read alone has any (the window's reads are
		// never appended to).
		end, size, joins := i+1, len(res.Events), 0
		for _, more := range s.window[i+1:] {
			if more.epoch != res.Epoch || more.from != s.window[end-1].t || size+len(more.events) > s.p.srv.limits.MaxReplyBytes {
				break
			}
			if len(more.events) > 0 && size > 0 {
				size++ // a comma
				joins++
			}
			size += len(more.events)
			end++
		}
		if joins > 0 {
			res.Events = append(make([]byte, 0, size), res.Events...)
		}
		for _, more := range s.window[i+1 : end] {
			switch {
			case len(more.events) == 0:
			case joins == 0:
				res.Events = more.events
			case len(res.Events) > 0:
				res.Events = append(append(res.Events, ','), more.events...)
			default:
				res.Events = append(res.Events, more.events...)
			}
			res.T, res.Checkpoint = more.t, more.ckpt
		}
		return true, newest, epoch
	}
	return false, newest, epoch
}

// tickRate is the stream's ticks per second, as last read.
func (s *pushStream) tickRate() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if n := len(s.window); n > 0 {
		return s.window[n-1].tickRate
	}
	return protocol.DefaultTickRate
}
