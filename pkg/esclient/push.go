package esclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/goeventstream/eventstream/internal/clock"
	"github.com/goeventstream/eventstream/internal/protocol"
)

// Transport says how Run exchanges with the server (docs/protocol.md,
// "Push").
type Transport int

const (
	// Auto pushes, and polls for 30 s when the server refuses push
	// connections or three end early in a row (a connection that brings
	// nothing for 5 s is ended: the server pushes at least every 100 ms);
	// then it tries push again. The default.
	Auto Transport = iota
	// Poll syncs every SyncInterval.
	Poll
	// Push keeps a WebSocket open: each tick arrives as it is sealed.
	Push
)

func (t Transport) String() string {
	switch t {
	case Poll:
		return "poll"
	case Push:
		return "push"
	}
	return "auto"
}

// How Auto falls back to polling.
const (
	pushFailuresBeforePolling = 3                // connections in a row that end early
	pushLivedLong             = 30 * time.Second // a connection that lasted this long was fine
	pollBeforePushAgain       = 30 * time.Second
	maxPushMessage            = 16 << 20
	// pushSilence ends a connection that brought nothing for this long:
	// the server pushes at least every 100 ms, so something between (a
	// proxy that buffers, a dead route) keeps it from coming.
	pushSilence = 5 * time.Second
)

// errPushSilent ends a push connection that went silent.
var errPushSilent = errors.New("esclient: the push connection brought nothing for 5 s")

// runPush runs on push connections; with auto, it polls for a while when
// they fail.
func (c *Client) runPush(ctx context.Context, fn func(Update), auto bool) error {
	failures := 0
	for {
		lived, err := c.pushOnce(ctx, fn)
		if errors.Is(err, errRewound) {
			continue // at once, from the new cursor
		}
		var se *Error
		isErr := errors.As(err, &se)
		// Refused: something that does not speak push answered the
		// upgrade (an old server, a proxy that does not upgrade).
		var ue *upgradeError
		refused := errors.As(err, &ue) && (se.Code == "" || se.Status == http.StatusNotFound ||
			se.Status == http.StatusMethodNotAllowed || se.Status == http.StatusUpgradeRequired)
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case isErr && !refused && !se.Retryable():
			return se // the server will refuse this client however it comes
		case errors.Is(err, ErrNotSpectating):
			return err
		}
		if lived >= pushLivedLong {
			failures = 0
		}
		failures++
		if auto && (refused || failures >= pushFailuresBeforePolling) {
			c.log.Warn("push failed; polling for a while", slog.String("stream", c.cfg.Stream), slog.Any("error", err))
			pctx, cancel := context.WithTimeout(ctx, pollBeforePushAgain)
			err := c.runPoll(pctx, fn)
			cancel()
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if err != nil && !errors.Is(err, context.DeadlineExceeded) {
				return err
			}
			failures = 0
			continue
		}
		wait := c.backoff(failures, restarting(err))
		if se != nil && se.RetryAfter > 0 {
			wait = se.RetryAfter
		}
		c.log.Warn("push connection ended; reconnecting", slog.String("stream", c.cfg.Stream),
			slog.Int("failures", failures), slog.Duration("wait", wait), slog.Any("error", err))
		if !clock.Sleep(ctx, wait) {
			return ctx.Err()
		}
	}
}

// errRewound ends a push connection whose cursor Rewind moved.
var errRewound = errors.New("esclient: rewound")

// pushOnce runs one push connection until it ends, and returns how long
// it lived and why it ended.
func (c *Client) pushOnce(ctx context.Context, fn func(Update)) (time.Duration, error) {
	c.mu.Lock()
	target := "ws" + strings.TrimPrefix(c.syncTarget(), "http")
	gen := c.rewinds
	c.mu.Unlock()
	conn, connTok, err := c.dialPush(ctx, target)
	if err != nil {
		return 0, err
	}
	defer conn.CloseNow()
	conn.SetReadLimit(maxPushMessage)
	// ctx's end closes the connection, which ends the Read: a Read given
	// ctx itself would cost coder/websocket a context.AfterFunc per frame.
	defer context.AfterFunc(ctx, func() { _ = conn.CloseNow() })()
	start := time.Now()

	p := &pushConn{c: c, conn: conn, gen: gen, tok: connTok, silence: time.NewTimer(pushSilence)}
	defer p.silence.Stop()
	wctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		p.wakeups(wctx, connTok != "")
	}()
	err = p.read(ctx, fn)
	stop()
	wg.Wait()
	return time.Since(start), err
}

// pushConn is one push connection. Run's goroutine reads it and hands
// each Update to fn there (read); a second goroutine wakes when there is
// something to send between messages, a retry comes due, the token may
// need renewing, or the connection went silent (wakeups). After every
// message and every wake, step sends what is due.
type pushConn struct {
	c       *Client
	conn    *websocket.Conn
	gen     int         // c.rewinds when it was opened: a Rewind since makes it stale
	silence *time.Timer // reset by every message

	mu      sync.Mutex // held while sending (step); guards the fields below
	tok     string     // the token the connection holds, "" for none: the upgrade's, or the last renewal sent
	renewed bool       // a renewal was sent on this connection
	resend  bool       // a refusal may have been the last renewal's: send the token again
	renewAt time.Time  // no renewal is sent before: a refused one waits for its Retry-After
	ready   bool       // the first reply came: the epoch is known
	sent    *batch     // the batch sent on this connection, not acknowledged yet
	retryAt time.Time  // nothing is sent before
	ended   error      // why step or wakeups ended the connection
}

