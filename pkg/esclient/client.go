// Package esclient is the Go client of one eventstreamd stream.
//
// A Client queues events with Send and exchanges them with the server:
// Sync does one round trip; Run keeps exchanging in the background, on a
// push connection (a WebSocket: each tick arrives as it is sealed) or by
// polling, as Config.Transport says (Auto: push, polling while push
// fails). Every request sends the queued events as one batch with an
// idempotency key, so a retry after a lost reply, or over a new
// connection, cannot append them twice, and a failure never loses them.
//
//	path, _ := esclient.DefaultIDPath()
//	id, err := esclient.LoadOrCreatePrivateID(path) // the same player next time
//	if err != nil { ... }
//	c, err := esclient.New(esclient.Config{BaseURL: "http://localhost:9922", Stream: "demo", PrivateID: id})
//	if err != nil { ... }
//	_ = c.Send("move", "left")
//	err = c.Run(ctx, func(u esclient.Update) {
//		for _, e := range u.Events { ... }
//	})
//
// The private id is the player's secret: the server knows a player by it,
// so two windows of one game on one machine need two ids (a path each, or
// an id of their own).
//
// When the stream starts anew (a new epoch: the server lost it, or it
// expired), the events still queued were meant for a game that is gone:
// they are dropped (Update.Dropped says how many) unless
// Config.KeepQueueOnReset is set. After a failed sync the client first asks
// for the epoch with an empty sync, so that events queued during an outage
// never land in a new epoch's first ticks.
//
// Events of server types the client does not know (types starting with
// "_" other than TypeReset, TypeConnect and TypeDisconnect) are passed on
// in Update.Events; programs ignore those they do not know.
//
// Send, Pending, PublicID, Epoch and LastCheckpoint are safe to call from
// any goroutine;
// Sync and Run may not run at the same time as each other.
package esclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/goeventstream/eventstream/internal/clock"
	"github.com/goeventstream/eventstream/internal/protocol"
)

// Config configures a Client.
type Config struct {
	// BaseURL is the server's address, such as "http://localhost:9922".
	// Required.
	BaseURL string
	// Stream names the stream. Required.
	Stream string
	// PrivateID is this client's secret id: 1 to 128 characters of
	// A-Z a-z 0-9 . _ ~ -. Keep it across runs, so that the player keeps
	// its public id (LoadOrCreatePrivateID saves one in a file). Required,
	// but for a spectator, which gets a random one when it has none (with
	// a Token, it is the token's sub).
	PrivateID string
	// HTTPClient sends the requests. Nil means a client with a 10 s timeout.
	HTTPClient *http.Client
	// SyncInterval is the time between syncs of Run. Zero means 200 ms:
	// five syncs a second, about four ticks each.
	SyncInterval time.Duration
	// MaxBackoff caps the wait between retries of a failed sync. Zero
	// means 5 s. While the server refuses connections (it is restarting),
	// retries wait at most RestartBackoff.
	MaxBackoff time.Duration
	// MaxQueue caps the events waiting to be sent; Send refuses more with
	// ErrQueueFull. Zero means 100000.
	MaxQueue int
	// FromTick is the first tick the first sync asks for. Zero replays the
	// stream from its start, as a simulation needs; a tool that only
	// watches may start at the tick in progress. A tick beyond the
	// stream's replays it from the start.
	FromTick int64
	// KeepQueueOnReset keeps the events queued when the stream starts anew
	// (a new epoch) and sends them into the new one. By default they are
	// dropped.
	KeepQueueOnReset bool
	// Logger logs retries. Nil means no logging. (zap users pass
	// slog.New(zapslog.NewHandler(core)).)
	Logger *slog.Logger
	// Transport is how Run exchanges with the server: Auto (push,
	// polling while push fails), Poll or Push. Run delivers the same
	// Updates either way; Sync always polls.
	Transport Transport
	// Token, for a server with auth on (docs/protocol.md, "Tokens"),
	// returns a stream token from the game's backend, whose sub is
	// PrivateID. It is called before the first request, again shortly
	// before the token's exp, and when the server answers token_expired;
	// a push connection gets the new token without reconnecting. Nil
	// sends no token (a server without auth, or an open stream).
	Token func(ctx context.Context) (string, error)
	// Spectate makes the client a spectator (docs/protocol.md,
	// "Spectators"): a replay viewer, a tournament screen. It reads the
	// stream as a player does, by poll or push, but never appears in it:
	// no public id (Update.PublicID is ""), no _c or _d. Its requests ask
	// for it (?spectate=1; with a spectator's Token, its role says so too).
	// Send, PutSnapshot and PutDump return ErrSpectator, ReportHash
	// reports nothing, and a stream that does not exist yet is waited for
	// (the server answers not_found) instead of ending Run.
	Spectate bool
}

