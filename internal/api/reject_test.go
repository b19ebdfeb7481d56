package api_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/goeventstream/eventstream/internal/api"
	"github.com/goeventstream/eventstream/internal/protocol"
	"github.com/goeventstream/eventstream/internal/redistest"
	"github.com/goeventstream/eventstream/internal/stream"
)

func events(n int, body string) string {
	evs := make([]string, n)
	for i := range evs {
		evs[i] = fmt.Sprintf(`{"type":"m","body":%q}`, body)
	}
	return `{"events":[` + strings.Join(evs, ",") + `]}`
}

// TestRejections sends every class of bad input to an existing stream as a
// new client and checks the answer and that the stream did not change.
func TestRejections(t *testing.T) { testRejections(t, "") }

// TestRejectionsRedis: the Redis store gives the same answers.
func TestRejectionsRedis(t *testing.T) {
	testRejections(t, redisURL(redistest.Start(t).URL()))
}

func testRejections(t *testing.T, url redisURL) {
	long := strings.Repeat("x", protocol.MaxNameLen+1)
	tests := []struct {
		name       string
		method     string
		give       string // the target; "{c}" stands for the rejected client's private id
		body       string
		wantStatus int
		wantCode   string
	}{
		{name: "stream with a bad character", give: "/bad$name/{c}/0", wantStatus: 400, wantCode: "bad_stream"},
		{name: "stream too long", give: "/" + long + "/{c}/0", wantStatus: 400, wantCode: "bad_stream"},
		{name: "stream percent-encoded", give: "/%41b/{c}/0", wantStatus: 400, wantCode: "bad_stream"},
		{name: "client with a bad character", give: "/s/bad%20id/0", wantStatus: 400, wantCode: "bad_client"},
		{name: "client too long", give: "/s/" + long + "/0", wantStatus: 400, wantCode: "bad_client"},
		{name: "negative tick", give: "/s/{c}/-1", wantStatus: 400, wantCode: "bad_tick"},
		{name: "signed tick", give: "/s/{c}/+1", wantStatus: 400, wantCode: "bad_tick"},
		{name: "hex tick", give: "/s/{c}/0x10", wantStatus: 400, wantCode: "bad_tick"},
		{name: "fractional tick", give: "/s/{c}/1.5", wantStatus: 400, wantCode: "bad_tick"},
		{name: "tick past int64", give: "/s/{c}/9223372036854775808", wantStatus: 400, wantCode: "bad_tick"},
		{name: "word tick", give: "/s/{c}/now", wantStatus: 400, wantCode: "bad_tick"},
		{name: "epoch not a uuid", give: "/s/{c}/0?epoch=yesterday", wantStatus: 400, wantCode: "bad_request"},
		{name: "body not JSON", give: "/s/{c}/0", body: `{"events":[`, wantStatus: 400, wantCode: "bad_request"},
		{name: "body an array", give: "/s/{c}/0", body: `[]`, wantStatus: 400, wantCode: "bad_request"},
		{name: "body null", give: "/s/{c}/0", body: `null`, wantStatus: 400, wantCode: "bad_request"},
		{name: "body null with spaces", give: "/s/{c}/0", body: " null\n", wantStatus: 400, wantCode: "bad_request"},
		{name: "body a string", give: "/s/{c}/0", body: `"events"`, wantStatus: 400, wantCode: "bad_request"},
		{name: "trailing data", give: "/s/{c}/0", body: `{} x`, wantStatus: 400, wantCode: "bad_request"},
		{name: "two values", give: "/s/{c}/0", body: `{}{}`, wantStatus: 400, wantCode: "bad_request"},
		{name: "events not an array", give: "/s/{c}/0", body: `{"events":{}}`, wantStatus: 400, wantCode: "bad_request"},
		{name: "type missing", give: "/s/{c}/0", body: `{"events":[{"body":"x"}]}`, wantStatus: 400, wantCode: "bad_request"},
		{name: "type empty", give: "/s/{c}/0", body: `{"events":[{"type":"","body":"x"}]}`, wantStatus: 400, wantCode: "bad_request"},
		{name: "type too long", give: "/s/{c}/0", body: `{"events":[{"type":"` + strings.Repeat("t", 65) + `"}]}`, wantStatus: 400, wantCode: "bad_request"},
		{name: "type a number", give: "/s/{c}/0", body: `{"events":[{"type":1}]}`, wantStatus: 400, wantCode: "bad_request"},
		{name: "reserved type", give: "/s/{c}/0", body: `{"events":[{"type":"m"},{"type":"_c","body":"1"}]}`, wantStatus: 400, wantCode: "reserved_type"},
		{name: "body a number", give: "/s/{c}/0", body: `{"events":[{"type":"m","body":1}]}`, wantStatus: 400, wantCode: "bad_request"},
		{name: "body an object", give: "/s/{c}/0", body: `{"events":[{"type":"m","body":{}}]}`, wantStatus: 400, wantCode: "bad_request"},
		{name: "event body null", give: "/s/{c}/0", body: `{"events":[{"type":"m","body":null}]}`, wantStatus: 400, wantCode: "bad_request"},
		{name: "body not UTF-8", give: "/s/{c}/0", body: "{\"events\":[{\"type\":\"m\",\"body\":\"\xff\"}]}", wantStatus: 400, wantCode: "bad_request"},
		// What parsers of other languages read otherwise (docs/protocol.md, "Body").
		{name: "type with NUL", give: "/s/{c}/0", body: `{"events":[{"type":"m\u0000","body":"x"}]}`, wantStatus: 400, wantCode: "bad_request"},
		{name: "type with a control character", give: "/s/{c}/0", body: `{"events":[{"type":"m\u001b[31m","body":"x"}]}`, wantStatus: 400, wantCode: "bad_request"},
		{name: "type with DEL", give: "/s/{c}/0", body: "{\"events\":[{\"type\":\"m\x7f\",\"body\":\"x\"}]}", wantStatus: 400, wantCode: "bad_request"},
		{name: "type not UTF-8", give: "/s/{c}/0", body: "{\"events\":[{\"type\":\"m\xff\",\"body\":\"x\"}]}", wantStatus: 400, wantCode: "bad_request"},
		{name: "body with a lone surrogate", give: "/s/{c}/0", body: `{"events":[{"type":"m","body":"\ud800"}]}`, wantStatus: 400, wantCode: "bad_request"},
		{name: "batch with a lone surrogate", give: "/s/{c}/0", body: `{"batch":"\udfff","events":[{"type":"m","body":"x"}]}`, wantStatus: 400, wantCode: "bad_request"},
		{name: "two events keys", give: "/s/{c}/0", body: `{"events":[{"type":"m","body":"x"}],"events":[]}`, wantStatus: 400, wantCode: "bad_request"},
		{name: "two keys alike after escapes", give: "/s/{c}/0", body: `{"events":[],"\u0065vents":[{"type":"m","body":"x"}]}`, wantStatus: 400, wantCode: "bad_request"},
		{name: "two body keys", give: "/s/{c}/0", body: `{"events":[{"type":"m","body":"x","body":"y"}]}`, wantStatus: 400, wantCode: "bad_request"},
		{name: "a key in another case", give: "/s/{c}/0", body: `{"Events":[{"type":"m","body":"x"}]}`, wantStatus: 400, wantCode: "bad_request"},
		{name: "batch empty", give: "/s/{c}/0", body: `{"batch":""}`, wantStatus: 400, wantCode: "bad_request"},
		{name: "batch too long", give: "/s/{c}/0", body: `{"batch":"` + strings.Repeat("b", 65) + `"}`, wantStatus: 400, wantCode: "bad_request"},
		{name: "too many events", give: "/s/{c}/0", body: events(protocol.DefaultMaxEventsPerSync+1, "x"), wantStatus: 400, wantCode: "too_many_events"},
		{name: "event body too large", give: "/s/{c}/0", body: events(1, strings.Repeat("b", protocol.DefaultMaxEventBodyBytes+1)), wantStatus: 413, wantCode: "too_large"},
		{name: "request too large", give: "/s/{c}/0", body: events(5, strings.Repeat("b", 14<<10)), wantStatus: 413, wantCode: "too_large"},
		{name: "events to another epoch", give: "/s/{c}/0?epoch=6db8b8f2-16c9-427d-9fc9-de43870ed0db", body: events(1, "x"), wantStatus: 409, wantCode: "epoch_mismatch"},
		{name: "events to another epoch, named in the body", give: "/s/{c}/0", body: `{"epoch":"6db8b8f2-16c9-427d-9fc9-de43870ed0db","events":[{"type":"x"}]}`, wantStatus: 409, wantCode: "epoch_mismatch"},
		{name: "body epoch not a uuid", give: "/s/{c}/0", body: `{"epoch":"yesterday"}`, wantStatus: 400, wantCode: "bad_request"},
		{name: "body and query epochs differ", give: "/s/{c}/0?epoch=6db8b8f2-16c9-427d-9fc9-de43870ed0db", body: `{"epoch":"7db8b8f2-16c9-427d-9fc9-de43870ed0db"}`, wantStatus: 400, wantCode: "bad_request"},
		{name: "events to a stream that is gone", give: "/gone/{c}/0?epoch=6db8b8f2-16c9-427d-9fc9-de43870ed0db", body: events(1, "x"), wantStatus: 409, wantCode: "epoch_mismatch"},
		{name: "PUT", method: http.MethodPut, give: "/s/{c}/0", wantStatus: 405, wantCode: "method_not_allowed"},
		{name: "DELETE", method: http.MethodDelete, give: "/s/{c}/0", wantStatus: 405, wantCode: "method_not_allowed"},
		{name: "PATCH", method: http.MethodPatch, give: "/s/{c}/0", wantStatus: 405, wantCode: "method_not_allowed"},
		{name: "POST to healthz", method: http.MethodPost, give: "/healthz", wantStatus: 405, wantCode: "method_not_allowed"},
		{name: "two segments", give: "/s/{c}", wantStatus: 404, wantCode: "not_found"},
		{name: "four segments", give: "/s/{c}/0/extra", wantStatus: 404, wantCode: "not_found"},
		{name: "root", method: http.MethodGet, give: "/", wantStatus: 404, wantCode: "not_found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarnessOn(t, url)
			before := h.all("s", "owner")
			const secret = "s3cr3t-private-id"
			method := tt.method
			if method == "" {
				method = http.MethodPost
			}

			rec := h.do(method, strings.ReplaceAll(tt.give, "{c}", secret), tt.body)
			require.Equal(t, tt.wantStatus, rec.Code, rec.Body.String())
			assert.Equal(t, tt.wantCode, errorCode(t, rec).Code)
			assert.Equal(t, "application/json", rec.Header().Get("Content-Type"))
			assert.Equal(t, "*", rec.Header().Get("Access-Control-Allow-Origin"))
			assert.NotContains(t, rec.Body.String(), secret, "an error repeats the private id")
			if rec.Code == http.StatusMethodNotAllowed {
				assert.NotEmpty(t, rec.Header().Get("Allow"))
			}

			assert.Equal(t, before, h.all("s", "owner"), "a rejected request changed the stream")
			assert.Equal(t, "2", h.sync("/s/newcomer/0", "").ID, "a rejected request used a public id")
		})
	}
}

