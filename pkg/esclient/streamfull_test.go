package esclient_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/goeventstream/eventstream/internal/stream"
	"github.com/goeventstream/eventstream/pkg/esclient"
)

// TestAFullStreamStopsPostingNotReading: a stream that refuses more events
// (stream_full) stops the client's posting, not its reading: Run goes on
// bringing the stream, and Send returns the server's error as a value
// (main returned it from Run, and the game stopped).
func TestAFullStreamStopsPostingNotReading(t *testing.T) {
	for _, transport := range []esclient.Transport{esclient.Poll, esclient.Push} {
		t.Run(transport.String(), func(t *testing.T) {
			srv := newServer(t, func(c *stream.Config) { c.MaxStreamBytes = 2048 })
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			go func() { // the server's ticks go on
				for ctx.Err() == nil {
					srv.tick()
					time.Sleep(2 * time.Millisecond)
				}
			}()
			c := newClient(t, srv.URL, "p", withHTTP(httpClient(t)), func(c *esclient.Config) { c.Transport = transport })

			body := strings.Repeat("x", 200)
			var afterFull []int64
			err := c.Run(ctx, func(u esclient.Update) {
				if c.PostErr() == nil {
					_ = c.Send("move", body)
					return
				}
				afterFull = append(afterFull, u.T)
				if len(afterFull) >= 5 {
					cancel()
				}
			})
			require.ErrorIs(t, err, context.Canceled, "Run went on after the stream was full")
			require.Len(t, afterFull, 5)
			assert.Greater(t, afterFull[4], afterFull[0], "the stream was read on")

			var se *esclient.Error
			require.ErrorAs(t, c.Send("move", "more"), &se)
			assert.Equal(t, "stream_full", se.Code)
			assert.ErrorAs(t, c.PostErr(), &se)
			assert.Zero(t, c.Pending(), "what could not be posted was dropped")
		})
	}
}