// Default values of Config.
const (
	DefaultSyncInterval = 200 * time.Millisecond
	DefaultMaxBackoff   = 5 * time.Second
	RestartBackoff      = 500 * time.Millisecond
	DefaultMaxQueue     = 100_000
	DefaultHTTPTimeout  = 10 * time.Second
)

// maxBatchBytes keeps a batch safely below the server's default 64 KiB
// request limit.
const maxBatchBytes = protocol.DefaultMaxBodyBytes - 1024

// Client is a client of one stream.
type Client struct {
	cfg    Config
	prefix string // BaseURL/stream/privateID/
	http   *http.Client
	log    *slog.Logger
	tokens *tokens

	syncMu sync.Mutex    // one sync at a time
	wake   chan struct{} // cap 1: something to send

	mu       sync.Mutex
	queue    []pending    // events not yet in a batch
	inflight *batch       // the batch being sent until a reply confirms it
	probe    bool         // a sync failed: ask for the epoch before sending events
	postErr  *Error       // the stream is full: posting stopped, reading goes on (stopPosting)
	hashes   []HashReport // to report with the next syncs
	lastT    int64
	rewinds  int // Rewind calls: a push connection from before one is stale
	epoch    string
	publicID string
	lastCkpt Checkpoint // LastCheckpoint; no Hash for none
}

type pending struct {
	typ  string
	body []byte // a JSON string literal
}

type batch struct {
	id     string
	events []pending
}

// New returns a Client for cfg, or an error saying what in cfg is wrong.
func New(cfg Config) (*Client, error) {
	u, err := url.Parse(cfg.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("esclient: BaseURL %q must be an http or https URL such as http://localhost:9922", cfg.BaseURL)
	}
	if !protocol.ValidName(cfg.Stream) {
		return nil, fmt.Errorf("esclient: Stream %q must be 1 to %d characters of A-Z a-z 0-9 . _ ~ -", cfg.Stream, protocol.MaxNameLen)
	}
	if cfg.PrivateID == "" && cfg.Spectate {
		cfg.PrivateID = uuid.NewString() // never looked up: only its syntax counts
	}
	if cfg.PrivateID == "" {
		return nil, errors.New("esclient: PrivateID is required: keep one per player, such as LoadOrCreatePrivateID(path) returns")
	}
	if !protocol.ValidName(cfg.PrivateID) {
		return nil, fmt.Errorf("esclient: PrivateID must be 1 to %d characters of A-Z a-z 0-9 . _ ~ -", protocol.MaxNameLen)
	}
	if cfg.SyncInterval < 0 || cfg.MaxBackoff < 0 || cfg.MaxQueue < 0 || cfg.FromTick < 0 {
		return nil, errors.New("esclient: SyncInterval, MaxBackoff, MaxQueue and FromTick must not be negative")
	}
	if cfg.Transport < Auto || cfg.Transport > Push {
		return nil, errors.New("esclient: Transport must be Auto, Poll or Push")
	}
	if cfg.SyncInterval == 0 {
		cfg.SyncInterval = DefaultSyncInterval
	}
	if cfg.MaxBackoff == 0 {
		cfg.MaxBackoff = DefaultMaxBackoff
	}
	if cfg.MaxQueue == 0 {
		cfg.MaxQueue = DefaultMaxQueue
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: DefaultHTTPTimeout}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Client{
		cfg:    cfg,
		prefix: strings.TrimSuffix(u.String(), "/") + "/" + cfg.Stream + "/" + cfg.PrivateID + "/",
		http:   cfg.HTTPClient,
		log:    cfg.Logger,
		tokens: &tokens{get: cfg.Token},
		lastT:  cfg.FromTick,
		wake:   make(chan struct{}, 1),
	}, nil
}