func TestStoreRefusals(t *testing.T) {
	tests := []struct {
		name           string
		edit           func(*stream.Config)
		give           string
		wantStatus     int
		wantCode       string
		wantRetryAfter string
	}{
		{name: "server full", edit: func(c *stream.Config) { c.MaxStreams = 1 }, give: "/other/a/0", wantStatus: 503, wantCode: "server_full"},
		{name: "too many clients", edit: func(c *stream.Config) { c.MaxClientsPerStream = 1 }, give: "/s/b/0", wantStatus: 409, wantCode: "stream_full"},
		{name: "too many events", edit: func(c *stream.Config) { c.MaxEventsPerStream = 3 }, give: "/s/b/0", wantStatus: 409, wantCode: "stream_full"},
		{name: "too many bytes", edit: func(c *stream.Config) { c.MaxStreamBytes = stream.MinStreamBytes; c.PageBytes = 1 << 20 }, give: "/s/b/0", wantStatus: 409, wantCode: "stream_full"},
		{name: "a full tick", edit: func(c *stream.Config) { c.PageBytes = 100 }, give: "/s/a/0", wantStatus: 429, wantCode: "rate_limited", wantRetryAfter: "1"},
		{name: "a client too fast", edit: func(c *stream.Config) { c.MaxSyncsPerSecond = 0.25 }, give: "/s/a/0", wantStatus: 429, wantCode: "rate_limited", wantRetryAfter: "4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, func(_ *api.Config, s *stream.Config) { tt.edit(s) })
			h.sync("/s/a/0", "")
			rec := h.do(http.MethodPost, tt.give, `{"events":[{"type":"m","body":"`+strings.Repeat("x", 1000)+`"}]}`)
			require.Equal(t, tt.wantStatus, rec.Code, rec.Body.String())
			assert.Equal(t, tt.wantCode, errorCode(t, rec).Code)
			assert.Equal(t, tt.wantRetryAfter, rec.Header().Get("Retry-After"))
			if tt.wantRetryAfter != "" {
				assert.Contains(t, rec.Header().Get("Access-Control-Expose-Headers"), "Retry-After", "a page cannot read Retry-After")
			}
		})
	}
}

