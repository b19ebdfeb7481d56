//go:build unix

package api

import (
	"os"
	"syscall"
)

// canWriteNow: a socket can be written without waiting (writeNow).
const canWriteNow = true

// writeNow writes what the socket of raw takes of p at once, without
// waiting for room: n < len(p) when its buffer is full.
func writeNow(raw syscall.RawConn, p []byte) (n int, err error) {
	var failed error
	if err := raw.Write(func(fd uintptr) bool {
		for n < len(p) {
			m, err := syscall.Write(int(fd), p[n:])
			if m > 0 {
				n += m
			}
			switch {
			case err == syscall.EINTR:
				continue
			case err == syscall.EAGAIN:
				return true // full: the rest is queued
			case err != nil:
				failed = os.NewSyscallError("write", err)
				return true
			case m <= 0:
				return true
			}
		}
		return true // never wait for room
	}); err != nil {
		return n, err
	}
	return n, failed
}