// Stream returns the name of the client's stream.
func (c *Client) Stream() string { return c.cfg.Stream }

// PublicID returns the client's public id, or "" before the first sync.
func (c *Client) PublicID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.publicID
}

// Spectator reports whether the client is a spectator (Config.Spectate).
func (c *Client) Spectator() bool { return c.cfg.Spectate }

// Transport returns how Run exchanges with the server.
func (c *Client) Transport() Transport { return c.cfg.Transport }

// Epoch returns the epoch of the stream as of the last sync, or "" before
// the first.
func (c *Client) Epoch() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.epoch
}

// Send queues an event for the next sync. It refuses, locally and with the
// server's default limits, what the server would refuse.
func (c *Client) Send(typ, body string) error {
	switch {
	case c.cfg.Spectate:
		return ErrSpectator
	case len(typ) == 0 || len(typ) > MaxTypeLen || protocol.TypeHasControl(typ):
		return ErrBadType
	case strings.HasPrefix(typ, protocol.ReservedPrefix):
		return ErrReservedType
	case !utf8.ValidString(body):
		return ErrBadBody
	}
	enc := protocol.AppendString(nil, body)
	if len(enc)-2 > MaxBodyLen {
		return ErrBodyTooLarge
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.postErr != nil {
		return c.postErr
	}
	if len(c.queue) >= c.cfg.MaxQueue {
		return ErrQueueFull
	}
	c.queue = append(c.queue, pending{typ: typ, body: enc})
	c.signal()
	return nil
}

// signal wakes a push connection: there is something to send.
func (c *Client) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// Pending returns the number of events queued or in flight.
func (c *Client) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := len(c.queue)
	if c.inflight != nil {
		n += len(c.inflight.events)
	}
	return n
}

// Sync does one round trip: it sends the queued events as one batch and
// returns what the server sent back. If the round trip fails, the batch
// is kept, with its id, and the next Sync sends it again.
func (c *Client) Sync(ctx context.Context) (Update, error) {
	c.syncMu.Lock()
	defer c.syncMu.Unlock()

	c.mu.Lock()
	if c.inflight == nil && len(c.queue) > 0 {
		c.inflight = c.takeBatch()
	}
	target := c.syncTarget()
	sent := c.inflight
	if c.probe && c.epoch != "" {
		sent = nil // the epoch first: the stream may have started anew meanwhile
	}
	hashes := c.dueHashes()
	if sent == nil && c.probe {
		hashes = nil
	}
	body := encodeRequest(sent, hashes, "") // the epoch is the target's query
	c.mu.Unlock()

	reply, err := c.roundTrip(ctx, target, body)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		if sent != nil && c.stopPosting(err) {
			return Update{}, err // the next sync reads on, without events
		}
		c.probe = true
		return Update{}, err
	}
	c.probe = false
	if sent != nil {
		c.inflight = nil // the server has it
	}
	c.hashes = slices.DeleteFunc(c.hashes, func(h HashReport) bool { return slices.Contains(hashes, h) })
	return c.received(reply), nil
}

// syncTarget is the URL of the client's next sync: its cursor, the
// epoch it was read in (docs/protocol.md, "Sync"), and whether it
// spectates ("Spectators"). c.mu must be held.
func (c *Client) syncTarget() string {
	target := c.prefix + strconv.FormatInt(c.lastT, 10)
	sep := "?"
	if c.epoch != "" {
		target += "?epoch=" + c.epoch
		sep = "&"
	}
	if c.cfg.Spectate {
		target += sep + "spectate=1"
	}
	return target
}

