package api

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/goeventstream/eventstream/internal/stream"
)

// BenchmarkPushSend measures a push connection's send of one message of
// events, framed and written to a loopback socket that a client reads
// all along, with the default -ws-write-buffer: a tick's push (small),
// and a page of history (1 MiB), which the socket does not take at once
// and which is queued.
func BenchmarkPushSend(b *testing.B) {
	for _, size := range []int{128, 4 << 10, 1 << 20} {
		b.Run(fmt.Sprintf("events=%d", size), func(b *testing.B) {
			budget := newBudget(64<<20, 0)
			w, client := wirePair(b, budget, 4<<20, time.Minute)
			if err := w.Conn.(*net.TCPConn).SetWriteBuffer(DefaultPushConfig().WriteBuffer); err != nil {
				b.Fatal(err)
			}
			go func() { _, _ = io.Copy(io.Discard, client) }()
			c := &pushConn{wire: w}
			events := []byte(strings.Repeat("x", size))
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				res := stream.SyncResult{T: 1, Epoch: "e", TickRate: 20, Events: events}
				mem, _ := budget.tryHold(pushBytes(&res))
				if err := c.send(&res, &mem); err != nil {
					b.Fatal(err)
				}
				mem.release()
				if err := w.settle(context.Background()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
