package apitest

import (
	"bufio"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/goeventstream/eventstream/internal/redistest"
)

// built is the binary Binary built, once per test process; its directory
// is left in the system's temporary directory, as go test's own.
var built struct {
	once sync.Once
	path string
	err  error
}

// Binary builds cmd/eventstreamd, once per test process, from the module
// this file belongs to (with its go.mod, whichever module the test is in),
// and returns its path. It skips tb with -short.
func Binary(tb testing.TB) string {
	tb.Helper()
	if testing.Short() {
		tb.Skip("builds and runs the eventstreamd binary; skipped with -short")
	}
	built.once.Do(func() {
		_, file, _, ok := runtime.Caller(0)
		if !ok {
			built.err = errors.New("apitest: cannot find its own source to find the module")
			return
		}
		dir, err := os.MkdirTemp("", "eventstreamd-apitest-")
		if err != nil {
			built.err = err
			return
		}
		built.path = filepath.Join(dir, "eventstreamd")
		cmd := exec.Command("go", "build", "-o", built.path, "./cmd/eventstreamd")
		cmd.Dir = filepath.Join(filepath.Dir(file), "..", "..")
		if out, err := cmd.CombinedOutput(); err != nil {
			built.err = fmt.Errorf("go build ./cmd/eventstreamd: %v\n%s", err, out)
		}
	})
	if built.err != nil {
		tb.Fatal(built.err)
	}
	return built.path
}

// Process is the eventstreamd binary running for a test.
type Process struct {
	// Addr is where it listens, 127.0.0.1:port.
	Addr string
	cmd  *exec.Cmd
	logs *lines
	done chan struct{} // closed when its stderr is read to the end
	err  error         // cmd.Wait's, once done is closed
}

// StartBinary runs the binary on a free loopback port with -drain-delay 0
// and args (which win), and env ("KEY=value") added to the test's
// environment. It returns once /readyz answers 200, that is once the
// store is open, and kills the process when the test ends; its log is
// shown if the test failed.
func StartBinary(tb testing.TB, env []string, args ...string) *Process {
	tb.Helper()
	bin := Binary(tb)
	p := &Process{Addr: "127.0.0.1:" + strconv.Itoa(redistest.FreePort(tb)), logs: &lines{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, append([]string{"-addr", p.Addr, "-drain-delay", "0"}, args...)...)
	p.cmd.Env = append(os.Environ(), env...)
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			p.logs.add(sc.Text())
		}
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	tb.Cleanup(func() {
		p.Kill()
		if tb.Failed() {
			tb.Logf("eventstreamd on %s logged:\n%s", p.Addr, p.Logs())
		}
	})
	p.waitReady(tb)
	return p
}

// URL returns the process's base URL, http://127.0.0.1:port.
func (p *Process) URL() string { return "http://" + p.Addr }

// Logs returns what the process has logged so far, one line a line.
func (p *Process) Logs() string { return p.logs.all() }

// Kill stops the process at once (SIGKILL) and waits for it.
func (p *Process) Kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// Signal sends sig to the process.
func (p *Process) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// Terminate asks the process to stop (SIGTERM), waits up to timeout for
// it to exit, and returns how it exited: nil for status 0.
func (p *Process) Terminate(timeout time.Duration) error {
	if err := p.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		return fmt.Errorf("no exit within %v of SIGTERM", timeout)
	}
}

// waitReady waits until /readyz answers 200, or fails tb if the process
// exits first or takes more than 30 s.
func (p *Process) waitReady(tb testing.TB) {
	tb.Helper()
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			tb.Fatalf("eventstreamd exited before it was ready (%v); it logged:\n%s", p.err, p.Logs())
		default:
		}
		if resp, err := client.Get(p.URL() + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	tb.Fatalf("eventstreamd was not ready within 30 s; it logged:\n%s", p.Logs())
}

// lines is a log, safe for one writer and many readers.
type lines struct {
	mu sync.Mutex
	l  []string
}

func (l *lines) add(line string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.l = append(l.l, line)
}

func (l *lines) all() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.l, "\n")
}
