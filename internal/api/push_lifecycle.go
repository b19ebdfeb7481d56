package api

import (
	"context"
	"encoding/base64"
	"net/http"
	"strings"

	"github.com/coder/websocket"

	"github.com/goeventstream/eventstream/internal/auth"
	"github.com/goeventstream/eventstream/internal/protocol"
	"github.com/goeventstream/eventstream/internal/stream"
)

// A push connection's life: the upgrade, checked before anything happens
// to the stream (upgrade, checkHandshake); its history (serve); joining
// and leaving its stream's loop (join, leave); and the server's shutdown
// (close).

func (p *pusher) upgrade(w http.ResponseWriter, r *http.Request, spectator bool) {
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
	if spectator && !p.spectate(req.Stream) {
		p.mu.Unlock()
		p.conns.Add(-1)
		ae := errorf(protocol.CodeServerFull,
			"the stream has its maximum of spectators' push connections on this server (-max-spectators-per-stream); poll, or try again")
		ae.RetryAfter = spectatorRetryAfter
		p.srv.writeError(w, r, ae)
		return
	}
	p.all.Add(1)
	p.mu.Unlock()
	done := func() {
		if spectator {
			p.unspectate(req.Stream)
		}
		p.conns.Add(-1)
		p.all.Done()
	}

	// The first reply is a sync: it makes the client connected and says
	// where it stands; then it is pushed like every later one. Its memory
	// is held until it is sent, as every push's (readHeld).
	mem, ok := p.srv.reserve(w, r, int64(p.srv.limits.MaxReplyBytes))
	if !ok {
		done()
		return
	}
	res, err := p.srv.syncOrRead(r.Context(), req, spectator)
	if err != nil {
		mem.release()
		done()
		p.srv.writeError(w, r, err)
		return
	}
	mem.trim(pushBytes(res))
	var wire *pushWire
	// The handshake and the origin are checked: Accept checks neither
	// again, and fails only if the connection cannot be taken over.
	ws, err := websocket.Accept(smallBuffers{w, p.wire, &wire}, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		mem.release()
		done()
		return // Accept has answered
	}
	ws.SetReadLimit(p.srv.limits.MaxBodyBytes)
	c := &pushConn{p: p, ws: ws, wire: wire, id: res.PublicID, spectator: spectator, notify: make(chan struct{}, 1),
		src: sourceOf(r.Context()), req: stream.SyncRequest{Stream: req.Stream, PrivateID: req.PrivateID}}
	c.auth, _ = auth.FromContext(r.Context())
	// The connection lives on goroutines of its own, and the handler
	// returns: net/http then lets go of the request, its buffers and its
	// goroutine, which an idle connection would otherwise keep, and the
	// request's duration is the upgrade's, not the connection's.
	go func() {
		defer done()
		p.serve(c, res, mem)
	}()
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

// serve sends c its history from res, which holds mem, on, then its
// pushes until it ends, and closes its socket: the WebSocket closes it
// only when closed itself, and a client gone without a close frame ends
// c by its reader's error alone.
func (p *pusher) serve(c *pushConn, res *stream.SyncResult, mem held) {
	defer c.ws.CloseNow() // after a close handshake, a no-op
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c.ctx = ctx
	err := c.send(res, &mem)
	mem.release()
	for err == nil && res.More { // the history, page by page, as the client takes it
		if err = c.wire.settle(ctx); err != nil {
			break // cut, or closing: no page more
		}
		if res, mem, err = c.readHeld(ctx, c.readFor); err != nil {
			c.closeFor(ctx, err)
			return
		}
		err = c.send(res, &mem)
		mem.release()
	}
	if err != nil {
		return
	}

	s, ok := p.join(c, res)
	if !ok { // the server began to shut down while c was sent its history
		c.ws.Close(websocket.StatusGoingAway, goingAway)
		return
	}
	defer p.leave(s, c)
	read := make(chan struct{})
	go func() { defer close(read); defer cancel(); c.read(ctx) }()
	c.write(ctx, s)
	cancel()
	<-read
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
	start := s == nil
	if start {
		s = &pushStream{name: name, p: p, conns: map[*pushConn]struct{}{}}
		p.streams[s.name] = s
	}
	s.mu.Lock()
	s.conns[c] = struct{}{}
	s.mu.Unlock()
	select { // the writer looks at the window first: the loop may have read past c
	case c.notify <- struct{}{}:
	default:
	}
	if start {
		var ctx context.Context
		ctx, s.stop = context.WithCancel(context.Background())
		go s.loop(ctx, last.T, last.Epoch, last.TickRate)
	}
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
