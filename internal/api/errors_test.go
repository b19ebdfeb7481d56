package api_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/goeventstream/eventstream/internal/api"
	"github.com/goeventstream/eventstream/internal/protocol"
	"github.com/goeventstream/eventstream/internal/stream"
)

// TestErrorStatusIsTheCodes: every error is answered with its code's
// status (protocol.Status). A foreign origin's upgrade has a code of its
// own: it was 403 bad_request, where bad_request is 400 everywhere else.
func TestErrorStatusIsTheCodes(t *testing.T) {
	h := newHarness(t, func(c *api.Config, _ *stream.Config) { c.CORSOrigins = []string{"https://game.example"} })
	rec := h.do(http.MethodGet, "/s/alice/0", "", "Upgrade", "websocket", "Connection", "Upgrade",
		"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version", "13", "Origin", "https://other.example")
	require.Equal(t, http.StatusForbidden, rec.Code, rec.Body.String())
	assert.Equal(t, protocol.CodeBadOrigin, errorCode(t, rec).Code)

	rec = h.do(http.MethodGet, "/s/alice/x", "")
	assert.Equal(t, protocol.Status(protocol.CodeBadTick), rec.Code)
	assert.Equal(t, protocol.CodeBadTick, errorCode(t, rec).Code)
}
