package api

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
)

// The buffers a push connection keeps for its life. net/http hands a
// hijacked connection a 4 KiB reader and a new 4 KiB writer, and the
// WebSocket keeps both: 8 KiB of an idle connection's memory. Pushes and
// client messages are small, and larger ones go around a buffer anyway
// (bufio writes and reads past its buffer directly), so small buffers cost
// no extra system call for the common message.
const (
	pushReadBuffer  = 512
	pushWriteBuffer = 1 << 10
)

// smallBuffers is a ResponseWriter whose Hijack returns the connection,
// as the pushWire that wire makes of it, with buffers of pushReadBuffer
// and pushWriteBuffer bytes, and keeps it in conn.
type smallBuffers struct {
	http.ResponseWriter
	wire func(net.Conn) *pushWire
	conn **pushWire
}

func (w smallBuffers) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w smallBuffers) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hc, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	nc := w.wire(hc)
	*w.conn = nc
	// What the client sent after its handshake, which net/http has read
	// already, is moved to the new reader: it is the client's first
	// message.
	n := brw.Reader.Buffered()
	sent, _ := brw.Reader.Peek(n)
	r := bufio.NewReaderSize(io.MultiReader(bytes.NewReader(bytes.Clone(sent)), nc), max(pushReadBuffer, n))
	if n > 0 {
		if _, err := r.Peek(n); err != nil {
			nc.Close()
			return nil, nil, err
		}
	}
	return nc, bufio.NewReadWriter(r, bufio.NewWriterSize(nc, pushWriteBuffer)), nil
}
