package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/goeventstream/eventstream/internal/protocol"
)

var knownCodes = func() map[string]bool {
	m := map[string]bool{}
	for _, c := range protocol.ErrorCodes {
		m[c] = true
	}
	return m
}()

// FuzzSync sends arbitrary syncs to a server holding one stream. Whatever
// the input: no panic and no 500, every reply is JSON of the right shape,
// and a rejected request leaves the store as it was.
func FuzzSync(f *testing.F) {
	f.Add("POST", "foo", "me", "0", "", []byte("{}"))
	f.Add("GET", "s", "owner", "3", "epoch=6db8b8f2-16c9-427d-9fc9-de43870ed0db", []byte(nil))
	f.Add("POST", "s", "new", "0", "", []byte(`{"batch":"b","events":[{"type":"move","body":"x"}]}`))
	f.Add("POST", "s", "new", "18446744073709551616", "", []byte(`{"events":[{"type":"_a","body":""}]}`))
	f.Add("POST", "s", "a b", "1", "", []byte(`{"events":[{"type":"m","body":"\ud800"}]}`))
	f.Add("PUT", "s", "new", "0", "", []byte(`{}`))
	f.Add("POST", "s", "new", "0", "", []byte(`{"events":[{"type":"m","body":"x","t":-1,"origin":"_"}],"x":[1,2]} `))
	f.Fuzz(func(t *testing.T, method, streamName, client, tick, query string, body []byte) {
		h := newHarness(t)
		h.sync("/s/owner/0", `{"events":[{"type":"m","body":"first"}]}`)
		before, err := h.store.Stats(context.Background(), 10)
		require.NoError(t, err)

		req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
		req.Method = method
		req.URL.Path = "/" + streamName + "/" + client + "/" + tick
		req.URL.RawPath = ""
		req.URL.RawQuery = query
		rec := httptest.NewRecorder()
		h.server.ServeHTTP(rec, req)

		require.NotEqual(t, http.StatusInternalServerError, rec.Code, rec.Body.String())
		switch {
		case rec.Code == http.StatusOK:
			var reply protocol.SyncReply
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &reply), rec.Body.String())
			require.NotEmpty(t, reply.ID)
			require.NotNil(t, reply.Events)
			for _, e := range reply.Events {
				require.Less(t, e.T, reply.T, "an event at or after t was sent")
			}
		case rec.Code == http.StatusNoContent:
			require.Equal(t, http.MethodOptions, method)
		default:
			var e protocol.ErrorReply
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &e), rec.Body.String())
			require.True(t, knownCodes[e.Error.Code], "unknown code %q", e.Error.Code)
			after, err := h.store.Stats(context.Background(), 10)
			require.NoError(t, err)
			require.Equal(t, before, after, "a rejected request changed the store")
		}
	})
}
