package esclient

import (
	"context"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestBackoffGrowsAndIsCapped(t *testing.T) {
	c, err := New(Config{BaseURL: "http://127.0.0.1:1", Stream: "s", PrivateID: "p",
		SyncInterval: 100 * time.Millisecond, MaxBackoff: 2 * time.Second})
	require.NoError(t, err)
	for failures := 1; failures <= 40; failures++ {
		ceiling := min(2*time.Second, 100*time.Millisecond<<min(failures, 30))
		var largest time.Duration
		for range 200 {
			d := c.backoff(failures, false)
			require.Positive(t, d)
			require.LessOrEqual(t, d, ceiling+time.Millisecond, "failure %d", failures)
			largest = max(largest, d)
		}
		// Full jitter spreads the waits over the whole range.
		assert.Greater(t, largest, ceiling/2, "failure %d", failures)
	}
}

func TestBackoffIsShortWhileTheServerRestarts(t *testing.T) {
	c, err := New(Config{BaseURL: "http://127.0.0.1:1", Stream: "s", PrivateID: "p"})
	require.NoError(t, err)
	for failures := 1; failures <= 40; failures++ {
		for range 50 {
			require.LessOrEqual(t, c.backoff(failures, true), RestartBackoff+time.Millisecond)
		}
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close()) // nothing listens there now: connections are refused
	c, err = New(Config{BaseURL: "http://" + addr, Stream: "s", PrivateID: "p"})
	require.NoError(t, err)
	_, err = c.Sync(context.Background())
	require.Error(t, err)

	tests := []struct {
		name string
		give error
		want bool
	}{
		{name: "connection refused", give: err, want: true},
		{name: "a proxy with no server", give: &Error{Status: http.StatusBadGateway}, want: true},
		{name: "a proxy's 503", give: &Error{Status: http.StatusServiceUnavailable}, want: true},
		{name: "eventstreamd's own 503", give: &Error{Status: http.StatusServiceUnavailable, Code: "store_unavailable"}, want: false},
		{name: "a timeout", give: context.DeadlineExceeded, want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { assert.Equal(t, tt.want, restarting(tt.give)) })
	}
}
