package api_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/goeventstream/eventstream/internal/api"
	"github.com/goeventstream/eventstream/internal/protocol"
	"github.com/goeventstream/eventstream/internal/stream"
)

func hashHex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// TestHashReportsAreValidated: every malformed report is 400 bad_request
// and nothing of the request is applied.
func TestHashReportsAreValidated(t *testing.T) {
	h := newHarness(t)
	h.sync("/s/a/0", "")
	h.clock.Advance(2 * time.Second) // tick 41
	many := make([]string, 17)
	for i := range many {
		many[i] = fmt.Sprintf(`{"t":%d,"h":"ab"}`, i*20)
	}
	for _, tt := range []struct{ name, hashes, want string }{
		{"too many", strings.Join(many, ","), "at most 16"},
		{"not sealed for the client", `{"t":40,"h":"ab"}`, "below the last known tick 40"},
		{"not a checkpoint", `{"t":21,"h":"ab"}`, "multiple of the checkpoint interval"},
		{"negative", `{"t":-20,"h":"ab"}`, "checkpoint tick"},
		{"no tick", `{"h":"ab"}`, "checkpoint tick"},
		{"upper case", `{"t":20,"h":"AB"}`, "lowercase hex"},
		{"empty", `{"t":20,"h":""}`, "lowercase hex"},
		{"too long", `{"t":20,"h":"` + strings.Repeat("a", 65) + `"}`, "lowercase hex"},
		{"a repeat", `{"t":20,"h":"ab"},{"t":20,"h":"ab"}`, "repeats tick 20"},
		{"not a list", `"x"`, "must not be"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			body := `{"events":[{"type":"move","body":"x"}],"hashes":[` + tt.hashes + `]}`
			if tt.name == "not a list" {
				body = `{"events":[{"type":"move","body":"x"}],"hashes":` + tt.hashes + `}`
			}
			rec := h.do(http.MethodPost, "/s/a/40", body)
			require.Equal(t, http.StatusBadRequest, rec.Code, rec.Body.String())
			e := errorCode(t, rec)
			assert.Equal(t, protocol.CodeBadRequest, e.Code)
			assert.Contains(t, e.Message, tt.want)
		})
	}
	h.clock.Advance(time.Second)
	for _, x := range h.all("s", "a") {
		assert.NotEqual(t, "move", x.Type, "nothing applied")
	}
}

