package api

import (
	"context"
	"errors"
	"io"
	"math"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/zap"

	"github.com/goeventstream/eventstream/internal/auth"
	"github.com/goeventstream/eventstream/internal/protocol"
	"github.com/goeventstream/eventstream/internal/stream"
)

// A push connection (pushConn): its writer sends its stream's slices past
// its cursor (send, write), reading for itself when the window does not
// hold them, and pings it and refreshes its client's presence (keepAlive);
// its reader applies each message as a sync (read, apply). The in-flight
// memory each holds, and how each failure closes it, are here too.

// pushConn is one push connection; its serving goroutine writes, another
// reads.
type pushConn struct {
	p    *pusher
	ws   *websocket.Conn
	wire *pushWire // ws's connection
	ctx  context.Context
	// id is its client's public id in the epoch of its cursor, stamped on
	// every push: set by the upgrade's sync, and by the sync that moves it
	// to a new epoch (rejoin). Only c's serving goroutine uses it.
	id        string
	spectator bool          // reads only: never synced, never present (spectate.go)
	src       netip.Addr    // its upgrade's source address (sourceOf): its renewals count against its limits
	notify    chan struct{} // cap 1: new slices

	// wmu is held while c is sent what it is owed (catchUp): by its
	// writer, or by its stream's loop (offer); and scratch is the push the
	// window serves c then.
	wmu     sync.Mutex
	scratch stream.SyncResult

	mu   sync.Mutex
	auth *auth.Grant        // its token's, renewed by its messages; nil with auth off or on an open stream
	req  stream.SyncRequest // the client: stream, private id, its cursor (the t sent last) and epoch
	// What the syncs of its messages asked of it, for its next push.
	snap, dump *int64
	// heard is when a message of its client was last applied (Unix ns on
	// the server's clock): a sync, so its client was heard from, and its
	// presence needs no refresh (keepAlive).
	heard atomic.Int64
	// pinging is set while a ping waits for its pong (keepAlive): one at
	// a time.
	pinging atomic.Bool
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

// send writes res, of c's epoch or of the one c moved to, as one push
// message with c's public id, and moves c's cursor past it. The cursor
// moves before the write: the client may answer the push before the write
// returns, and its hash reports are checked against the cursor (a failed
// write ends the connection). mem holds res and the message; what of it
// the socket does not take at once stays held, by c's queue.
func (c *pushConn) send(res *stream.SyncResult, mem *held) error {
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
	buf := messageBuf(len(head) + len(res.Events) + len(tail))
	*buf = append(append(append(*buf, head...), res.Events...), tail...)
	return c.writeText(buf, mem)
}

// writeText writes the message in buf (messageBuf) to c as a text
// message, and takes buf. A write never waits for the client (pushWire): a
// client that takes longer than MaxLag to take what is queued for it is
// cut, and so is one whose queue outgrows its bounds. What is queued of
// the message takes over memory mem holds (nil: none).
func (c *pushConn) writeText(buf *[]byte, mem *held) error {
	err := c.wire.writeText(buf, mem)
	if err != nil && !errors.Is(err, errCloseSent) {
		c.ws.CloseNow() // maybe broken mid-frame: no close frame can follow
	}
	return err
}

// write sends c every slice past its cursor, as the loop reads them, when
// the loop did not (offer): from the window when it holds c's cursor,
// else by a read of its own (c joined, or fell behind the window).
func (c *pushConn) write(ctx context.Context, s *pushStream) {
	ping := c.p.srv.clock.NewTicker(c.p.cfg.PingInterval)
	defer ping.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case at := <-ping.C():
			if !c.keepAlive(ctx, at) {
				return
			}
			continue
		case <-c.notify:
		}
		c.wmu.Lock()
		open, _ := c.catchUp(ctx, s, true)
		c.wmu.Unlock()
		if !open {
			return
		}
	}
}

// offer sends c what the window holds past its cursor, from the stream's
// loop, unless c's writer is at it, or c needs more than the window and a
// write (a read of the store, memory to wait for, a close): then c's
// writer is woken for it.
func (c *pushConn) offer(s *pushStream) {
	if c.wire.nonBlocking() && c.wmu.TryLock() {
		_, handOff := c.catchUp(c.ctx, s, false)
		c.wmu.Unlock()
		if !handOff {
			return
		}
	}
	select {
	case c.notify <- struct{}{}:
	default: // already woken: its next catchUp takes everything
	}
}

