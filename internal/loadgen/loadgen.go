// Package loadgen holds what the load generators share, esbench
// (cmd/esbench) and the Centrifugo client of the side-by-side comparison
// (scripts/compare): the body of a measured event, which carries when it
// was sent, and a process's CPU time, read from /proc so that two
// different servers are measured the same way. It is safe for concurrent
// use.
package loadgen

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Body returns the body of the seq-th event of client idx, sent now:
// "c<idx>.<seq>.<Unix nanoseconds>." padded with dots to size bytes.
// Its first two fields are the event's id.
func Body(idx, seq, size int) string {
	b := fmt.Sprintf("c%d.%d.%d.", idx, seq, time.Now().UnixNano())
	return b + strings.Repeat(".", max(size-len(b), 0))
}

// SentAt reads the send time, in Unix nanoseconds, from a Body.
func SentAt(body string) (int64, bool) {
	_, rest, ok := strings.Cut(body, ".")
	if !ok {
		return 0, false
	}
	_, rest, ok = strings.Cut(rest, ".")
	if !ok {
		return 0, false
	}
	digits, _, _ := strings.Cut(rest, ".")
	ns, err := strconv.ParseInt(digits, 10, 64)
	return ns, err == nil
}

// clockTick is the unit of the CPU times of /proc/<pid>/stat (USER_HZ,
// 100 on every Linux architecture Go supports).
const clockTick = 10 * time.Millisecond

// ProcessCPU returns the user and system CPU time process pid has used,
// from /proc/<pid>/stat, to 10 ms.
func ProcessCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command's name, in parentheses, may hold spaces: the fields
	// are counted after its closing one. utime and stime are fields 14
	// and 15 of the line, 12 and 13 after the name.
	i := strings.LastIndexByte(string(b), ')')
	var f []string
	if i >= 0 {
		f = strings.Fields(string(b[i+1:]))
	}
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected form", pid)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected form", pid)
	}
	return time.Duration(utime+stime) * clockTick, nil
}

// OwnCPU returns the user and system CPU time this process has used, to
// the microsecond.
func OwnCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Sleep waits for d, and reports false if ctx ended first.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
