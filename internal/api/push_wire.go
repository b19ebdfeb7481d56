package api

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"syscall"
	"time"
)

// pushWire is the connection a push connection's WebSocket writes to. A
// write to it never waits for the client: what the socket takes at once
// is written, and the rest is queued, in order, and written out by a
// goroutine of its own while the client reads. So a stream's loop can
// write a tick to every connection of the stream itself, one after the
// other, without a goroutine woken per connection, and a client that
// stops reading delays nobody.
//
// What is queued is bounded: it holds in-flight memory
// (-max-inflight-bytes) until it is written, at most maxQueue bytes a
// connection, and a queue that has waited maxLag to go out is too slow. A
// write that breaks a bound fails, and the connection is cut: its
// WebSocket is broken mid-frame, so no close frame can follow.
//
// A connection that is not a socket (a pipe, TLS) cannot be written
// without waiting: each write then waits, up to maxLag, as any
// connection's would (nonBlocking is false).
type pushWire struct {
	net.Conn
	raw      syscall.RawConn // nil: not a socket
	budget   *budget
	maxQueue int
	maxLag   time.Duration

	// writeFn writes out from wrote to the socket without waiting, and
	// werr is its failure (writeNow): made once, so that a write makes no
	// closure.
	writeFn func(fd uintptr) bool
	out     []byte
	wrote   int
	werr    error

	mu        sync.Mutex
	closeSent bool          // the WebSocket's close frame is written: no message may follow it
	queue     net.Buffers   // what the socket has not taken yet, in order
	queued    int           // the bytes of queue
	held      int64         // in-flight memory held for queue: its bytes, and all of a message's buffer it took over
	since     time.Time     // when the oldest byte of queue was queued
	draining  bool          // drain is writing out; queue only grows meanwhile
	closing   bool          // Close waits for drain to write the close frame out, then closes
	drained   chan struct{} // closed when drain ends: the queue is written out, or w failed
	err       error         // the first failure; every write after it fails
}

// errCloseSent refuses a message after the WebSocket's close frame: the
// connection is closing, and no message may follow that frame.
var errCloseSent = fmt.Errorf("push connection closing: %w", net.ErrClosed)

// errTooSlow fails a write to a connection whose queue would pass its
// bounds.
var errTooSlow = errors.New("push connection too slow: its queue is full")

func newPushWire(nc net.Conn, b *budget, maxQueue int, maxLag time.Duration) *pushWire {
	w := &pushWire{Conn: nc, budget: b, maxQueue: maxQueue, maxLag: maxLag}
	if sc, ok := nc.(syscall.Conn); ok && canWriteNow {
		if raw, err := sc.SyscallConn(); err == nil {
			w.raw = raw
			w.writeFn = w.writeSome
		}
	}
	return w
}

// writeNow writes what the socket takes of p at once, without waiting for
// room: n < len(p) when its buffer is full. w.mu is held.
func (w *pushWire) writeNow(p []byte) (n int, err error) {
	w.out, w.wrote, w.werr = p, 0, nil
	err = w.raw.Write(w.writeFn)
	n, w.out = w.wrote, nil
	if err == nil {
		err = w.werr
	}
	return n, err
}

// nonBlocking reports whether a write to w never waits for its client.
func (w *pushWire) nonBlocking() bool { return w.raw != nil }

// Write writes p, or queues a copy of what the socket does not take at
// once. The WebSocket writes its control frames with it (pings, pongs,
// the close frame), each whole in one call: it writes no message
// (writeText does).
func (w *pushWire) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if isCloseFrame(p) {
		w.closeSent = true
	}
	return w.write(p, nil, nil)
}

// frameRoom is the room a message's buffer leaves before its payload, for
// the head of its frame (appendFrameHead's longest): the message is framed
// where it is built, not copied.
const frameRoom = 10

// messageBuf returns a buffer for a message of n bytes: frameRoom bytes,
// room for n more, and no more room than that past maxPooledBuf (a page
// is not copied again to grow). writeText takes it.
func messageBuf(n int) *[]byte {
	if frameRoom+n > maxPooledBuf {
		b := make([]byte, frameRoom, frameRoom+n)
		return &b
	}
	buf := replyBufs.Get().(*[]byte)
	if cap(*buf) < frameRoom+n {
		*buf = make([]byte, 0, frameRoom+n)
	}
	*buf = (*buf)[:frameRoom]
	return buf
}

// writeText writes the message that follows frameRoom in buf
// (messageBuf), framed (RFC 6455, 5.2) in place, in one write, unless the
// close frame was written. It takes buf: what the socket does not take at
// once is queued in buf itself, not copied, when buf is larger than a
// pooled buffer, and takes over the in-flight memory mem holds for it
// (nil: none), then more if it needs.
func (w *pushWire) writeText(buf *[]byte, mem *held) error {
	payload := len(*buf) - frameRoom
	start := frameRoom - frameHeadLen(payload)
	appendFrameHead((*buf)[start:start], payload)
	frame := (*buf)[start:]
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closeSent {
		putReplyBuf(buf)
		return errCloseSent
	}
	_, err := w.write(frame, mem, buf)
	return err
}

// frameHeadLen is the length of the head appendFrameHead appends for n
// bytes.
func frameHeadLen(n int) int {
	switch {
	case n <= 125:
		return 2
	case n <= 0xffff:
		return 4
	}
	return 10
}