// dueHashes returns the hash reports a request from the cursor may carry:
// those of ticks below it; the others wait for a later request. c.mu must
// be held.
func (c *Client) dueHashes() []HashReport {
	var due []HashReport
	for _, h := range c.hashes {
		if h.T < c.lastT {
			due = append(due, h)
		}
	}
	return due
}

// received takes a reply in: the cursor, the epoch, the public id. c.mu
// must be held.
func (c *Client) received(reply *wireReply) Update {
	u := Update{
		PublicID:        reply.ID,
		T:               reply.T,
		Epoch:           reply.Epoch,
		TickRate:        reply.TPS,
		Events:          reply.Events,
		Reset:           len(reply.Events) > 0 && reply.Events[0].Type == TypeReset,
		More:            reply.More,
		CheckpointEvery: reply.Ckpt,
		Base:            reply.Base,
		Snap:            reply.Snap,
		Dump:            reply.Dump,
	}
	if c.epoch != "" && reply.Epoch != c.epoch {
		c.hashes = c.hashes[:0] // of a game that is gone
		c.postErr = nil         // a new stream has room
		if !c.cfg.KeepQueueOnReset {
			u.Dropped = c.dropQueue()
		}
	}
	if c.lastCkpt.Epoch != reply.Epoch {
		c.lastCkpt = Checkpoint{} // of a game that is gone
	}
	c.lastT, c.epoch, c.publicID = reply.T, reply.Epoch, reply.ID
	return u
}

// stopPosting takes in err, the refusal of a request that carried a
// batch, and reports whether it is the stream's refusal of any more events
// (stream_full): the batch and the queue are dropped, Send returns the
// error from then on, and the client goes on reading the stream, so that
// a game keeps showing it (docs/protocol.md, "Trust model"). A new epoch
// lifts it. c.mu must be held.
func (c *Client) stopPosting(err error) bool {
	var se *Error
	if !errors.As(err, &se) || se.Code != protocol.CodeStreamFull {
		return false
	}
	if c.postErr == nil {
		c.log.Warn("the stream is full: sending stopped, reading goes on",
			slog.String("stream", c.cfg.Stream), slog.Int("dropped", c.dropQueue()))
	}
	c.postErr = se
	c.dropQueue()
	return true
}

// PostErr returns the error that stopped the client's posting (a full
// stream: code stream_full), or nil. While it is set, Send returns it and
// the client only reads; a new epoch clears it.
func (c *Client) PostErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.postErr == nil {
		return nil
	}
	return c.postErr
}

// dropQueue drops every event queued or in flight and returns how many.
// c.mu must be held.
func (c *Client) dropQueue() int {
	n := len(c.queue)
	if c.inflight != nil {
		n += len(c.inflight.events)
	}
	c.queue, c.inflight = c.queue[:0], nil
	return n
}

// takeBatch moves the events that fit in one request from the queue into
// a new batch. c.mu must be held.
func (c *Client) takeBatch() *batch {
	n, size := 0, 0
	for n < len(c.queue) && n < MaxEventsPerSync {
		e := c.queue[n]
		size += len(e.typ) + len(e.body) + 32
		if n > 0 && size > maxBatchBytes {
			break
		}
		n++
	}
	b := &batch{id: uuid.NewString(), events: append([]pending(nil), c.queue[:n]...)}
	c.queue = append(c.queue[:0], c.queue[n:]...)
	return b
}

