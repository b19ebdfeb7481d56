package main

import "strings"

// mode is what esbench loads (-mode).
type mode string

const (
	// modeSync: the clients of -streams streams sync (or push), and every
	// client's order is verified at the end.
	modeSync mode = "sync"
	// modeFloor: the same syncs sent to the server's bare handler
	// (eventstreamd -bench-floor), the least a sync could cost over HTTP;
	// no stream stands behind them.
	modeFloor mode = "floor"
	// modeHealthz: GET /healthz in a closed loop, the baseline of what
	// the HTTP stack alone can do.
	modeHealthz mode = "healthz"
)

// valid reports whether m is one of the modes.
func (m mode) valid() bool { return m == modeSync || m == modeFloor || m == modeHealthz }

// hasStreams reports whether streams stand behind the requests, to be
// preloaded and verified.
func (m mode) hasStreams() bool { return m == modeSync }

// baseURL returns where the clients of m send their requests, given the
// server's URL.
func (m mode) baseURL(url string) string {
	if m == modeFloor {
		return strings.TrimSuffix(url, "/") + "/_floor"
	}
	return url
}

// transport is how the clients exchange with the server (-transport).
type transport string

const (
	// transportPoll: a sync every 1/-rate s.
	transportPoll transport = "poll"
	// transportPush: a WebSocket each; -rate paces their events.
	transportPush transport = "push"
)
