//go:build !unix

package api

import (
	"errors"
	"syscall"
)

// canWriteNow: elsewhere, every write to a push connection waits.
const canWriteNow = false

func writeNow(syscall.RawConn, []byte) (int, error) {
	return 0, errors.New("writing without waiting needs a unix socket")
}