// encodeRequest encodes the body of a sync: the batch b, if any, and the
// hash reports, and for a batch the epoch its events are for (none when
// epoch is empty); nil when there is neither.
func encodeRequest(b *batch, hashes []HashReport, epoch string) []byte {
	if b == nil && len(hashes) == 0 {
		return nil
	}
	out := append(make([]byte, 0, 64), '{')
	if b != nil {
		if epoch != "" {
			out = append(out, `"epoch":`...)
			out = protocol.AppendString(out, epoch)
			out = append(out, ',')
		}
		out = append(out, `"batch":`...)
		out = protocol.AppendString(out, b.id)
		out = append(out, `,"events":[`...)
		for i, e := range b.events {
			if i > 0 {
				out = append(out, ',')
			}
			out = append(out, `{"type":`...)
			out = protocol.AppendString(out, e.typ)
			out = append(out, `,"body":`...)
			out = append(out, e.body...)
			out = append(out, '}')
		}
		out = append(out, ']')
	}
	if len(hashes) > 0 {
		if b != nil {
			out = append(out, ',')
		}
		out = append(out, `"hashes":[`...)
		for i, h := range hashes {
			if i > 0 {
				out = append(out, ',')
			}
			out = append(out, `{"t":`...)
			out = strconv.AppendInt(out, h.T, 10)
			out = append(out, `,"h":`...)
			out = protocol.AppendString(out, h.Hash)
			out = append(out, '}')
		}
		out = append(out, ']')
	}
	return append(out, '}')
}

// wireReply is a sync reply as the client decodes it (decodeReply).
type wireReply = protocol.Reply[Event]

func (c *Client) roundTrip(ctx context.Context, target string, body []byte) (*wireReply, error) {
	method := http.MethodPost
	if c.cfg.Spectate {
		method = http.MethodGet // what a spectator may send: it has no body
	}
	resp, err := c.do(ctx, method, target, body, "application/json")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	buf := bytes.NewBuffer(make([]byte, 0, max(resp.ContentLength, 0)+bytes.MinRead))
	_, err = buf.ReadFrom(resp.Body)
	data := buf.Bytes()
	if err != nil {
		return nil, fmt.Errorf("esclient: reading the reply: %w", redact(err, c.cfg.PrivateID))
	}
	if resp.StatusCode != http.StatusOK {
		return nil, replyError(resp, data)
	}
	return c.parseReply(data)
}

// parseReply decodes a sync reply, pushed or polled, and checks that it is
// one: it has events, an epoch and a player's id; a spectator's has none,
// and one with an id took the spectator for a player (ErrNotSpectating).
func (c *Client) parseReply(data []byte) (*wireReply, error) {
	var reply wireReply
	if err := decodeReply(data, &reply); err != nil {
		return nil, fmt.Errorf("esclient: the reply is not a sync reply: %w", err)
	}
	switch {
	case reply.Events == nil || reply.Epoch == "" || (reply.ID == "" && !c.cfg.Spectate):
		return nil, errors.New("esclient: the reply is not a sync reply")
	case reply.ID != "" && c.cfg.Spectate:
		return nil, ErrNotSpectating
	}
	return &reply, nil
}

// replyError returns the *Error of an HTTP reply that is not a success.
func replyError(resp *http.Response, data []byte) *Error {
	return decodeError(resp.StatusCode, retryAfter(resp.Header), data)
}

// decodeError returns the *Error of an error reply's body. status is the
// reply's HTTP status, or 0 for a push message, whose status is its code's
// (protocol.Status); retry is the Retry-After header's wait, if any.
func decodeError(status int, retry time.Duration, data []byte) *Error {
	e, _ := decodeErrorBatch(status, retry, data)
	return e
}

// decodeErrorBatch is decodeError, and returns the batch id the error
// names too: a push message's, "" when the message refused had none.
func decodeErrorBatch(status int, retry time.Duration, data []byte) (*Error, string) {
	e := &Error{Status: status, Message: strings.TrimSpace(string(data)), RetryAfter: retry}
	var wire protocol.ErrorReply
	if json.Unmarshal(data, &wire) == nil && wire.Error.Code != "" {
		e.Code, e.Message = wire.Error.Code, wire.Error.Message
		if e.RetryAfter == 0 {
			e.RetryAfter = time.Duration(min(max(wire.Error.RetryAfter, 0), maxRetryAfter)) * time.Second
		}
	}
	if e.Status == 0 {
		e.Status = protocol.Status(e.Code)
	}
	return e, wire.Error.Batch
}

