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

// pushMessage is one message from the server, read on the connection's
// goroutine.
type pushMessage struct {
	reply *wireReply // a sync reply
	err   error
}

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
	// ctx's end closes the connection, which ends the reader's Read: a
	// Read given ctx itself would cost coder/websocket a context.AfterFunc
	// per frame.
	defer context.AfterFunc(ctx, func() { _ = conn.CloseNow() })()
	start := time.Now()

	cctx, stop := context.WithCancel(ctx)
	defer stop()
	msgs := make(chan pushMessage, 64)
	go c.readPush(cctx, conn, msgs)

	// The loop wakes for a message, for something to send (c.wake), for a
	// retry that comes due and, on a connection with a token, every
	// SyncInterval to renew it; nothing else changes what it would send.
	ready := false  // the first reply came: the epoch is known
	var sent *batch // the batch sent on this connection, not acknowledged yet
	var retryAt time.Time
	var retry <-chan time.Time // fires at retryAt
	var renew <-chan time.Time
	if connTok != "" {
		tick := time.NewTicker(c.cfg.SyncInterval)
		defer tick.Stop()
		renew = tick.C
	}
	silence := time.NewTimer(pushSilence)
	defer silence.Stop()
	for {
		select {
		case <-ctx.Done():
			conn.Close(websocket.StatusNormalClosure, "")
			return time.Since(start), ctx.Err()
		case <-silence.C:
			conn.Close(websocket.StatusGoingAway, "nothing came")
			return time.Since(start), errPushSilent
		case m := <-msgs:
			silence.Reset(pushSilence)
			if m.err != nil {
				var se *Error
				if errors.As(m.err, &se) {
					c.mu.Lock()
					stopped := sent != nil && c.stopPosting(se)
					c.mu.Unlock()
					if stopped {
						sent = nil // dropped: the connection reads on
						continue
					}
					if se.Retryable() {
						wait := max(se.RetryAfter, c.cfg.SyncInterval)
						retryAt, retry = time.Now().Add(wait), time.After(wait)
						sent = nil // sent again after the wait, with its id
						continue
					}
					conn.Close(websocket.StatusNormalClosure, "")
				}
				if websocket.CloseStatus(m.err) == protocol.CloseTokenExpired {
					c.tokens.expired(connTok) // reconnect with a new one
				}
				return time.Since(start), m.err
			}
			if m.reply != nil {
				// The cursor moves when the Update is handed over, not
				// before: one read but not delivered would be lost.
				c.mu.Lock()
				if c.rewinds != gen {
					c.mu.Unlock()
					conn.Close(websocket.StatusNormalClosure, "")
					return time.Since(start), errRewound
				}
				u := c.received(m.reply)
				c.mu.Unlock()
				ready = true
				fn(u)
			}
			c.mu.Lock()
			if sent != nil && c.inflight != sent {
				sent = nil // acknowledged (or dropped with its epoch)
			}
			c.mu.Unlock()
		case <-retry:
		case <-renew:
		case <-c.wake:
		}
		c.mu.Lock()
		rewound := c.rewinds != gen
		c.mu.Unlock()
		if rewound { // the cursor moved back: open again from it
			conn.Close(websocket.StatusNormalClosure, "")
			return time.Since(start), errRewound
		}
		if connTok != "" { // a token nearing its exp is renewed on the connection
			if err := c.renewPushToken(ctx, conn, &connTok); err != nil {
				return time.Since(start), err
			}
		}
		if !ready || time.Now().Before(retryAt) {
			continue
		}
		body := c.nextPush(sent)
		if body == nil {
			continue
		}
		wctx, cancel := context.WithTimeout(ctx, DefaultHTTPTimeout)
		err := conn.Write(wctx, websocket.MessageText, body.data)
		cancel()
		if err != nil {
			return time.Since(start), redact(err, c.cfg.PrivateID)
		}
		if body.batch != nil {
			sent = body.batch
		}
	}
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

// renewPushToken sends the connection a new token when the one it holds
// (*held) nears its exp (docs/protocol.md, "Push"). A failure to get one
// is left for later: the connection lives until the server closes it with
// 4003, and a reconnection asks again.
func (c *Client) renewPushToken(ctx context.Context, conn *websocket.Conn, held *string) error {
	tok, err := c.tokens.current(ctx)
	if err != nil {
		c.log.Warn("renewing the push connection's token failed; trying again", slog.String("stream", c.cfg.Stream), slog.Any("error", err))
		return nil
	}
	if tok == *held {
		return nil
	}
	msg := append(protocol.AppendString([]byte(`{"token":`), tok), '}')
	wctx, cancel := context.WithTimeout(ctx, DefaultHTTPTimeout)
	defer cancel()
	if err := conn.Write(wctx, websocket.MessageText, msg); err != nil {
		return redact(err, c.cfg.PrivateID)
	}
	*held = tok
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

// readPush reads the connection's messages: replies and errors go to
// msgs, in order; acknowledgements forget their batch. Every message is
// read into the same buffer (what is kept of it is copied: parseReply,
// decodeError). A Read ends when the connection is closed (pushOnce),
// not with ctx.
func (c *Client) readPush(ctx context.Context, conn *websocket.Conn, msgs chan<- pushMessage) {
	var buf bytes.Buffer
	for {
		_, r, err := conn.Reader(context.Background())
		if err == nil {
			if buf.Cap() > 64<<10 {
				buf = bytes.Buffer{} // a long catch-up's size is not kept
			}
			buf.Reset()
			_, err = buf.ReadFrom(r)
		}
		if err != nil {
			deliver(ctx, msgs, pushMessage{err: redact(err, c.cfg.PrivateID)})
			return
		}
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
			deliver(ctx, msgs, pushMessage{})
		case bytes.HasPrefix(data, []byte(`{"error":`)):
			e := decodeError(0, 0, data)
			deliver(ctx, msgs, pushMessage{err: e})
		default:
			reply, err := c.parseReply(data)
			if err != nil {
				deliver(ctx, msgs, pushMessage{err: err})
				return
			}
			if !deliver(ctx, msgs, pushMessage{reply: reply}) {
				return
			}
		}
	}
}

// deliver hands m to the connection's loop, unless it has ended.
func deliver(ctx context.Context, msgs chan<- pushMessage, m pushMessage) bool {
	select {
	case msgs <- m:
		return true
	case <-ctx.Done():
		return false
	}
}
