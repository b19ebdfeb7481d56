package api

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/zap"

	"github.com/goeventstream/eventstream/internal/protocol"
	"github.com/goeventstream/eventstream/internal/stream"
)

// Push (docs/protocol.md, "Push"): a GET of a sync path with a WebSocket
// upgrade opens a connection on which the server sends each tick as it is
// sealed, in the shape of a sync reply, and the client sends sync bodies.
//
// One loop per stream with connections on this replica reads the stream's
// new ticks from the store once per tick (Store.Read) and hands the same
// bytes to every connection; each connection writes on a goroutine of its
// own, so a slow reader delays nobody: what it has not sent yet coalesces
// into its next message, and a connection further behind than MaxLag is
// closed (it reconnects and catches up by sync).

// PushConfig configures push connections. A zero field takes its
// default (DefaultPushConfig).
type PushConfig struct {
	// MaxConnections caps the push connections of this server; past it an
	// upgrade is answered 503 server_full.
	MaxConnections int64
	// PingInterval is how often a connection is pinged, and its client's
	// presence refreshed in the store.
	PingInterval time.Duration
	// MaxLag is how far a connection may be behind the stream, in time:
	// one whose cursor is more than MaxLag of ticks behind the newest tick
	// read, or whose message has waited MaxLag to go out (the stream moved
	// on as long meanwhile), is closed with CloseTooSlow.
	MaxLag time.Duration
}

// DefaultPushConfig returns the defaults of the flags.
func DefaultPushConfig() PushConfig {
	return PushConfig{MaxConnections: 100_000, PingInterval: 5 * time.Second, MaxLag: 5 * time.Second}
}

// withDefaults returns c with each zero field set to its default.
func (c PushConfig) withDefaults() PushConfig {
	d := DefaultPushConfig()
	if c.MaxConnections == 0 {
		c.MaxConnections = d.MaxConnections
	}
	if c.PingInterval == 0 {
		c.PingInterval = d.PingInterval
	}
	if c.MaxLag == 0 {
		c.MaxLag = d.MaxLag
	}
	return c
}

// Validate reports the first invalid field, if any; a zero field is valid
// (it takes its default).
func (c PushConfig) Validate() error {
	switch {
	case c.MaxConnections < 0:
		return errors.New("push max connections must not be negative")
	case c.PingInterval < 0:
		return errors.New("push ping interval must not be negative")
	case c.MaxLag < 0:
		return errors.New("push max lag must not be negative")
	}
	return nil
}

// lagTicks is MaxLag in ticks of a stream of tickRate ticks a second.
func (c PushConfig) lagTicks(tickRate int) int64 {
	return int64(c.MaxLag.Seconds() * float64(max(tickRate, 1)))
}

// Close codes of push connections, beside the standard ones (1001 going
// away when the server shuts down).
const (
	// CloseTooSlow: the client read too slowly and fell more than MaxLag
	// behind; it reconnects, and catches up by sync.
	CloseTooSlow websocket.StatusCode = 4001
	// CloseStreamGone: the stream was deleted (it expired); a sync creates
	// it anew.
	CloseStreamGone websocket.StatusCode = 4002
)

// goingAway is the reason of the close that ends a push connection when
// the server shuts down.
const goingAway = "the server is shutting down; reconnect"

// pushWindow is how many of a stream's recent reads its loop keeps, so
// that a connection a little behind is served from memory.
const pushWindow = 64

// pongWait is how long a client has to answer a ping.
const pongWait = 10 * time.Second

// quietPush is the longest a connection goes without a push while ticks
// pass with no events.
const quietPush = 100 * time.Millisecond