// catchUp sends c what it is owed, message after message, until it is up
// to date, and reports whether c is still open. Its stream's loop calls it
// with mayWait false: then it stops before anything that would wait (a
// read of the store, in-flight memory that is not free, closing c, a
// client that has not taken the last message yet) and reports handOff,
// for c's writer to do. c.wmu is held.
func (c *pushConn) catchUp(ctx context.Context, s *pushStream, mayWait bool) (open, handOff bool) {
	rejoined := false // once a call: the loop may not have read c's new epoch yet
	for {
		// One message at a time past what the socket takes: while the
		// client has not taken the last, what follows coalesces in the
		// window, for c's writer to send once it has.
		if mayWait {
			if c.wire.settle(ctx) != nil {
				return false, false // cut, or closing: build nothing more for it
			}
		} else if c.wire.backlogged() {
			return true, true
		}
		req := c.at()
		var res *stream.SyncResult
		found, newest, epoch := s.next(req, &c.scratch)
		if found {
			res = &c.scratch
		}
		var mem held // what res holds, once it is read
		var err error
		switch {
		case epoch != req.Epoch && rejoined:
			res = nil
		case !mayWait && (epoch != req.Epoch || newest-req.LastKnownTick > c.p.cfg.lagTicks(s.tickRate()) ||
			res == nil && newest > req.LastKnownTick):
			return true, true
		case epoch != req.Epoch:
			rejoined = true
			if res, mem, err = c.readHeld(ctx, c.rejoin); err != nil {
				c.closeFor(ctx, err)
				return false, false
			}
			if res.Epoch == req.Epoch && res.T == req.LastKnownTick && len(res.Events) == 0 {
				res = nil // c is ahead of the loop: nothing new
			}
		case newest-req.LastKnownTick > c.p.cfg.lagTicks(s.tickRate()):
			c.ws.Close(CloseTooSlow, "more than -ws-max-lag behind; reconnect")
			return false, false
		case res == nil && newest > req.LastKnownTick:
			if res, mem, err = c.readHeld(ctx, c.readFor); err != nil {
				c.closeFor(ctx, err)
				return false, false
			}
		}
		c.mu.Lock()
		snap, dump := c.snap, c.dump
		c.mu.Unlock()
		if res == nil && (snap != nil || dump != nil) {
			res = &stream.SyncResult{T: req.LastKnownTick, Epoch: req.Epoch, TickRate: s.tickRate()}
		}
		if res == nil {
			mem.release()      // a rejoin that brought nothing
			return true, false // up to date
		}
		if mem.n == 0 { // the window's: the message it is copied into
			var ok bool
			if !mayWait {
				if mem, ok = c.p.srv.inflight.tryHold(pushBytes(res)); !ok {
					return true, true
				}
			} else if mem, ok = c.p.srv.inflight.hold(ctx, pushBytes(res)); !ok {
				c.closeFor(ctx, errNoMemory)
				return false, false
			}
		}
		res.Snap, res.Dump = snap, dump
		err = c.send(res, &mem)
		mem.release()
		if err != nil {
			return false, false
		}
	}
}

// readFor reads c's stream from c's cursor, for c alone; a reply of
// another epoch (the stream was created anew) is rejoin's instead.
func (c *pushConn) readFor(ctx context.Context) (*stream.SyncResult, error) {
	req := c.at()
	res, err := c.p.srv.store.Read(ctx, &req)
	if err == nil && res.Epoch != req.Epoch {
		return c.rejoin(ctx)
	}
	return res, err
}

// rejoin answers c by a sync of its client when the stream was created
// anew since c's cursor (Redis lost it, or it expired and a client created
// it again): the sync connects the client in the new stream, and its
// reply, from _a on, says the client's public id there, which c's pushes
// carry from then on. The old epoch's asks for a snapshot or dump are moot.
// A spectator's is a read of the new stream from _a, with no id.
func (c *pushConn) rejoin(ctx context.Context) (*stream.SyncResult, error) {
	req := c.at()
	res, err := c.p.srv.syncOrRead(ctx, &req, c.spectator)
	if err != nil {
		return nil, err
	}
	c.id = res.PublicID
	c.mu.Lock()
	c.snap, c.dump = res.Snap, res.Dump
	c.mu.Unlock()
	return res, nil
}

// errNoMemory ends a push connection whose reply got no in-flight memory.
var errNoMemory = errors.New("no in-flight memory for a push")

// pushBytes is the in-flight memory a push of res holds until it is
// written: its events, and the message they are copied into (send), which
// is framed and queued where it is (pushWire.writeText).
func pushBytes(res *stream.SyncResult) int64 { return 2*int64(len(res.Events)) + 256 }