// redactedError hides the private id, which is part of every request URL,
// from errors that quote the URL.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

func redact(err error, secret string) error {
	msg := err.Error()
	if !strings.Contains(msg, secret) {
		return err
	}
	return &redactedError{msg: strings.ReplaceAll(msg, secret, "<private-id>"), err: err}
}

// Run syncs every SyncInterval, and at once while the server has more,
// calling fn with every Update on Run's goroutine. Network errors and
// retryable server errors are retried with capped exponential backoff and
// jitter, or after the server's Retry-After when it gives one; queued
// events are never dropped, except when the stream refuses more events
// (stream_full): then posting stops, Run reads on, and Send returns that
// error (PostErr). Run returns ctx's error when ctx ends, or an *Error
// when the server refuses the requests in a way that retrying cannot
// change (such as a bad stream name, or no room for another client).
func (c *Client) Run(ctx context.Context, fn func(Update)) error {
	switch c.cfg.Transport {
	case Poll:
		return c.runPoll(ctx, fn)
	case Push:
		return c.runPush(ctx, fn, false)
	}
	return c.runPush(ctx, fn, true)
}

// runPoll is Run by polling.
func (c *Client) runPoll(ctx context.Context, fn func(Update)) error {
	failures := 0
	for {
		u, err := c.Sync(ctx)
		var wait time.Duration
		switch {
		case err == nil:
			failures = 0
			fn(u) // even when ctx ended meanwhile: the cursor has moved past it
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if u.More {
				continue
			}
			wait = c.cfg.SyncInterval
		case ctx.Err() != nil:
			return ctx.Err()
		default:
			var se *Error
			if (errors.As(err, &se) && !se.Retryable() && !c.waits(se) && !c.posting(se)) || errors.Is(err, ErrNotSpectating) {
				return err
			}
			failures++
			wait = c.backoff(failures, restarting(err))
			if se != nil && se.RetryAfter > 0 {
				wait = se.RetryAfter // the server said when
			}
			c.log.Warn("sync failed; retrying", slog.String("stream", c.cfg.Stream),
				slog.Int("failures", failures), slog.Duration("wait", wait), slog.Any("error", err))
		}
		if !clock.Sleep(ctx, wait) {
			return ctx.Err()
		}
	}
}

// waits reports whether a spectator waits for what se says: a stream that
// does not exist yet (a spectator creates none).
func (c *Client) waits(se *Error) bool {
	return c.cfg.Spectate && se.Code == protocol.CodeNotFound
}

// posting reports whether se is the refusal that stopped the client's
// posting (stopPosting): the client reads on.
func (c *Client) posting(se *Error) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.postErr == se
}

// backoff returns the wait after the given number of consecutive failures:
// a random duration up to SyncInterval·2^failures, capped at MaxBackoff
// ("full jitter"), so that clients of a server that comes back do not all
// retry at once. While the server is restarting, the cap is RestartBackoff,
// so that clients are back within a fraction of a second of it.
func (c *Client) backoff(failures int, restarting bool) time.Duration {
	ceiling := c.cfg.MaxBackoff
	if restarting {
		ceiling = min(ceiling, RestartBackoff)
	}
	if failures < 30 {
		ceiling = min(ceiling, c.cfg.SyncInterval<<failures)
	}
	return time.Duration(rand.Int64N(int64(ceiling))) + time.Millisecond
}

// restarting reports whether err says that the server is not up: the
// connection was refused, or a proxy in front of it has no server to send
// the request to (502, 503 or 504 that is not eventstreamd's own answer).
// A retry costs such a server nothing, so it may come sooner.
func restarting(err error) bool {
	var se *Error
	if errors.As(err, &se) {
		return se.Code == "" && (se.Status == http.StatusBadGateway ||
			se.Status == http.StatusServiceUnavailable || se.Status == http.StatusGatewayTimeout)
	}
	return errors.Is(err, syscall.ECONNREFUSED)
}
