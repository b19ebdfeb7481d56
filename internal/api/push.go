package api

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/zap"
)

// Push (docs/protocol.md, "Push"): a GET of a sync path with a WebSocket
// upgrade opens a connection on which the server sends each tick as it is
// sealed, in the shape of a sync reply, and the client sends sync bodies.
//
// One loop per stream with connections on this replica reads the stream's
// new ticks from the store once per tick (Store.Read) and writes the same
// events to every connection that is up to date, itself: a write never
// waits for a client (pushWire queues what its socket does not take), so a
// slow reader delays nobody. A connection that needs more (a read of its
// own, after it joined or fell behind the loop's window, or a new epoch)
// is served by a goroutine of its own; what it has not been sent yet
// coalesces into its next message, and a connection further behind than
// MaxLag is closed (it reconnects and catches up by sync).

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
	// MaxSpectatorsPerStream caps the spectators' push connections of one
	// stream on this server; past it a spectator's upgrade is answered 503
	// server_full (docs/protocol.md, "Spectators").
	MaxSpectatorsPerStream int64
	// QuietInterval is the longest a connection goes without a push while
	// its stream's ticks pass with no events (the bound on t of
	// docs/protocol.md, "Push"), at most MaxQuietInterval.
	QuietInterval time.Duration
	// WriteBuffer is the kernel's send buffer of each connection's socket,
	// in bytes (SO_SNDBUF; Linux doubles it for its bookkeeping, caps it at
	// net.core.wmem_max, and no longer grows it itself). It bounds the
	// kernel memory a client that stops reading holds, and how much the
	// kernel takes before what is not taken queues, and is cut once it
	// has waited MaxLag; and it bounds a client's throughput to about
	// WriteBuffer per round trip (docs/operations.md, "Push connections").
	WriteBuffer int
}

// MaxQuietInterval is the largest PushConfig.QuietInterval: past four
// ticks of 20 a second, gamesim's pacing (docs/gamesim-spec.md) no longer
// keeps a simulation running through a quiet stretch.
const MaxQuietInterval = 200 * time.Millisecond

// DefaultPushConfig returns the defaults of the flags.
func DefaultPushConfig() PushConfig {
	return PushConfig{MaxConnections: 100_000, PingInterval: 5 * time.Second, MaxLag: 5 * time.Second,
		MaxSpectatorsPerStream: 10_000, QuietInterval: 100 * time.Millisecond, WriteBuffer: 256 << 10}
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
	if c.MaxSpectatorsPerStream == 0 {
		c.MaxSpectatorsPerStream = d.MaxSpectatorsPerStream
	}
	if c.QuietInterval == 0 {
		c.QuietInterval = d.QuietInterval
	}
	if c.WriteBuffer == 0 {
		c.WriteBuffer = d.WriteBuffer
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
	case c.MaxSpectatorsPerStream < 0:
		return errors.New("max spectators per stream must not be negative")
	case c.QuietInterval < 0 || c.QuietInterval > MaxQuietInterval:
		return fmt.Errorf("push quiet interval must be between 0 and %v", MaxQuietInterval)
	case c.WriteBuffer != 0 && (c.WriteBuffer < MinWriteBuffer || c.WriteBuffer > MaxWriteBuffer):
		return fmt.Errorf("push write buffer must be between %d and %d bytes", MinWriteBuffer, MaxWriteBuffer)
	}
	return nil
}

// MinWriteBuffer is the smallest PushConfig.WriteBuffer: a few segments,
// below which a connection is written a segment at a time.
const MinWriteBuffer = 8 << 10

// MaxWriteBuffer is the largest PushConfig.WriteBuffer: SO_SNDBUF is a C
// int, which a larger value wraps (4 GiB set the kernel's minimum, 4.5
// KiB), and Linux doubles it.
const MaxWriteBuffer = 1 << 30

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

// pushQueueSlack is what a push connection's queue holds beyond a page
// (-max-reply-bytes): the small pushes that follow a page the client is
// still reading.
const pushQueueSlack = 64 << 10

// wire makes the pushWire of a push connection's socket, whose send
// buffer it sets to WriteBuffer.
func (p *pusher) wire(nc net.Conn) *pushWire {
	if sc, ok := nc.(interface{ SetWriteBuffer(int) error }); ok {
		if err := sc.SetWriteBuffer(p.cfg.WriteBuffer); err != nil {
			p.srv.log.Debug("push write buffer", zap.Error(err))
		}
	}
	return newPushWire(nc, p.srv.inflight, p.srv.limits.MaxReplyBytes+pushQueueSlack, p.cfg.MaxLag)
}

// goingAway is the reason of the close that ends a push connection when
// the server shuts down.
const goingAway = "the server is shutting down; reconnect"

// pusher holds the push connections of a Server.
type pusher struct {
	srv   *Server
	cfg   PushConfig
	conns atomic.Int64

	mu         sync.Mutex
	streams    map[string]*pushStream
	spectators map[string]int64 // per stream, its spectators' connections (spectate.go)
	closing    bool
	all        sync.WaitGroup // every connection's handler
}