// pusher holds the push connections of a Server.
type pusher struct {
	srv   *Server
	cfg   PushConfig
	conns atomic.Int64

	mu      sync.Mutex
	streams map[string]*pushStream
	closing bool
	all     sync.WaitGroup // every connection's handler
}

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
func (sl *pushSlice) result(events []byte) *stream.SyncResult {
	return &stream.SyncResult{T: sl.t, Epoch: sl.epoch, TickRate: sl.tickRate, Events: events,
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

type pushConn struct {
	ws *websocket.Conn
	nc net.Conn // ws's connection, for its write deadline
	// id is its client's public id in the epoch of its cursor, stamped on
	// every push: set by the upgrade's sync, and by the sync that moves it
	// to a new epoch (rejoin). Only c's serving goroutine uses it.
	id     string
	notify chan struct{} // cap 1: new slices
	maxLag time.Duration // PushConfig.MaxLag

	mu  sync.Mutex
	req stream.SyncRequest // the client: stream, private id, its cursor (the t sent last) and epoch
	// What the syncs of its messages asked of it, for its next push.
	snap, dump *int64
}

// ask keeps what a sync of c's asked for its next push, and wakes its writer.
func (c *pushConn) ask(res *stream.SyncResult) {
	if res.Snap == nil && res.Dump == nil {
		return
	}
	c.mu.Lock()
	if res.Snap != nil {
		c.snap = res.Snap
	}
	if res.Dump != nil {
		c.dump = res.Dump
	}
	c.mu.Unlock()
	select {
	case c.notify <- struct{}{}:
	default:
	}
}

// at returns a request of c's client at its cursor.
func (c *pushConn) at() stream.SyncRequest {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.req
}

func (p *pusher) upgrade(w http.ResponseWriter, r *http.Request) {
	req, err := p.srv.parseSync(r) // the same validation as a sync
	if err != nil {
		p.srv.writeError(w, r, err)
		return
	}
	// The handshake and a browser's origin are checked before the sync,
	// which would connect the client: a refused upgrade has no effect.
	if err := checkHandshake(w.Header(), r); err != nil {
		p.srv.writeError(w, r, err)
		return
	}
	if o := r.Header.Get("Origin"); o != "" && !p.srv.cors.allows(o) && !sameHost(o, r.Host) {
		p.srv.writeError(w, r, errorf(protocol.CodeBadOrigin,
			"origin %q may not open push connections (-cors-origins)", o))
		return
	}
	if p.conns.Add(1) > p.cfg.MaxConnections {
		p.conns.Add(-1)
		p.srv.writeError(w, r, errorf(protocol.CodeServerFull,
			"the server holds its maximum of push connections; poll, or try again"))
		return
	}
	p.mu.Lock()
	if p.closing {
		p.mu.Unlock()
		p.conns.Add(-1)
		p.srv.writeError(w, r, errorf(protocol.CodeServerBusy, "the server is shutting down"))
		return
	}
	p.all.Add(1)
	p.mu.Unlock()
	done := func() { p.conns.Add(-1); p.all.Done() }

	// The first reply is a sync: it makes the client connected and says
	// where it stands; then it is pushed like every later one. Its memory
	// is held until it is sent, as every push's (readHeld).
	if !p.srv.reserve(w, r, int64(p.srv.limits.MaxReplyBytes)) {
		done()
		return
	}
	mem := held{p.srv.inflight, int64(p.srv.limits.MaxReplyBytes)}
	res, err := p.srv.store.Sync(r.Context(), req)
	if err != nil {
		mem.release()
		done()
		p.srv.writeError(w, r, err)
		return
	}
	mem.trim(pushBytes(res))
	p.srv.observeSync(req.Stream, res)
	var nc net.Conn
	// The handshake and the origin are checked: Accept checks neither
	// again, and fails only if the connection cannot be taken over.
	ws, err := websocket.Accept(smallBuffers{w, &nc}, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		mem.release()
		done()
		return // Accept has answered
	}
	ws.SetReadLimit(p.srv.limits.MaxBodyBytes)
	c := &pushConn{ws: ws, nc: nc, id: res.PublicID, notify: make(chan struct{}, 1), maxLag: p.cfg.MaxLag,
		req: stream.SyncRequest{Stream: req.Stream, PrivateID: req.PrivateID}}
	// The connection lives on goroutines of its own, and the handler
	// returns: net/http then lets go of the request, its buffers and its
	// goroutine, which an idle connection would otherwise keep, and the
	// request's duration is the upgrade's, not the connection's.
	go func() {
		defer done()
		p.serve(c, res, mem)
	}()
}

// serve sends c its history from res, which holds mem, on, then its
// pushes until it ends.
func (p *pusher) serve(c *pushConn, res *stream.SyncResult, mem held) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	err := c.send(ctx, res)
	mem.release()
	for err == nil && res.More { // the history, page by page
		if res, mem, err = p.readHeld(ctx, c, p.readFor); err != nil {
			c.closeFor(ctx, err)
			return
		}
		err = c.send(ctx, res)
		mem.release()
	}
	if err != nil {
		c.ws.CloseNow()
		return
	}

	s, ok := p.join(c, res)
	if !ok { // the server began to shut down while c was sent its history
		c.ws.Close(websocket.StatusGoingAway, goingAway)
		return
	}
	defer p.leave(s, c)
	read := make(chan struct{})
	go func() { defer close(read); defer cancel(); p.read(ctx, c) }()
	p.write(ctx, s, c)
	cancel()
	<-read
}

// send writes res, of c's epoch or of the one c moved to, as one push
// message with c's public id, and moves c's cursor past it. The cursor
// moves before the write: the client may answer the push before the write
// returns, and its hash reports are checked against the cursor (a failed
// write ends the connection).
func (c *pushConn) send(ctx context.Context, res *stream.SyncResult) error {
	res.PublicID = c.id
	c.mu.Lock()
	c.req.LastKnownTick, c.req.Epoch = res.T, res.Epoch
	if res.Snap == c.snap {
		c.snap = nil
	}
	if res.Dump == c.dump {
		c.dump = nil
	}
	c.mu.Unlock()
	var headBuf [192]byte
	head := appendReplyHead(headBuf[:0], res)
	tail := `]}`
	if res.More {
		tail = `],"more":true}`
	}
	buf := replyBufs.Get().(*[]byte) // written before Write returns: reused
	defer putReplyBuf(buf)
	msg := append(append(append((*buf)[:0], head...), res.Events...), tail...)
	*buf = msg
	// A client that takes longer than MaxLag to take one message is too
	// slow: what it has not read fills the connection. The deadline is the
	// connection's, not a context's: a context a push cost a timer and two
	// registrations, a tenth of a push's CPU. The connection's end closes
	// it, which ends a write in progress too.
	_ = c.nc.SetWriteDeadline(time.Now().Add(c.maxLag))
	if err := c.ws.Write(context.WithoutCancel(ctx), websocket.MessageText, msg); err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			c.ws.CloseNow() // no close frame can get through it
		}
		return err
	}
	_ = c.nc.SetWriteDeadline(time.Time{}) // the other writes have contexts
	return nil
}

