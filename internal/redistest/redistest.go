// Package redistest starts real redis-server processes for tests, and
// holds what every test's Redis store is configured with (Secret,
// KeyPrefix). Tests that need Redis skip, saying how to install it, when
// redis-server is not on PATH, unless EVENTSTREAMD_REQUIRE_REDIS=1 (as in
// CI), where they fail.
//
// It does not import internal/stream, whose own tests use it: a test
// builds its stream.RedisConfig from DefaultRedisConfig, the server's URL,
// Secret and, when several stores share a server, KeyPrefix.
package redistest

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/rueidis"
)

// Secret is the store secret of tests (stream.RedisConfig.Secret,
// -store-secret): long and varied enough to be accepted, and no
// placeholder.
const Secret = "test-secret-0123456789"

// KeyPrefix returns a Redis key prefix no other call returns, for a store
// that shares its server with others.
func KeyPrefix() string { return "t" + uuid.NewString()[:8] + ":" }

// Server is a redis-server started by a test.
type Server struct {
	Addr string
	Dir  string
	cmd  *exec.Cmd
	args []string
}

// Binary returns the path of redis-server, or skips t.
func Binary(t testing.TB) string {
	t.Helper()
	path, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("EVENTSTREAMD_REQUIRE_REDIS") == "1" {
			t.Fatal("redis-server is not on PATH and EVENTSTREAMD_REQUIRE_REDIS=1")
		}
		t.Skip("redis-server is not on PATH; install it (apt-get install redis-server) to run this test")
	}
	return path
}

// FreePort returns a TCP port on loopback that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Start starts a redis-server on a free port with the extra config lines
// given (such as "appendonly yes"), and stops it when the test ends.
func Start(t testing.TB, config ...string) *Server {
	t.Helper()
	return StartAt(t, FreePort(t), config...)
}

// StartAt is Start on the given port.
func StartAt(t testing.TB, port int, config ...string) *Server {
	t.Helper()
	bin := Binary(t)
	dir := t.TempDir()
	args := []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir,
		"--save", "", "--appendonly", "no", "--protected-mode", "no"}
	for _, line := range config {
		f := strings.Fields(line)
		args = append(args, "--"+f[0])
		args = append(args, f[1:]...)
	}
	s := &Server{Addr: "127.0.0.1:" + strconv.Itoa(port), Dir: dir, args: append([]string{bin}, args...)}
	s.start(t)
	t.Cleanup(s.Stop)
	return s
}

// URL returns the server's redis:// URL.
func (s *Server) URL() string { return "redis://" + s.Addr }

// Client returns a client of the server, for a test to look at or change
// what a store keeps; it is closed when the test ends.
func (s *Server) Client(t testing.TB) rueidis.Client {
	t.Helper()
	c, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{s.Addr}, DisableCache: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func (s *Server) start(t testing.TB) {
	t.Helper()
	s.cmd = exec.Command(s.args[0], s.args[1:]...)
	s.cmd.Stdout = &logWriter{t: t}
	s.cmd.Stderr = &logWriter{t: t}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if ping(s.Addr) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("redis-server on %s did not start", s.Addr)
}

// Stop stops the server (SIGKILL) and waits for it.
func (s *Server) Stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
		s.cmd = nil
	}
}

// Freeze stops the server's process (SIGSTOP): its connections stay open
// and nothing answers, as when Redis hangs. Thaw lets it go on.
func (s *Server) Freeze(t testing.TB) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
}

// Thaw undoes Freeze (SIGCONT).
func (s *Server) Thaw(t testing.TB) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
}

// Restart stops the server and starts it again with the same arguments
// and data directory.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.Stop()
	s.start(t)
}

// ping reports whether a Redis answers PING at addr.
func ping(addr string) bool {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(time.Second))
	if _, err := fmt.Fprint(conn, "PING\r\n"); err != nil {
		return false
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	return err == nil && strings.HasPrefix(line, "+PONG")
}

// Path returns a file in the server's data directory.
func (s *Server) Path(name string) string { return filepath.Join(s.Dir, name) }

type logWriter struct{ t testing.TB }

func (w *logWriter) Write(p []byte) (int, error) { return len(p), nil }

// Cluster is a local Redis Cluster of masters with no replicas.
type Cluster struct {
	Nodes []*Server
}

// URL returns the address of one node; clients find the others from it.
func (c *Cluster) URL() string { return c.Nodes[0].URL() }

// StartCluster starts n redis-servers in cluster mode and joins them with
// redis-cli --cluster create.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		Binary(t) // skips or fails as for redis-server
		t.Fatal("redis-cli is not on PATH")
	}
	c := &Cluster{}
	args := []string{"--cluster", "create"}
	for range n {
		s := Start(t, "cluster-enabled yes", "cluster-config-file nodes.conf", "cluster-node-timeout 5000")
		c.Nodes = append(c.Nodes, s)
		args = append(args, s.Addr)
	}
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	out, err := exec.Command(cli, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		ok := true
		for _, s := range c.Nodes {
			out, err := exec.Command(cli, "-h", "127.0.0.1", "-p", strings.TrimPrefix(s.Addr, "127.0.0.1:"), "cluster", "info").Output()
			if err != nil || !strings.Contains(string(out), "cluster_state:ok") {
				ok = false
			}
		}
		if ok {
			return c
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("the cluster did not reach cluster_state:ok")
	return nil
}