// TestCheckpointResources walks the checkpoint protocol over HTTP: hash
// reports, the snapshot asked for and checked, the snapshot served, a
// desync listed and its dumps uploaded and served.
func TestCheckpointResources(t *testing.T) {
	h := newHarness(t, func(_ *api.Config, c *stream.Config) { c.SnapshotEvery = 1 })
	h.sync("/s/a/0", "")
	h.sync("/s/b/0", "")
	h.sync("/s/c/0", "")
	h.clock.Advance(time.Second + 50*time.Millisecond) // tick 22
	state := []byte("the state at 20")
	good := hashHex(state)
	report := func(client, hash string) protocol.SyncReply {
		return h.sync("/s/"+client+"/21", `{"hashes":[{"t":20,"h":"`+hash+`"}]}`)
	}
	report("a", good)
	report("b", good)
	r := report("c", "bad0")
	assert.EqualValues(t, 20, r.Ckpt)
	require.NotNil(t, r.Dump, "c diverged")
	assert.EqualValues(t, 20, *r.Dump)

	// a agreed: asked for the snapshot and for the dump to compare with.
	r = h.sync("/s/a/21", "")
	require.NotNil(t, r.Snap)
	require.NotNil(t, r.Dump)
	assert.Contains(t, h.do(http.MethodGet, "/s/a/21", "").Body.String(), `"ckpt":20`)

	rec := h.do(http.MethodGet, "/s/snapshot", "")
	assert.Equal(t, http.StatusNotFound, rec.Code)
	assert.Equal(t, protocol.CodeNotFound, errorCode(t, rec).Code)

	rec = h.do(http.MethodPut, "/s/a/snapshot/20", "not the state")
	require.Equal(t, http.StatusConflict, rec.Code)
	assert.Equal(t, protocol.CodeSnapshotMismatch, errorCode(t, rec).Code)
	rec = h.do(http.MethodPut, "/s/nobody/snapshot/20", string(state))
	assert.Equal(t, http.StatusNotFound, rec.Code, "an unknown client")
	rec = h.do(http.MethodPut, "/s/a/snapshot/x", string(state))
	assert.Equal(t, http.StatusBadRequest, rec.Code)
	rec = h.do(http.MethodPut, "/s/a/snapshot/20", strings.Repeat("x", 4<<20+1))
	assert.Equal(t, http.StatusRequestEntityTooLarge, rec.Code)
	assert.Equal(t, protocol.CodeTooLarge, errorCode(t, rec).Code)

	rec = h.do(http.MethodPut, "/s/a/snapshot/20", string(state))
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	assert.JSONEq(t, `{"t":20,"stored":true}`, rec.Body.String())
	rec = h.do(http.MethodPut, "/s/a/snapshot/20", string(state))
	assert.JSONEq(t, `{"t":20,"stored":false}`, rec.Body.String(), "a retry: stored already")
	rec = h.do(http.MethodPut, "/s/b/snapshot/20", string(state))
	require.Equal(t, http.StatusForbidden, rec.Code, "b agreed but was not asked")
	assert.Equal(t, protocol.CodeForbidden, errorCode(t, rec).Code)

	rec = h.do(http.MethodGet, "/s/snapshot", "")
	require.Equal(t, http.StatusOK, rec.Code)
	assert.Equal(t, "application/octet-stream", rec.Header().Get("Content-Type"))
	assert.Equal(t, "20", rec.Header().Get("Eventstream-Tick"))
	assert.Equal(t, good, rec.Header().Get("Eventstream-Hash"))
	assert.Equal(t, r.Epoch, rec.Header().Get("Eventstream-Epoch"))
	assert.Equal(t, string(state), rec.Body.String())
	assert.Equal(t, http.StatusMethodNotAllowed, h.do(http.MethodPost, "/s/snapshot", "").Code)

	// The desync: c's and a's dumps.
	assert.Equal(t, http.StatusForbidden, h.do(http.MethodPut, "/s/b/dump/20", "b").Code, "b was not asked")
	assert.Equal(t, http.StatusNoContent, h.do(http.MethodPut, "/s/c/dump/20", "state of c").Code)
	assert.Equal(t, http.StatusNoContent, h.do(http.MethodPut, "/s/a/dump/20", "state of a").Code)
	rec = h.do(http.MethodGet, "/s/desyncs", "")
	require.Equal(t, http.StatusOK, rec.Code)
	assert.JSONEq(t, `{"desyncs":[{"t":20,"at":22,"hash":"`+good+`","clients":[
		{"id":"1","hash":"`+good+`","dump":"/s/desyncs/20/1"},
		{"id":"3","hash":"bad0","dump":"/s/desyncs/20/3"}]}]}`, rec.Body.String())
	rec = h.do(http.MethodGet, "/s/desyncs/20/3", "")
	require.Equal(t, http.StatusOK, rec.Code)
	assert.Equal(t, "state of c", rec.Body.String())
	assert.Equal(t, http.StatusNotFound, h.do(http.MethodGet, "/s/desyncs/20/2", "").Code)
	assert.Equal(t, http.StatusNotFound, h.do(http.MethodGet, "/nope/desyncs", "").Code)

	h.clock.Advance(time.Second)
	var x protocol.Desync
	for _, e := range h.all("s", "a") {
		if e.Type == protocol.TypeDesync {
			require.NoError(t, json.Unmarshal([]byte(e.Body), &x))
		}
	}
	assert.Equal(t, protocol.Desync{T: 20, IDs: []string{"3"}}, x)
}

// TestCheckpointRoutesDoNotShadowIDs: a private id or stream named like a
// checkpoint resource still reaches its own resource.
func TestCheckpointRoutesDoNotShadowIDs(t *testing.T) {
	h := newHarness(t)
	h.sync("/desyncs/desyncs/0", "")
	h.sync("/snapshot/snapshot/0", "")
	rec := h.do(http.MethodPut, "/s/desyncs/snapshot/20", "x")
	assert.Equal(t, http.StatusNotFound, rec.Code, "the client desyncs of stream s does not exist: %s", rec.Body.String())
	assert.Equal(t, protocol.CodeNotFound, errorCode(t, rec).Code)
	assert.Contains(t, errorCode(t, rec).Message, "not found")
	rec = h.do(http.MethodPut, "/desyncs/desyncs/snapshot/20", "x")
	assert.Equal(t, http.StatusForbidden, rec.Code, "reaches the upload, which nobody asked for: %s", rec.Body.String())
}