// readFor reads c's stream from c's cursor, for c alone; a reply of
// another epoch (the stream was created anew) is rejoin's instead.
func (p *pusher) readFor(ctx context.Context, c *pushConn) (*stream.SyncResult, error) {
	req := c.at()
	res, err := p.srv.store.Read(ctx, &req)
	if err == nil && res.Epoch != req.Epoch {
		return p.rejoin(ctx, c)
	}
	return res, err
}

// errNoMemory ends a push connection whose reply got no in-flight memory.
var errNoMemory = errors.New("no in-flight memory for a push")

// pushBytes is the in-flight memory a push of res holds until it is
// written: its events, and the message they are copied into (send).
func pushBytes(res *stream.SyncResult) int64 { return 2*int64(len(res.Events)) + 256 }

// readHeld calls read for c, holding a page of in-flight memory while it
// reads and what its reply holds after (pushBytes), to be released once
// the reply is sent; errNoMemory if the memory does not come within
// -max-inflight-wait.
func (p *pusher) readHeld(ctx context.Context, c *pushConn,
	read func(context.Context, *pushConn) (*stream.SyncResult, error)) (*stream.SyncResult, held, error) {
	mem, ok := p.srv.inflight.hold(ctx, int64(p.srv.limits.MaxReplyBytes))
	if !ok {
		return nil, held{}, errNoMemory
	}
	res, err := read(ctx, c)
	if err != nil {
		mem.release()
		return nil, held{}, err
	}
	mem.trim(pushBytes(res))
	return res, mem, nil
}

