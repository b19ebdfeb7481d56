//go:build unix

package api

import (
	"os"
	"syscall"
)

// canWriteNow: a socket can be written without waiting (writeNow).
const canWriteNow = true

// writeSome writes w.out from w.wrote to fd until the socket takes no
// more, and never waits for room (the function of writeNow's
// RawConn.Write).
func (w *pushWire) writeSome(fd uintptr) bool {
	for w.wrote < len(w.out) {
		m, err := syscall.Write(int(fd), w.out[w.wrote:])
		if m > 0 {
			w.wrote += m
		}
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			return true // full: the rest is queued
		case err != nil:
			w.werr = os.NewSyscallError("write", err)
			return true
		case m <= 0:
			return true
		}
	}
	return true
}