// read reads the connection's messages until it ends, and returns why.
// Every message is read into the same buffer (what is kept of it is
// copied: parseReply, decodeError).
func (p *pushConn) read(ctx context.Context, fn func(Update)) error {
	c := p.c
	var buf bytes.Buffer
	for {
		_, r, err := p.conn.Reader(context.Background())
		if err == nil {
			if buf.Cap() > 64<<10 {
				buf = bytes.Buffer{} // a long catch-up's size is not kept
			}
			buf.Reset()
			_, err = buf.ReadFrom(r)
		}
		if err != nil {
			return p.readFailed(ctx, err)
		}
		p.silence.Reset(pushSilence)
		data := buf.Bytes()
		switch {
		case bytes.HasPrefix(data, []byte(`{"batch":`)):
			var ack struct {
				Batch string `json:"batch"`
			}
			if json.Unmarshal(data, &ack) == nil {
				c.mu.Lock()
				if c.inflight != nil && c.inflight.id == ack.Batch {
					c.inflight = nil // applied
				}
				c.mu.Unlock()
			}
		case bytes.HasPrefix(data, []byte(`{"error":`)):
			if err := p.refused(decodeErrorBatch(0, 0, data)); err != nil {
				return err
			}
			continue // the connection reads on
		default:
			reply, err := c.parseReply(data)
			if err != nil {
				return err
			}
			// The cursor moves when the Update is handed over, not
			// before: one read but not delivered would be lost.
			c.mu.Lock()
			if c.rewinds != p.gen {
				c.mu.Unlock()
				p.conn.Close(websocket.StatusNormalClosure, "")
				return errRewound
			}
			u := c.received(reply)
			c.mu.Unlock()
			p.mu.Lock()
			p.ready = true
			p.mu.Unlock()
			fn(u)
		}
		p.mu.Lock()
		c.mu.Lock()
		if p.sent != nil && c.inflight != p.sent {
			p.sent = nil // acknowledged (or dropped with its epoch)
		}
		c.mu.Unlock()
		p.mu.Unlock()
		if err := p.step(ctx); err != nil {
			return err
		}
	}
}

// readFailed returns why the connection ended, its Read having failed with
// err: what ended it (step, wakeups, ctx), or err.
func (p *pushConn) readFailed(ctx context.Context, err error) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.ended != nil:
		return p.ended
	case ctx.Err() != nil:
		return ctx.Err()
	case websocket.CloseStatus(err) == protocol.CloseTokenExpired:
		p.c.tokens.expired(p.tok) // reconnect with a new one
	}
	return redact(err, p.c.cfg.PrivateID)
}

// refused takes in an error the server sent as a message, of the message
// whose batch id was batch, and returns it if it ends the connection. A
// stream that is full stops the posting, and a retryable refusal has the
// batch sent again after a wait, and the token too when the message
// refused may have been a renewal (it names no batch: the server answers
// a renewal only to refuse it, with rate_limited while forged tokens
// flood it): in both the connection reads on. A token sent again that the
// server took already costs it a lookup, and is not answered.
func (p *pushConn) refused(se *Error, batch string) error {
	c := p.c
	p.mu.Lock()
	c.mu.Lock()
	stopped := p.sent != nil && c.stopPosting(se)
	c.mu.Unlock()
	switch {
	case stopped:
		p.sent = nil // dropped
	case se.Retryable():
		wait := max(se.RetryAfter, c.cfg.SyncInterval)
		p.retryAt = time.Now().Add(wait)
		time.AfterFunc(wait, c.signal)
		p.sent = nil // sent again after the wait, with its id
		if batch == "" && p.renewed {
			p.resend, p.renewAt = true, p.retryAt
		}
	}
	p.mu.Unlock()
	if stopped || se.Retryable() {
		return nil
	}
	p.conn.Close(websocket.StatusNormalClosure, "")
	return se
}

// wakeups runs step when there is something to send (c.wake, a retry
// that came due), and with a token every SyncInterval to renew it; it
// ends the connection when nothing came for pushSilence, or step failed.
func (p *pushConn) wakeups(ctx context.Context, token bool) {
	var renew <-chan time.Time
	if token {
		tick := time.NewTicker(p.c.cfg.SyncInterval)
		defer tick.Stop()
		renew = tick.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.silence.C:
			p.mu.Lock()
			p.end(errPushSilent, websocket.StatusGoingAway, "nothing came")
			p.mu.Unlock()
			return
		case <-renew:
		case <-p.c.wake:
		}
		if p.step(ctx) != nil {
			return
		}
	}
}