// closeFor closes c, whose push could not be made for err: 1013 try again
// later when the server had no memory for it (its client reconnects after
// a while), else 1011 (the store failed).
func (c *pushConn) closeFor(ctx context.Context, err error) {
	switch {
	case ctx.Err() != nil: // c is closing
	case errors.Is(err, errNoMemory):
		c.ws.Close(websocket.StatusTryAgainLater, "the server is busy; reconnect in a while")
	default:
		c.ws.Close(websocket.StatusInternalError, "the store failed")
	}
}

// rejoin answers c by a sync of its client when the stream was created
// anew since c's cursor (Redis lost it, or it expired and a client created
// it again): the sync connects the client in the new stream, and its
// reply, from _a on, says the client's public id there, which c's pushes
// carry from then on. The old epoch's asks for a snapshot or dump are moot.
func (p *pusher) rejoin(ctx context.Context, c *pushConn) (*stream.SyncResult, error) {
	req := c.at()
	res, err := p.srv.store.Sync(ctx, &req)
	if err != nil {
		return nil, err
	}
	p.srv.observeSync(req.Stream, res)
	c.id = res.PublicID
	c.mu.Lock()
	c.snap, c.dump = res.Snap, res.Dump
	c.mu.Unlock()
	return res, nil
}

// join adds c to its stream's loop, starting the loop if c is the first,
// or reports false once the pusher is closing: close has closed every
// connection that joined before, and waits for c too.
func (p *pusher) join(c *pushConn, last *stream.SyncResult) (*pushStream, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closing {
		return nil, false
	}
	name := c.at().Stream
	s := p.streams[name]
	if s == nil {
		ctx, cancel := context.WithCancel(context.Background())
		s = &pushStream{name: name, p: p, conns: map[*pushConn]struct{}{}, stop: cancel}
		p.streams[s.name] = s
		go s.loop(ctx, last.T, last.Epoch, last.TickRate)
	}
	s.mu.Lock()
	s.conns[c] = struct{}{}
	s.mu.Unlock()
	return s, true
}

// leave removes c, and stops the loop when it was the last.
func (p *pusher) leave(s *pushStream, c *pushConn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s.mu.Lock()
	delete(s.conns, c)
	empty := len(s.conns) == 0
	s.mu.Unlock()
	if empty && p.streams[s.name] == s {
		delete(p.streams, s.name)
		s.stop()
	}
}

// loop reads the stream's new ticks once a tick, for every connection.
func (s *pushStream) loop(ctx context.Context, from int64, epoch string, tickRate int) {
	tick := time.Second / time.Duration(max(tickRate, 1))
	// Read right after each tick is sealed, once a tick, where the reads
	// so far say ticks begin (tickPhase); at worst twice a tick. A read
	// that finds the same tick in progress sends nothing.
	prev := time.Now()
	phase := newTickPhase(tick, prev)
	t := time.NewTimer(time.Until(phase.next()))
	defer t.Stop()
	// An empty tick is told at least every quietPush: clients learn that
	// time moves on, in fewer messages.
	quiet := 0
	quietTicks := int(max(quietPush/tick, 1)) // counted in new ticks read
	req := &stream.SyncRequest{Stream: s.name, LastKnownTick: from, Epoch: epoch}
	var notify []*pushConn
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		start, read, advanced := time.Now(), false, false
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
			if len(s.window) > pushWindow {
				s.window = slices.Delete(s.window, 0, len(s.window)-pushWindow)
			}
			if quiet++; len(sl.events) == 0 && quiet < quietTicks && !more {
				s.mu.Unlock()
				continue
			}
			quiet = 0
			// The writers are woken once the window is theirs to read:
			// woken under the lock, a thousand would wait for it.
			notify = notify[:0]
			for c := range s.conns {
				notify = append(notify, c)
			}
			s.mu.Unlock()
			for _, c := range notify {
				select {
				case c.notify <- struct{}{}:
				default: // already notified: its next write takes everything
				}
			}
		}
		if read {
			phase.observe(prev, start, time.Now(), advanced)
			prev = start
		}
		t.Reset(time.Until(phase.next()))
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

