// Command eventstreamd serves shared, ordered event streams with a common
// tick clock to the clients of deterministic lockstep games.
//
// See README.md for its flags and docs/protocol.md for the protocol.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// version is stamped at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "eventstreamd:", err)
		os.Exit(1)
	}
}
