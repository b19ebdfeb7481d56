// Command serve serves Gem Rush, the browser demo of examples/web, beside
// an eventstreamd: the page and its bundle from -dir (built by
// `make demo`), and /config.js, which tells the page where the server is.
//
//	go run ./examples/web/serve -demo-addr 127.0.0.1:8080 -eventstreamd-url http://localhost:9922
//
// Every flag can also be set from the environment: DEMO_ADDR,
// EVENTSTREAMD_URL, DEMO_DIR. The page picks its stream from its ?stream=
// query (default demo).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "serve:", err)
		os.Exit(1)
	}
}

// Config is what the demo server needs.
type Config struct {
	Addr      string // where the page is served
	ServerURL string // the eventstreamd the page talks to
	Dir       string // the built page: index.html and its bundle
}

// Validate checks c.
func (c Config) Validate() error {
	u, err := url.Parse(c.ServerURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("the eventstreamd URL %q is not an http(s) URL with a host", c.ServerURL)
	}
	if _, err := os.Stat(filepath.Join(c.Dir, "index.html")); err != nil {
		return fmt.Errorf("no built page in %s (make demo builds it): %w", c.Dir, err)
	}
	return nil
}

func run(ctx context.Context, args []string, getenv func(string) string, out io.Writer) error {
	env := func(key, def string) string {
		if v := getenv(key); v != "" {
			return v
		}
		return def
	}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	var cfg Config
	fs.StringVar(&cfg.Addr, "demo-addr", env("DEMO_ADDR", "127.0.0.1:8080"), "address to serve the page on (env DEMO_ADDR)")
	fs.StringVar(&cfg.ServerURL, "eventstreamd-url", env("EVENTSTREAMD_URL", "http://localhost:9922"), "the eventstreamd the page plays on, as the browser reaches it (env EVENTSTREAMD_URL)")
	fs.StringVar(&cfg.Dir, "dir", env("DEMO_DIR", "examples/web/dist"), "the built page (env DEMO_DIR)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	l, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	if err := checkServer(ctx, cfg.ServerURL); err != nil {
		fmt.Fprintf(out, "WARNING: %v: is `make run` running? The page cannot play until it answers (EVENTSTREAMD_URL or -eventstreamd-url say where it is)\n", err)
	}
	srv := &http.Server{Handler: handler(cfg), ReadHeaderTimeout: 5 * time.Second}
	fmt.Fprintf(out, "Gem Rush on http://%s/ (playing on %s): open it in two tabs\n", l.Addr(), cfg.ServerURL)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(shut); err != nil {
			return err
		}
		if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	}
}

// checkServer asks the eventstreamd at serverURL for /healthz, so that a
// demo started without one says so at once rather than a page waiting
// for it forever. The demo serves the page either way: the server may
// come up later, and the page says when it cannot reach it.
func checkServer(ctx context.Context, serverURL string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	url := strings.TrimRight(serverURL, "/") + "/healthz"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("cannot reach eventstreamd at %s: %w", serverURL, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach eventstreamd at %s: %w", serverURL, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("cannot reach eventstreamd at %s: GET %s answered %s", serverURL, url, resp.Status)
	}
	return nil
}

// handler serves the page's files and /config.js.
func handler(cfg Config) http.Handler {
	conf, _ := json.Marshal(map[string]string{"server": cfg.ServerURL}) // strings only: cannot fail
	script := []byte("globalThis.gemRushConfig = " + string(conf) + ";\n")
	mux := http.NewServeMux()
	mux.HandleFunc("GET /config.js", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(script)
	})
	files := http.FileServer(http.Dir(cfg.Dir))
	mux.Handle("GET /", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache") // a rebuilt bundle is picked up on reload
		files.ServeHTTP(w, r)
	}))
	return mux
}