// write sends c every slice past its cursor, as the loop reads them:
// from the window when it holds c's cursor, else by a read of its own (c
// joined, or fell behind the window).
func (p *pusher) write(ctx context.Context, s *pushStream, c *pushConn) {
	ping := time.NewTicker(p.cfg.PingInterval)
	defer ping.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ping.C:
			if !p.keepAlive(ctx, c) {
				return
			}
			continue
		case <-c.notify:
		}
		rejoined := false // once a wake: the loop may not have read c's new epoch yet
		for {
			req := c.at()
			res, newest, epoch := s.next(req)
			var mem held // what res holds, once it is read
			var err error
			switch {
			case epoch != req.Epoch && rejoined:
				res = nil
			case epoch != req.Epoch:
				rejoined = true
				if res, mem, err = p.readHeld(ctx, c, p.rejoin); err != nil {
					c.closeFor(ctx, err)
					return
				}
				if res.Epoch == req.Epoch && res.T == req.LastKnownTick && len(res.Events) == 0 {
					res = nil // c is ahead of the loop: nothing new
				}
			case newest-req.LastKnownTick > p.cfg.lagTicks(c.tickRate(s)):
				c.ws.Close(CloseTooSlow, "more than -ws-max-lag behind; reconnect")
				return
			case res == nil && newest > req.LastKnownTick:
				if res, mem, err = p.readHeld(ctx, c, p.readFor); err != nil {
					c.closeFor(ctx, err)
					return
				}
			}
			c.mu.Lock()
			snap, dump := c.snap, c.dump
			c.mu.Unlock()
			if res == nil && (snap != nil || dump != nil) {
				res = &stream.SyncResult{T: req.LastKnownTick, Epoch: req.Epoch, TickRate: c.tickRate(s)}
			}
			if res == nil {
				mem.release() // a rejoin that brought nothing
				break         // up to date
			}
			if mem.n == 0 { // the window's: the message it is copied into
				var ok bool
				if mem, ok = p.srv.inflight.hold(ctx, pushBytes(res)); !ok {
					c.closeFor(ctx, errNoMemory)
					return
				}
			}
			res.Snap, res.Dump = snap, dump
			err = c.send(ctx, res)
			mem.release()
			if err != nil {
				return
			}
		}
	}
}

// next returns what the window holds for a client at req's cursor, or
// nil, and the newest tick read and its epoch: a client of another epoch
// is served nothing from the window (it rejoins). With nothing read yet,
// they are req's.
func (s *pushStream) next(req stream.SyncRequest) (res *stream.SyncResult, newest int64, epoch string) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if len(s.window) == 0 {
		return nil, req.LastKnownTick, req.Epoch
	}
	last := s.window[len(s.window)-1]
	newest, epoch = last.t, last.epoch
	switch {
	case epoch != req.Epoch:
		return nil, newest, epoch
	case last.from <= req.LastKnownTick: // up to date, or one read behind: most clients
		if req.LastKnownTick >= last.t {
			return nil, newest, epoch
		}
		return last.result(eventsFrom(last.events, req.LastKnownTick)), newest, epoch
	}
	for i, sl := range s.window {
		if sl.epoch != req.Epoch || sl.from > req.LastKnownTick || req.LastKnownTick >= sl.t {
			continue
		}
		res := sl.result(eventsFrom(sl.events, req.LastKnownTick))
		// What follows is coalesced into the same message, a page at most.
		for _, more := range s.window[i+1:] {
			if more.epoch != res.Epoch || more.from != res.T || len(res.Events)+len(more.events) > s.p.srv.limits.MaxReplyBytes {
				break
			}
			if len(more.events) > 0 {
				if len(res.Events) > 0 {
					res.Events = append(append(slices.Clip(res.Events), ','), more.events...)
				} else {
					res.Events = more.events
				}
			}
			res.T, res.Checkpoint = more.t, more.ckpt
		}
		return res, newest, epoch
	}
	return nil, newest, epoch
}

