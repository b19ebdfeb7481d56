package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestConfigValidate(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "index.html"), []byte("<!doctype html>"), 0o644))
	for _, tt := range []struct {
		name    string
		give    Config
		wantErr bool
	}{
		{"good", Config{ServerURL: "http://localhost:9922", Dir: dir}, false},
		{"https", Config{ServerURL: "https://games.example:443", Dir: dir}, false},
		{"no scheme", Config{ServerURL: "localhost:9922", Dir: dir}, true},
		{"websocket scheme", Config{ServerURL: "ws://localhost:9922", Dir: dir}, true},
		{"no host", Config{ServerURL: "http://", Dir: dir}, true},
		{"page not built", Config{ServerURL: "http://localhost:9922", Dir: t.TempDir()}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.give.Validate()
			if tt.wantErr {
				require.Error(t, err)
			} else {
				require.NoError(t, err)
			}
		})
	}
}

// TestHandler serves the page's files and a config.js that tells the
// page where eventstreamd is, as a JS string whatever the URL holds.
func TestHandler(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "index.html"), []byte("<!doctype html>page"), 0o644))
	srv := httptest.NewServer(handler(Config{ServerURL: `http://localhost:9922/"</script>`, Dir: dir}))
	defer srv.Close()

	for _, tt := range []struct {
		path, wantType, wantBody string
	}{
		{"/config.js", "text/javascript; charset=utf-8", "globalThis.gemRushConfig = {\"server\":\"http://localhost:9922/\\\"\\u003c/script\\u003e\"};\n"},
		{"/", "text/html; charset=utf-8", "<!doctype html>page"},
	} {
		resp, err := http.Get(srv.URL + tt.path)
		require.NoError(t, err)
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		assert.Equal(t, http.StatusOK, resp.StatusCode, tt.path)
		assert.Equal(t, tt.wantType, resp.Header.Get("Content-Type"), tt.path)
		assert.Equal(t, tt.wantBody, string(body), tt.path)
	}
}

func TestRunRefusesBadConfig(t *testing.T) {
	getenv := func(k string) string {
		return map[string]string{"EVENTSTREAMD_URL": "localhost:9922", "DEMO_DIR": t.TempDir()}[k]
	}
	err := run(context.Background(), []string{"-demo-addr", "127.0.0.1:0"}, getenv, io.Discard)
	require.ErrorContains(t, err, "not an http(s) URL")
}

// deadURL returns the URL of a loopback port nothing listens on.
func deadURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	url := "http://" + l.Addr().String()
	require.NoError(t, l.Close())
	return url
}

func TestCheckServer(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
		}
	}))
	defer up.Close()
	notEventstreamd := httptest.NewServer(http.NotFoundHandler())
	defer notEventstreamd.Close()
	dead := deadURL(t)

	require.NoError(t, checkServer(context.Background(), up.URL))
	require.NoError(t, checkServer(context.Background(), up.URL+"/"))
	assert.ErrorContains(t, checkServer(context.Background(), dead), "cannot reach eventstreamd at "+dead)
	assert.ErrorContains(t, checkServer(context.Background(), notEventstreamd.URL), "answered 404")
}

// TestRunWarnsWithoutEventstreamd: a demo started with no eventstreamd at
// EVENTSTREAMD_URL says so before it serves the page.
func TestRunWarnsWithoutEventstreamd(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "index.html"), []byte("<!doctype html>"), 0o644))
	dead := deadURL(t)
	getenv := func(k string) string { return map[string]string{"EVENTSTREAMD_URL": dead, "DEMO_DIR": dir}[k] }
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"-demo-addr", "127.0.0.1:0"}, getenv, pw) }()
	var lines []string
	for sc := bufio.NewScanner(pr); sc.Scan(); {
		lines = append(lines, sc.Text())
		if strings.HasPrefix(sc.Text(), "Gem Rush on") {
			break // serving
		}
	}
	cancel()
	require.NoError(t, <-done)
	require.Len(t, lines, 2, "a warning, then the page's address")
	assert.Contains(t, lines[0], "WARNING: cannot reach eventstreamd at "+dead)
	assert.Contains(t, lines[0], "is `make run` running?")
}