func TestConfiguredLimits(t *testing.T) {
	h := newHarness(t, func(a *api.Config, _ *stream.Config) {
		a.Limits.MaxBodyBytes, a.Limits.MaxEventsPerSync, a.Limits.MaxEventBodyBytes = 200, 2, 4
	})
	tests := []struct {
		give       string
		wantStatus int
		wantCode   string
	}{
		{give: events(2, "1234"), wantStatus: 200},
		{give: events(3, "1"), wantStatus: 400, wantCode: "too_many_events"},
		{give: events(1, "12345"), wantStatus: 413, wantCode: "too_large"},
		{give: `{"pad":"` + strings.Repeat("p", 200) + `"}`, wantStatus: 413, wantCode: "too_large"},
	}
	for _, tt := range tests {
		rec := h.do(http.MethodPost, "/s/a/0", tt.give)
		require.Equal(t, tt.wantStatus, rec.Code, rec.Body.String())
		if tt.wantCode != "" {
			assert.Equal(t, tt.wantCode, errorCode(t, rec).Code)
		}
	}
}

func TestStoreUnavailable(t *testing.T) {
	srv := redistest.Start(t)
	h := newHarnessOn(t, redisURL(srv.URL()))
	h.sync("/s/a/0", "")
	require.Equal(t, http.StatusOK, h.do(http.MethodGet, "/readyz", "").Code)

	srv.Stop()
	// A request written to a connection as Redis died may have been
	// applied, and its answer says so; once the connections are found
	// dead, requests cannot connect, and nothing was applied.
	var codes []string
	for len(codes) < 20 && (len(codes) == 0 || codes[len(codes)-1] != "store_unavailable") {
		rec := h.do(http.MethodPost, "/s/a/0", `{"batch":"b1","events":[{"type":"m"}]}`)
		require.Equal(t, http.StatusServiceUnavailable, rec.Code, rec.Body.String())
		codes = append(codes, errorCode(t, rec).Code)
		require.Contains(t, []string{"store_unknown", "store_unavailable"}, codes[len(codes)-1])
	}
	assert.Equal(t, "store_unavailable", codes[len(codes)-1], "answers: %v", codes)
	assert.Equal(t, http.StatusServiceUnavailable, h.do(http.MethodGet, "/readyz", "").Code)
	assert.Equal(t, http.StatusOK, h.do(http.MethodGet, "/healthz", "").Code, "alive, only not ready")
}
