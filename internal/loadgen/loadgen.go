// Package loadgen holds what the load generators share, esbench
// (cmd/esbench) and the Centrifugo client of the side-by-side comparison
// (scripts/compare): the body of a measured event, which carries when it
// was sent; a process's CPU time, read from /proc so that two different
// servers are measured the same way; and the report's latencies and
// verification. Its functions are safe for concurrent use; a
// Verification is one goroutine's.
package loadgen

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
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

// Latency is a distribution of latencies, in milliseconds.
type Latency struct {
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
	N   int64   `json:"count"`
}

// Latencies summarizes h, whose values are microseconds.
func Latencies(h *hdrhistogram.Histogram) Latency {
	ms := func(us int64) float64 { return float64(us) / 1000 }
	return Latency{
		P50: ms(h.ValueAtQuantile(50)), P90: ms(h.ValueAtQuantile(90)),
		P99: ms(h.ValueAtQuantile(99)), Max: ms(h.Max()), N: h.TotalCount(),
	}
}

// Verification is what a generator found when it checked a run's promise:
// every client saw one order, every accepted event exactly once.
type Verification struct {
	Checked  bool     `json:"checked"`
	Clients  int      `json:"clients"`
	Events   int      `json:"events"`
	Problems []string `json:"problems"`
}

// Problem records a problem; the first 20 are kept.
func (v *Verification) Problem(format string, args ...any) {
	if len(v.Problems) < 20 {
		v.Problems = append(v.Problems, fmt.Sprintf(format, args...))
	}
}

// CheckOnce checks the events of one stream, where (for the problems it
// records), by id (the first two fields of a Body) and how many times the
// stream holds each: each once, and each sent, sent being how many events
// each client ("c<idx>") had sent, accepted or not.
func (v *Verification) CheckOnce(where string, count, sent map[string]int) {
	for id, n := range count {
		if n != 1 {
			v.Problem("%s: event %s appears %d times", where, id, n)
		}
		tag, seq, _ := strings.Cut(id, ".")
		if k, _ := strconv.Atoi(seq); k >= sent[tag] {
			v.Problem("%s: event %s was never sent", where, id)
		}
	}
}

// EventID returns the id of a Body, "c<idx>.<seq>".
func EventID(body string) string {
	parts := strings.SplitN(body, ".", 3)
	if len(parts) < 3 {
		return body
	}
	return parts[0] + "." + parts[1]
}

// Output writes rep to w, as indented JSON or by its print, and returns
// an error naming the problems of v, if any.
func Output(w io.Writer, asJSON bool, rep any, print func(io.Writer), v Verification) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		print(w)
	}
	if len(v.Problems) > 0 {
		return fmt.Errorf("verification failed: %s", strings.Join(v.Problems, "; "))
	}
	return nil
}
