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
	queue     []byte        // what the socket has not taken yet, in order
	spare     []byte        // the queue's other buffer, while one is written out
	since     time.Time     // when the oldest byte of queue was queued
	held      int64         // in-flight memory held for queue and what is being written out
	draining  bool          // drain is writing out; queue only grows meanwhile
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

// Write writes p, or queues what the socket does not take at once. The
// WebSocket writes its control frames with it (pings, pongs, the close
// frame), each whole in one call: it writes no message (writeText does).
func (w *pushWire) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if isCloseFrame(p) {
		w.closeSent = true
	}
	return w.write(p, nil)
}

// writeText writes a text message of payload, framed (RFC 6455, 5.2) in
// one write, unless the close frame was written. What is queued of it
// takes over the in-flight memory mem holds for it (nil: none), then
// takes more if it needs.
func (w *pushWire) writeText(payload []byte, mem *held) error {
	buf := replyBufs.Get().(*[]byte)
	defer putReplyBuf(buf)
	frame := append(appendFrameHead((*buf)[:0], len(payload)), payload...)
	*buf = frame
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closeSent {
		return errCloseSent
	}
	_, err := w.write(frame, mem)
	return err
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
// memory mem holds (nil: none) as far as it goes. w.mu is held.
func (w *pushWire) write(p []byte, mem *held) (int, error) {
	if w.raw == nil { // waits, at most maxLag, as the operating system's time goes
		_ = w.Conn.SetWriteDeadline(time.Now().Add(w.maxLag))
		return w.Conn.Write(p)
	}
	if w.err != nil {
		return 0, w.err
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
	var adopt int64 // of mem's, which p was made in
	if mem != nil {
		adopt = min(int64(len(rest)), mem.n)
	}
	// (More memory is taken only if needed: a semaphore with waiters
	// refuses even none.)
	if need := int64(len(rest)) - adopt; len(w.queue)+len(rest) > w.maxQueue || need > 0 && !w.budget.sem.TryAcquire(need) {
		w.err = errTooSlow
		return n, w.err
	}
	if mem != nil {
		mem.n -= adopt
	}
	w.held += int64(len(rest))
	if len(w.queue) == 0 {
		w.since = time.Now()
	}
	w.queue = append(w.queue, rest...)
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
		if len(w.queue) == 0 || w.err != nil {
			w.draining = false
			close(w.drained)
			w.drained = nil
			w.mu.Unlock()
			return
		}
		out := w.queue
		w.queue, w.spare = w.spare[:0], nil
		deadline := w.since.Add(w.maxLag)
		w.mu.Unlock()

		_ = w.Conn.SetWriteDeadline(deadline)
		_, err := w.Conn.Write(out)
		if err == nil { // a write now, once the queue is empty, has no deadline to pass
			_ = w.Conn.SetWriteDeadline(time.Time{})
		}

		w.mu.Lock()
		w.give(int64(len(out)))
		if cap(out) <= pushQueueSlack { // a larger one is the memory of a moment behind: not kept
			w.spare = out[:0]
		}
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

// give gives back n bytes of the in-flight memory w holds. w.mu is held.
func (w *pushWire) give(n int64) {
	n = min(n, w.held)
	if n > 0 {
		w.held -= n
		w.budget.give(n)
	}
}

// Close closes the connection and gives back the memory of what was not
// written.
func (w *pushWire) Close() error {
	w.mu.Lock()
	if w.err == nil {
		w.err = net.ErrClosed
	}
	w.give(int64(len(w.queue)))
	w.queue = nil
	w.mu.Unlock()
	return w.Conn.Close()
}