// eventsFrom returns the events of a reply from tick from on. Each event
// starts with {"t":, which no body holds unescaped.
func eventsFrom(events []byte, from int64) []byte {
	for i := 0; i < len(events); {
		if j := i + len(`{"t":`); bytes.HasPrefix(events[i:], []byte(`{"t":`)) {
			k := j
			for k < len(events) && events[k] >= '0' && events[k] <= '9' {
				k++
			}
			if t, err := strconv.ParseInt(string(events[j:k]), 10, 64); err == nil && t >= from {
				return events[i:]
			}
		}
		n := bytes.Index(events[i+1:], []byte(`,{"t":`))
		if n < 0 {
			return nil
		}
		i += n + 2
	}
	return nil
}

func (c *pushConn) tickRate(s *pushStream) int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if n := len(s.window); n > 0 {
		return s.window[n-1].tickRate
	}
	return protocol.DefaultTickRate
}

// read applies each message of c as the body of a sync. Its reply's
// events are not sent: they come in the pushes, in order.
func (p *pusher) read(ctx context.Context, c *pushConn) {
	for {
		typ, r, err := c.ws.Reader(ctx)
		if err != nil {
			return
		}
		// A message holds its body and the reply of its sync, as a POST
		// does, from before its body is read until it is applied.
		mem, ok := p.srv.inflight.hold(ctx, p.srv.limits.MaxBodyBytes+int64(p.srv.limits.MaxReplyBytes))
		if !ok {
			if _, err := io.Copy(io.Discard, r); err != nil {
				return
			}
			p.sendError(ctx, c, errBusy(), "")
			continue
		}
		body, err := io.ReadAll(r)
		if err == nil {
			p.apply(ctx, c, typ, body)
		}
		mem.release()
		if err != nil {
			return
		}
	}
}

// apply applies one message of c, and acknowledges its batch or answers
// its error.
func (p *pusher) apply(ctx context.Context, c *pushConn, typ websocket.MessageType, body []byte) {
	req := c.at() // its cursor and epoch: the reply is small
	if typ != websocket.MessageText {
		p.sendError(ctx, c, errorf(protocol.CodeBadRequest, "%s", bodyShape), "")
		return
	}
	if err := p.srv.parseMessage(body, &req); err != nil {
		p.sendError(ctx, c, err, req.Batch)
		return
	}
	res, err := p.srv.store.Sync(ctx, &req)
	if err != nil {
		p.sendError(ctx, c, err, req.Batch)
		return
	}
	p.srv.observeSync(req.Stream, res)
	c.ask(res)
	if req.Batch != "" { // the client may forget it: it is applied
		ack := protocol.AppendString(append(make([]byte, 0, 16+len(req.Batch)), `{"batch":`...), req.Batch)
		_ = c.ws.Write(ctx, websocket.MessageText, append(ack, '}'))
	}
}

// parseMessage validates a push message, the body of a sync, into req at
// its connection's cursor. A message carries no last known tick: its hash
// reports are of ticks below the t of the last push its client read, which
// the cursor, the t of the last push sent, bounds from above. A report at
// or past the cursor is dropped, not refused (docs/protocol.md, "Push"):
// it comes from a client that had not read a push of a new epoch when it
// sent it, and the events beside it are applied.
func (s *Server) parseMessage(body []byte, req *stream.SyncRequest) error {
	cursor := req.LastKnownTick
	req.LastKnownTick = math.MaxInt64 // parseBody checks the reports' other rules
	err := s.parseBody(body, req)
	req.LastKnownTick = cursor
	req.Hashes = slices.DeleteFunc(req.Hashes, func(h protocol.HashReport) bool { return h.T >= cursor })
	return err
}

