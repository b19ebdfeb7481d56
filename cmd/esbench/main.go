// Command esbench puts load on an eventstreamd and measures it: N streams
// of M clients each, syncing through pkg/esclient over real HTTP, open
// loop at a given rate or closed loop as fast as the server answers.
//
//	esbench -url http://127.0.0.1:9922 -streams 500 -clients 4 -rate 5 -duration 30s
//
// It reports syncs per second, errors by kind, sync latency (p50, p90,
// p99, max; from the moment each sync was due, so a slow server cannot
// hide its queueing), event delivery latency (from a post to another
// client receiving it) and bytes per reply. At the end it checks that every
// client of a stream saw one identical order and every accepted event
// exactly once, and exits 1 if not.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "esbench:", err)
		os.Exit(1)
	}
}