// step ends a connection the cursor was rewound on, renews a token nearing
// its exp, and sends what is due. It returns why the connection ended, if
// it did.
func (p *pushConn) step(ctx context.Context) error {
	c := p.c
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ended != nil {
		return p.ended
	}
	c.mu.Lock()
	rewound := c.rewinds != p.gen
	c.mu.Unlock()
	if rewound { // the cursor moved back: open again from it
		return p.end(errRewound, websocket.StatusNormalClosure, "")
	}
	if p.tok != "" { // a token nearing its exp is renewed on the connection
		if err := p.renew(ctx); err != nil {
			return p.end(err, 0, "")
		}
	}
	if !p.ready || time.Now().Before(p.retryAt) {
		return nil
	}
	body := c.nextPush(p.sent)
	if body == nil {
		return nil
	}
	wctx, cancel := context.WithTimeout(ctx, DefaultHTTPTimeout)
	err := p.conn.Write(wctx, websocket.MessageText, body.data)
	cancel()
	if err != nil {
		return p.end(redact(err, c.cfg.PrivateID), 0, "")
	}
	if body.batch != nil {
		p.sent = body.batch
	}
	return nil
}

// end records why the connection ends, then closes it, with code and
// reason (0: at once, without a close handshake), so that a Read it ends
// returns err. p.mu must be held.
func (p *pushConn) end(err error, code websocket.StatusCode, reason string) error {
	if p.ended == nil {
		p.ended = err
	}
	if code == 0 {
		_ = p.conn.CloseNow()
	} else {
		_ = p.conn.Close(code, reason)
	}
	return p.ended
}

// dialPush opens a push connection to target, with the token, and once
// again with a new one if the server answers that the token expired. It
// returns the token the connection was opened with ("" for none).
func (c *Client) dialPush(ctx context.Context, target string) (*websocket.Conn, string, error) {
	hc := *c.http
	hc.Timeout = 0 // the connection outlives the handshake
	for retried := false; ; retried = true {
		h := http.Header{}
		tok, err := c.tokens.authorize(ctx, h)
		if err != nil {
			return nil, "", err
		}
		dctx, cancel := context.WithTimeout(ctx, DefaultHTTPTimeout)
		conn, resp, err := websocket.Dial(dctx, target, &websocket.DialOptions{HTTPClient: &hc, HTTPHeader: h})
		cancel()
		if err == nil {
			return conn, tok, nil
		}
		if resp == nil || resp.StatusCode == http.StatusSwitchingProtocols {
			return nil, "", redact(err, c.cfg.PrivateID)
		}
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		se := replyError(resp, data)
		if se.Code != protocol.CodeTokenExpired || tok == "" || retried {
			return nil, "", &upgradeError{se}
		}
		c.tokens.expired(tok)
	}
}

// upgradeError is the answer to an upgrade that was not accepted, as
// against an error that came as a message on an open connection.
type upgradeError struct{ err *Error }

func (e *upgradeError) Error() string { return e.err.Error() }
func (e *upgradeError) Unwrap() error { return e.err }

// renew sends the connection a new token when the one it holds nears its
// exp (docs/protocol.md, "Push"), or the token again when a refusal may
// have been its renewal's (refused), once the refusal's Retry-After has
// passed: until the token the server holds expires, when it closes the
// connection with 4003. A failure to get one is left for later: a
// reconnection asks again. p.mu must be held.
func (p *pushConn) renew(ctx context.Context) error {
	c := p.c
	if time.Now().Before(p.renewAt) {
		return nil
	}
	tok, err := c.tokens.current(ctx)
	if err != nil {
		c.log.Warn("renewing the push connection's token failed; trying again", slog.String("stream", c.cfg.Stream), slog.Any("error", err))
		return nil
	}
	if tok == p.tok && !p.resend {
		return nil
	}
	msg := append(protocol.AppendString([]byte(`{"token":`), tok), '}')
	wctx, cancel := context.WithTimeout(ctx, DefaultHTTPTimeout)
	defer cancel()
	if err := p.conn.Write(wctx, websocket.MessageText, msg); err != nil {
		return redact(err, c.cfg.PrivateID)
	}
	p.tok, p.renewed, p.resend = tok, true, false
	return nil
}

type pushBody struct {
	data  []byte
	batch *batch
}

// nextPush returns the message to send, if any: the batch in flight (once
// per connection), or a new one, with the hash reports due.
func (c *Client) nextPush(sent *batch) *pushBody {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.inflight == nil && len(c.queue) > 0 {
		c.inflight = c.takeBatch()
	}
	hashes := c.dueHashes()
	b := c.inflight
	if b == sent {
		b = nil // sent on this connection: waiting for its acknowledgement
	}
	if b == nil && len(hashes) == 0 {
		return nil
	}
	c.hashes = c.hashes[len(hashes):] // reports are best effort: not sent twice
	// A message names its batch's epoch: one composed before the client
	// read the push of a new epoch is refused, not applied to the new game.
	return &pushBody{data: encodeRequest(b, hashes, c.epoch), batch: b}
}