// sendError sends err to c as an error message, with the batch id of the
// message refused ("" for none, or one that could not be read).
func (p *pusher) sendError(ctx context.Context, c *pushConn, err error, batch string) {
	ae := toAPIError(err)
	p.srv.metrics.Rejected(ae.Code)
	body := ae.ErrorBody
	body.Batch = batch
	b := protocol.AppendError(nil, body)
	_ = c.ws.Write(ctx, websocket.MessageText, b)
}

// keepAlive pings c and refreshes its presence, every PingInterval. A
// client that answers no ping within pongWait is closed. It reports
// whether c is still open.
func (p *pusher) keepAlive(ctx context.Context, c *pushConn) bool {
	if ctx.Err() != nil {
		return false
	}
	p.mu.Lock()
	closing := p.closing
	p.mu.Unlock()
	if closing {
		return true // no ping into a close handshake
	}
	go func() { // the pong comes through the reader: not waited for here
		pctx, cancel := context.WithTimeout(ctx, pongWait)
		defer cancel()
		// Only a pong that did not come ends c: a ping that fails because c
		// is closing must not cut its close handshake short.
		if err := c.ws.Ping(pctx); errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			c.ws.CloseNow()
		}
	}()
	mem, ok := p.srv.inflight.hold(ctx, int64(p.srv.limits.MaxReplyBytes))
	if !ok {
		return true // the next ping tries again
	}
	defer mem.release()
	req := c.at() // an empty sync: heard from
	res, err := p.srv.store.Sync(ctx, &req)
	if err != nil {
		p.srv.log.Debug("push presence", zap.String("stream", req.Stream), zap.Error(err))
		return true
	}
	c.ask(res)
	return true
}

// close closes every push connection with going away and waits for them.
func (p *pusher) close() {
	p.mu.Lock()
	p.closing = true
	var all []*pushStream
	for _, s := range p.streams {
		all = append(all, s)
	}
	p.mu.Unlock()
	for _, s := range all {
		s.closeAll(websocket.StatusGoingAway, goingAway)
	}
	p.all.Wait()
}

// allows reports whether a browser at origin may call.
func (c cors) allows(origin string) bool { return c.any || slices.Contains(c.origins, origin) }

// sameHost reports whether origin is the host the request was sent to,
// which a WebSocket always allows.
func sameHost(origin, host string) bool {
	u, err := url.Parse(origin)
	return err == nil && strings.EqualFold(u.Host, host)
}

// checkHandshake refuses a request that is not a WebSocket handshake
// (RFC 6455, 4.2.1), with the status websocket.Accept would answer it but
// as JSON, and before anything happens to the stream. It sets the headers
// that say what is missing in h.
func checkHandshake(h http.Header, r *http.Request) error {
	switch {
	case r.ProtoMajor != 1 || r.ProtoMinor < 1,
		!headerHasToken(r.Header, "Connection", "upgrade"),
		!headerHasToken(r.Header, "Upgrade", "websocket"):
		h.Set("Upgrade", "websocket")
		return errorf(protocol.CodeUpgradeRequired,
			"a push connection is a WebSocket upgrade of HTTP/1.1, with Connection: Upgrade and Upgrade: websocket")
	case r.Header.Get("Sec-WebSocket-Version") != "13":
		h.Set("Sec-WebSocket-Version", "13")
		return errorf(protocol.CodeBadRequest, "a WebSocket upgrade must say Sec-WebSocket-Version: 13")
	}
	keys := r.Header.Values("Sec-WebSocket-Key")
	if len(keys) != 1 {
		return errorf(protocol.CodeBadRequest, "a WebSocket upgrade must carry one Sec-WebSocket-Key")
	}
	if key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(keys[0])); err != nil || len(key) != 16 {
		return errorf(protocol.CodeBadRequest, "Sec-WebSocket-Key must be 16 bytes in base64")
	}
	return nil
}

// headerHasToken reports whether a comma-separated header of h holds
// token, in any case.
func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}
