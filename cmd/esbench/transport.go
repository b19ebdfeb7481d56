package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// directTransport is an http.RoundTripper for one client: one keep-alive
// connection, written and read on the caller's goroutine. net/http's
// Transport hands every request to two goroutines of its own per
// connection; with thousands of clients on the machine under test, that
// costs esbench more CPU than the server it measures. The bytes on the wire
// are the same HTTP/1.1, written and parsed by net/http.
type directTransport struct {
	addr    string
	timeout time.Duration
	bytes   *atomic.Int64

	mu   sync.Mutex // held from a request until its body is closed
	conn net.Conn
	br   *bufio.Reader
	bw   *bufio.Writer
}

func (t *directTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	t.mu.Lock()
	resp, err := t.roundTrip(req)
	if err != nil {
		t.drop()
		t.mu.Unlock()
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, err
	}
	resp.Body = &directBody{ReadCloser: resp.Body, t: t}
	return resp, nil
}

func (t *directTransport) roundTrip(req *http.Request) (*http.Response, error) {
	if t.conn == nil {
		d := net.Dialer{Timeout: t.timeout}
		conn, err := d.DialContext(req.Context(), "tcp", t.addr)
		if err != nil {
			return nil, err
		}
		t.conn, t.br, t.bw = conn, bufio.NewReaderSize(conn, 16<<10), bufio.NewWriterSize(conn, 4<<10)
	}
	deadline := time.Now().Add(t.timeout)
	if d, ok := req.Context().Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := t.conn.SetDeadline(deadline); err != nil {
		return nil, err
	}
	stop := context.AfterFunc(req.Context(), func() { _ = t.conn.SetDeadline(time.Now()) })
	defer stop()
	if err := req.Write(t.bw); err != nil {
		return nil, err
	}
	if err := t.bw.Flush(); err != nil {
		return nil, err
	}
	return http.ReadResponse(t.br, req)
}

// drop closes the connection after an error; the next request dials anew.
func (t *directTransport) drop() {
	if t.conn != nil {
		t.conn.Close()
		t.conn = nil
	}
}

// close closes the connection.
func (t *directTransport) close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.drop()
}

// directBody counts the bytes of a reply and frees the connection when the
// body is closed; a body not read to its end spoils the connection.
type directBody struct {
	io.ReadCloser
	t    *directTransport
	eof  bool
	done bool
}

func (b *directBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.t.bytes.Add(int64(n))
	if err == io.EOF {
		b.eof = true
	}
	return n, err
}

func (b *directBody) Close() error {
	if b.done {
		return nil
	}
	b.done = true
	err := b.ReadCloser.Close()
	if !b.eof || err != nil {
		b.t.drop()
	}
	b.t.mu.Unlock()
	return err
}