// readHeld calls read for c, holding a page of in-flight memory while it
// reads and what its reply holds after (pushBytes), to be released once
// the reply is sent; errNoMemory if the memory does not come within
// -max-inflight-wait.
func (c *pushConn) readHeld(ctx context.Context,
	read func(context.Context) (*stream.SyncResult, error)) (*stream.SyncResult, held, error) {
	mem, ok := c.p.srv.inflight.hold(ctx, int64(c.p.srv.limits.MaxReplyBytes))
	if !ok {
		return nil, held{}, errNoMemory
	}
	res, err := read(ctx)
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

// read applies each message of c as the body of a sync. Its reply's
// events are not sent: they come in the pushes, in order.
func (c *pushConn) read(ctx context.Context) {
	for {
		typ, r, err := c.ws.Reader(ctx)
		if err != nil {
			return
		}
		// A message holds its body and the reply of its sync, as a POST
		// does, from before its body is read until it is applied.
		mem, ok := c.p.srv.inflight.hold(ctx, c.p.srv.limits.MaxBodyBytes+int64(c.p.srv.limits.MaxReplyBytes))
		if !ok {
			if _, err := io.Copy(io.Discard, r); err != nil {
				return
			}
			c.sendError(errBusy(), "")
			continue
		}
		body, err := io.ReadAll(r)
		open := true
		if err == nil {
			var apply bool
			if apply, open = c.admitMessage(ctx, body); apply {
				c.apply(ctx, typ, body)
			}
		}
		mem.release()
		if err != nil || !open {
			return
		}
	}
}

// apply applies one message of c, and acknowledges its batch or answers
// its error.
func (c *pushConn) apply(ctx context.Context, typ websocket.MessageType, body []byte) {
	req := c.at() // its cursor and epoch: the reply is small
	if typ != websocket.MessageText {
		c.sendError(errorf(protocol.CodeBadRequest, "%s", bodyShape), "")
		return
	}
	if err := c.p.srv.parseMessage(body, &req); err != nil {
		c.sendError(err, req.Batch)
		return
	}
	res, err := c.p.srv.store.Sync(ctx, &req)
	if err != nil {
		c.sendError(err, req.Batch)
		return
	}
	c.heard.Store(c.p.srv.clock.Now().UnixNano())
	c.p.srv.observeSync(req.Stream, res)
	c.ask(res)
	if req.Batch != "" { // the client may forget it: it is applied
		ack := messageBuf(16 + len(req.Batch))
		*ack = append(protocol.AppendString(append(*ack, `{"batch":`...), req.Batch), '}')
		_ = c.writeText(ack, nil)
	}
}

// parseMessage validates a push message, the body of a sync, into req at
// its connection's cursor. A message carries no last known tick: its hash
// reports are of ticks below the t of the last push its client read, which
// the cursor, the t of the last push sent, bounds from above. A report at
// or past the cursor is dropped, not refused (docs/protocol.md, "Push"):
// it comes from a client that had not read a push of a new epoch when it
// sent it, and the events beside it are applied. The message's epoch is
// the one it names, else the connection's: a client names the game its
// events are for, which may be the one before the connection moved on.
func (s *Server) parseMessage(body []byte, req *stream.SyncRequest) error {
	cursor, epoch := req.LastKnownTick, req.Epoch
	req.LastKnownTick = math.MaxInt64 // parseBody checks the reports' other rules
	req.Epoch = ""                    // the message's own epoch, if it names one, comes first
	err := s.parseBody(body, req)
	req.LastKnownTick = cursor
	if req.Epoch == "" {
		req.Epoch = epoch
	}
	req.Hashes = slices.DeleteFunc(req.Hashes, func(h protocol.HashReport) bool { return h.T >= cursor })
	return err
}

// sendError sends err to c as an error message, with the batch id of the
// message refused ("" for none, or one that could not be read).
func (c *pushConn) sendError(err error, batch string) {
	ae := toAPIError(err)
	c.p.srv.metrics.Rejected(ae.Code)
	body := ae.ErrorBody
	body.Batch = batch
	b := messageBuf(256)
	*b = protocol.AppendError(*b, body)
	_ = c.writeText(b, nil)
}

// keepAlive pings c and refreshes its presence, every PingInterval (at is
// the ping's tick). A client that answers no ping within pongWait is
// closed; it is not pinged again meanwhile, so that a connection holds one
// ping's goroutine at most. A client that sends is pinged all the same:
// what it sends says nothing of whether it reads, and one that never does
// would stay connected, and present, with the kernel holding what it does
// not read. Its presence is not refreshed again when a message of its was
// applied within the interval before: that sync did it. It reports
// whether c is still open.
func (c *pushConn) keepAlive(ctx context.Context, at time.Time) bool {
	if ctx.Err() != nil || c.tokenExpired() {
		return false
	}
	c.p.mu.Lock()
	closing := c.p.closing
	c.p.mu.Unlock()
	if closing {
		return true // no ping into a close handshake
	}
	if c.pinging.CompareAndSwap(false, true) {
		go func() { // the pong comes through the reader: not waited for here
			defer c.pinging.Store(false)
			pctx, cancel := context.WithTimeout(ctx, pongWait)
			defer cancel()
			// Only a pong that did not come ends c: a ping that fails
			// because c is closing must not cut its close handshake short.
			if err := c.ws.Ping(pctx); errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
				c.ws.CloseNow()
			}
		}()
	}
	if c.spectator {
		return true // never present: nothing to refresh
	}
	if heard := c.heard.Load(); heard != 0 && at.Sub(time.Unix(0, heard)) < c.p.cfg.PingInterval {
		return true // its own message, applied since the last ping, refreshed its presence
	}
	mem, ok := c.p.srv.inflight.hold(ctx, int64(c.p.srv.limits.MaxReplyBytes))
	if !ok {
		return true // the next ping tries again
	}
	defer mem.release()
	req := c.at() // an empty sync: heard from
	res, err := c.p.srv.store.Sync(ctx, &req)
	if err != nil {
		c.p.srv.log.Debug("push presence", zap.String("stream", req.Stream), zap.Error(err))
		return true
	}
	c.ask(res)
	return true
}

// pongWait is how long a client has to answer a ping.
const pongWait = 10 * time.Second
