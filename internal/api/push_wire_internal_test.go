package api

import (
	"bytes"
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// wirePair returns a pushWire on the server end of a loopback TCP
// connection with a small send buffer, and the client's end.
func wirePair(t testing.TB, b *budget, maxQueue int, maxLag time.Duration) (*pushWire, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	t.Cleanup(func() { client.Close() })
	server, err := ln.Accept()
	require.NoError(t, err)
	require.NoError(t, server.(*net.TCPConn).SetWriteBuffer(4<<10))
	w := newPushWire(server, b, maxQueue, maxLag)
	t.Cleanup(func() { w.Close() })
	require.True(t, w.nonBlocking(), "a TCP socket is written without waiting")
	return w, client
}

// message is a message of payload, as push connections build them.
func message(payload []byte) *[]byte {
	b := messageBuf(len(payload))
	*b = append(*b, payload...)
	return b
}

// free reports whether all of b's n bytes are free.
func free(b *budget, n int64) bool {
	if !b.sem.TryAcquire(n) {
		return false
	}
	b.sem.Release(n)
	return true
}

// TestPushWireNeverWaits: writes to a client that reads nothing all
// return at once (were one to wait, this test would never end), and the
// client then reads every byte, in order; the memory the queue held is
// given back once it is written.
func TestPushWireNeverWaits(t *testing.T) {
	const total = 2 << 20
	b := newBudget(8<<20, 0)
	w, client := wirePair(t, b, 4<<20, time.Minute)
	var sent bytes.Buffer
	for i := 0; sent.Len() < total; i++ {
		chunk := bytes.Repeat([]byte{byte(i)}, 1000+i%7000)
		n, err := w.Write(chunk)
		require.NoError(t, err)
		require.Equal(t, len(chunk), n)
		sent.Write(chunk)
	}
	w.mu.Lock()
	queued := len(w.queue)
	w.mu.Unlock()
	require.Positive(t, queued, "the socket could not take 2 MiB at once: the rest was queued")
	require.False(t, free(b, 8<<20), "what is queued holds in-flight memory")

	got := make([]byte, sent.Len())
	_, err := io.ReadFull(client, got)
	require.NoError(t, err)
	require.True(t, bytes.Equal(sent.Bytes(), got), "every byte, in the order written")
	require.Eventually(t, func() bool { return free(b, 8<<20) }, 10*time.Second, time.Millisecond,
		"the queue's memory is given back once written")

	// Once the queue is empty, writes go straight to the socket again.
	_, err = w.Write([]byte("after"))
	require.NoError(t, err)
	got = make([]byte, 5)
	_, err = io.ReadFull(client, got)
	require.NoError(t, err)
	require.Equal(t, "after", string(got))
}

// TestPushWireBounds: a client that reads nothing is cut once its queue
// would pass maxQueue, or the in-flight memory the server has, and the
// memory its queue held is given back when it is closed.
func TestPushWireBounds(t *testing.T) {
	for name, tc := range map[string]struct {
		budget   int64
		maxQueue int
	}{
		"its own bound":     {budget: 8 << 20, maxQueue: 64 << 10},
		"the server's room": {budget: 64 << 10, maxQueue: 8 << 20},
	} {
		t.Run(name, func(t *testing.T) {
			b := newBudget(tc.budget, 0)
			w, _ := wirePair(t, b, tc.maxQueue, time.Minute)
			chunk := make([]byte, 8<<10)
			var err error
			for i := 0; err == nil; i++ {
				require.Less(t, i, 10_000, "a client that reads nothing is cut")
				_, err = w.Write(chunk)
			}
			require.ErrorIs(t, err, errTooSlow)
			_, err = w.Write([]byte("x"))
			require.Error(t, err, "nothing more is written to a connection that was cut")
			require.NoError(t, w.Close())
			require.Eventually(t, func() bool { return free(b, tc.budget) }, 10*time.Second, time.Millisecond,
				"a closed connection's queue holds no memory")
		})
	}
}

// TestPushWireLag: a queue that a client does not take within maxLag cuts
// its connection.
func TestPushWireLag(t *testing.T) {
	b := newBudget(8<<20, 0)
	w, client := wirePair(t, b, 4<<20, 100*time.Millisecond)
	chunk := make([]byte, 64<<10)
	for {
		_, err := w.Write(chunk)
		require.NoError(t, err)
		w.mu.Lock()
		queued := len(w.queue) > 0 || w.draining
		w.mu.Unlock()
		if queued {
			break
		}
	}
	require.Eventually(t, func() bool {
		_, err := w.Write([]byte("x"))
		return err != nil
	}, 20*time.Second, 10*time.Millisecond, "the connection is cut after maxLag")
	require.Error(t, w.settle(context.Background()), "settle says it was cut: nothing more is built for it")
	require.NoError(t, client.SetReadDeadline(time.Now().Add(20*time.Second)))
	_, err := io.Copy(io.Discard, client)
	require.NoError(t, err, "the client reads what got through, then the end of the connection")
	require.Eventually(t, func() bool { return free(b, 8<<20) }, 10*time.Second, time.Millisecond)
}

// TestPushWireFrames: a message is one unmasked final text frame, its
// length in 7, 16 or 64 bits (RFC 6455, 5.2); once the WebSocket wrote its
// close frame, no message follows it.
func TestPushWireFrames(t *testing.T) {
	b := newBudget(8<<20, 0)
	w, client := wirePair(t, b, 4<<20, time.Minute)
	for _, tc := range []struct {
		n    int
		head []byte
	}{
		{5, []byte{0x81, 5}},
		{125, []byte{0x81, 125}},
		{126, []byte{0x81, 126, 0, 126}},
		{70_000, []byte{0x81, 127, 0, 0, 0, 0, 0, 1, 0x11, 0x70}},
	} {
		payload := bytes.Repeat([]byte{'x'}, tc.n)
		require.NoError(t, w.writeText(message(payload), nil))
		got := make([]byte, len(tc.head)+tc.n)
		_, err := io.ReadFull(client, got)
		require.NoError(t, err)
		require.Equal(t, tc.head, got[:len(tc.head)], "the head of %d bytes", tc.n)
		require.Equal(t, payload, got[len(tc.head):])
	}

	_, err := w.Write([]byte{0x88, 2, 0x03, 0xe8}) // close, 1000
	require.NoError(t, err)
	require.ErrorIs(t, w.writeText(message([]byte("late")), nil), errCloseSent, "no message after the close frame")
	_, err = w.Write([]byte{0x8a, 0}) // a pong still may
	require.NoError(t, err)
	got := make([]byte, 6)
	_, err = io.ReadFull(client, got)
	require.NoError(t, err)
	require.Equal(t, []byte{0x88, 2, 0x03, 0xe8, 0x8a, 0}, got)
}

// TestPushWireGivesBackItsBuffers: once a connection's queue is written
// out, it keeps no buffer of it, and holds no memory: a client that was
// behind once (its history's pages) does not keep a page or two of the
// server's memory for as long as it stays (a version kept both buffers the
// queue had grown, up to a page and 64 KiB each).
func TestPushWireGivesBackItsBuffers(t *testing.T) {
	b := newBudget(8<<20, 0)
	w, client := wirePair(t, b, 4<<20, time.Minute)
	page := bytes.Repeat([]byte{'x'}, 1<<20)
	for range 3 {
		require.NoError(t, w.writeText(message(page), nil))
	}
	require.True(t, w.backlogged(), "the socket did not take 3 MiB at once")
	go func() { _, _ = io.Copy(io.Discard, client) }()
	w.settle(context.Background())
	w.mu.Lock()
	defer w.mu.Unlock()
	require.False(t, w.draining)
	require.Nil(t, w.queue, "the buffers a written queue keeps")
	require.Zero(t, w.held)
	require.True(t, free(b, 8<<20))
}

// TestPushWireQueuesInTheMessagesMemory: what is queued of a message takes
// over the in-flight memory held for it, so a message that got its memory
// is never cut for want of more, even while others wait for memory; it is
// given back once written.
func TestPushWireQueuesInTheMessagesMemory(t *testing.T) {
	const total = 3 << 20
	b := newBudget(total, 0)
	w, client := wirePair(t, b, 4<<20, time.Minute)
	mem, ok := b.tryHold(total) // all the server has
	require.True(t, ok)
	ctx, cancel := context.WithCancel(context.Background())
	waited := make(chan error, 1)
	go func() { waited <- b.sem.Acquire(ctx, 1) }() // a read that waits for memory
	require.Eventually(t, func() bool { return !b.sem.TryAcquire(0) }, 10*time.Second, time.Millisecond,
		"the read waits (a semaphore with a waiter refuses even nothing)")
	defer cancel()
	page := bytes.Repeat([]byte{'x'}, 2<<20)
	require.NoError(t, w.writeText(message(page), &mem))
	require.True(t, w.backlogged(), "the socket did not take 2 MiB at once")
	require.Less(t, mem.n, int64(total), "the queue holds part of the message's memory")
	mem.release()
	go func() { _, _ = io.Copy(io.Discard, client) }()
	w.settle(context.Background())
	require.NoError(t, <-waited, "the read got its memory once the message's was given back")
	b.give(1)
	require.True(t, free(b, total), "all of it is given back once written")
}