// appendFrameHead appends the head of an unmasked final text frame of n
// bytes.
func appendFrameHead(b []byte, n int) []byte {
	const finText = 0x80 | 0x1
	switch {
	case n <= 125:
		return append(b, finText, byte(n))
	case n <= 0xffff:
		return binary.BigEndian.AppendUint16(append(b, finText, 126), uint16(n))
	}
	return binary.BigEndian.AppendUint64(append(b, finText, 127), uint64(n))
}

// isCloseFrame reports whether p is one whole unmasked close frame.
func isCloseFrame(p []byte) bool {
	return len(p) >= 2 && p[0] == 0x80|0x8 && p[1] <= 125 && len(p) == 2+int(p[1])
}

// write writes p, or queues what the socket does not take at once, in
// memory mem holds (nil: none) as far as it goes. p is in buf, which write
// takes (nil: p is the caller's, and what is queued of it is copied): a
// buffer of a page's size is queued itself, and what it holds counted
// whole, while a pooled one goes back to its pool, and what is queued of
// it is copied. w.mu is held.
func (w *pushWire) write(p []byte, mem *held, buf *[]byte) (int, error) {
	if buf != nil && cap(*buf) <= maxPooledBuf {
		defer putReplyBuf(buf) // what is queued of p is copied first
		buf = nil
	}
	if w.raw == nil { // waits, at most maxLag, as the operating system's time goes
		_ = w.Conn.SetWriteDeadline(time.Now().Add(w.maxLag))
		return w.Conn.Write(p)
	}
	if w.err != nil {
		return 0, w.err
	}
	if w.closing {
		return 0, net.ErrClosed
	}
	n := 0
	if len(w.queue) == 0 && !w.draining {
		var err error
		if n, err = w.writeNow(p); err != nil {
			w.err = err
			return n, err
		}
		if n == len(p) {
			return n, nil
		}
	}
	rest := p[n:]
	size := int64(len(rest)) // the memory it holds once queued
	if buf != nil {
		size = int64(cap(*buf))
	}
	var adopt int64 // of mem's, which p was made in
	if mem != nil {
		adopt = min(size, mem.n)
	}
	// (More memory is taken only if needed: a semaphore with waiters
	// refuses even none.)
	if need := size - adopt; w.queued+len(rest) > w.maxQueue || need > 0 && !w.budget.sem.TryAcquire(need) {
		w.err = errTooSlow
		return n, w.err
	}
	if mem != nil {
		mem.n -= adopt
	}
	if buf == nil {
		rest = append([]byte(nil), rest...)
	}
	w.held += size
	if w.queued == 0 {
		w.since = time.Now()
	}
	w.queue = append(w.queue, rest)
	w.queued += len(rest)
	if !w.draining {
		w.draining, w.drained = true, make(chan struct{})
		go w.drain()
	}
	return len(p), nil
}

// backlogged reports whether w holds what its socket has not taken yet.
func (w *pushWire) backlogged() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.draining
}

// settle waits until what is queued is written out, or w fails (a queue
// not taken within maxLag fails it), or ctx ends. A connection's own
// writer settles before each message it reads for it: so a client behind
// (its history, page after page) is sent a page as it takes the one
// before, instead of a queue of pages that outgrows its bound.
// It returns why w failed, if it did (or ctx's error): nothing more is
// worth building for it.
func (w *pushWire) settle(ctx context.Context) error {
	w.mu.Lock()
	drained, err := w.drained, w.err
	w.mu.Unlock()
	if drained != nil {
		select {
		case <-drained:
		case <-ctx.Done():
			return ctx.Err()
		}
		w.mu.Lock()
		err = w.err
		w.mu.Unlock()
	}
	return err
}

// drain writes the queue out, waiting for the client, until it is empty;
// a queue that is not written within maxLag of being queued cuts the
// connection.
func (w *pushWire) drain() {
	for {
		w.mu.Lock()
		if w.queued == 0 || w.err != nil {
			w.draining = false
			close(w.drained)
			w.drained = nil
			closing := w.closing && w.err == nil // (a failed write closed w)
			w.mu.Unlock()
			if closing {
				w.Close()
			}
			return
		}
		out, held := w.queue, w.held
		w.queue, w.queued, w.held = nil, 0, 0
		deadline := w.since.Add(w.maxLag)
		w.mu.Unlock()

		_ = w.Conn.SetWriteDeadline(deadline)
		_, err := out.WriteTo(w.Conn)
		if err == nil { // a write now, once the queue is empty, has no deadline to pass
			_ = w.Conn.SetWriteDeadline(time.Time{})
		}

		if held > 0 {
			w.budget.give(held)
		}
		w.mu.Lock()
		if err != nil && w.err == nil {
			w.err = err
		}
		failed := w.err != nil
		w.mu.Unlock()
		if failed {
			w.Close()
		}
	}
}

// Close closes the connection and gives back the memory of what was not
// written. But the WebSocket's close frame, once written, is sent, and
// what is queued before it: an endpoint answers a close with a close (RFC
// 6455, 5.5.1), and the client reads on until it gets it. So while drain
// writes it out, Close leaves the connection to drain to close, once it
// is written or has failed (within maxLag), and nothing more is written.
func (w *pushWire) Close() error {
	w.mu.Lock()
	if w.closeSent && w.draining && w.err == nil {
		w.closing = true
		w.mu.Unlock()
		return nil
	}
	if w.err == nil {
		w.err = net.ErrClosed
	}
	if w.held > 0 {
		w.budget.give(w.held)
	}
	w.queue, w.queued, w.held = nil, 0, 0
	w.mu.Unlock()
	return w.Conn.Close()
}
