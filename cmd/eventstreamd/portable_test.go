package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/goeventstream/eventstream/internal/apitest"
	"github.com/goeventstream/eventstream/internal/protocol"
)

// TestBinaryRefusesWhatClientsReadDifferently: the real binary refuses a
// body that parsers of other languages read otherwise than Go, and a post
// to another epoch, and appends nothing of them (docs/protocol.md, "Body"
// and "Sync").
func TestBinaryRefusesWhatClientsReadDifferently(t *testing.T) {
	p := apitest.StartBinary(t, nil)
	client := &http.Client{Timeout: 10 * time.Second}
	post := func(target, body string) (int, string) {
		t.Helper()
		resp, err := client.Post(p.URL()+target, "application/json", strings.NewReader(body))
		require.NoError(t, err)
		defer resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return resp.StatusCode, ""
		}
		var e protocol.ErrorReply
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&e))
		return resp.StatusCode, e.Error.Code
	}
	status, _ := post("/s/owner/0", `{"events":[{"type":"m","body":"first"}]}`)
	require.Equal(t, http.StatusOK, status)

	tests := []struct {
		name       string
		give       string
		body       string
		wantStatus int
		wantCode   string
	}{
		{name: "a type with NUL", body: `{"events":[{"type":"m\u0000","body":"x"}]}`, wantStatus: 400, wantCode: protocol.CodeBadRequest},
		{name: "a type with a control character", body: `{"events":[{"type":"m\u001b","body":"x"}]}`, wantStatus: 400, wantCode: protocol.CodeBadRequest},
		{name: "a lone surrogate", body: `{"events":[{"type":"m","body":"\ud800"}]}`, wantStatus: 400, wantCode: protocol.CodeBadRequest},
		{name: "two events keys", body: `{"events":[{"type":"m","body":"x"}],"events":[]}`, wantStatus: 400, wantCode: protocol.CodeBadRequest},
		{name: "a key in another case", body: `{"Events":[{"type":"m","body":"x"}]}`, wantStatus: 400, wantCode: protocol.CodeBadRequest},
		{name: "events to another epoch", give: "?epoch=6db8b8f2-16c9-427d-9fc9-de43870ed0db", body: `{"events":[{"type":"m","body":"x"}]}`,
			wantStatus: 409, wantCode: protocol.CodeEpochMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, code := post("/s/intruder/1"+tt.give, tt.body)
			assert.Equal(t, tt.wantStatus, status)
			assert.Equal(t, tt.wantCode, code)
		})
	}

	var reply protocol.SyncReply
	read := func() error { // of the whole stream, as the owner
		resp, err := client.Get(p.URL() + "/s/owner/0")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		return json.NewDecoder(resp.Body).Decode(&reply)
	}
	require.NoError(t, read())
	end := reply.T // every request above was made at or before it
	require.Eventually(t, func() bool { return read() == nil && reply.T > end }, 5*time.Second, 10*time.Millisecond)
	var types []string
	for _, e := range reply.Events {
		types = append(types, e.Type+":"+e.Origin)
	}
	assert.Equal(t, []string{"_a:_", "_c:_", "m:1"}, types, "nothing of the refused requests was applied")
}
