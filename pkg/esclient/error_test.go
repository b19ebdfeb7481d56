package esclient

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// TestDecodeError: an error that comes as a push message has the status
// the server gives its code over HTTP (protocol.Status), and its
// retryAfter; over HTTP, the reply's status and Retry-After header count.
func TestDecodeError(t *testing.T) {
	tests := []struct {
		name   string
		status int
		header time.Duration
		give   string
		want   Error
	}{
		{
			name: "push not_found", give: `{"error":{"code":"not_found","message":"gone"}}`,
			want: Error{Status: http.StatusNotFound, Code: "not_found", Message: "gone"},
		},
		{
			name: "push rate_limited", give: `{"error":{"code":"rate_limited","message":"slow down","retryAfter":2,"batch":"b1"}}`,
			want: Error{Status: http.StatusTooManyRequests, Code: "rate_limited", Message: "slow down", RetryAfter: 2 * time.Second},
		},
		{
			name: "push code of a newer server", give: `{"error":{"code":"brand_new","message":"m"}}`,
			want: Error{Status: http.StatusBadRequest, Code: "brand_new", Message: "m"},
		},
		{
			name: "push not an error reply", give: `{"error":"what"}`,
			want: Error{Status: http.StatusBadRequest, Message: `{"error":"what"}`},
		},
		{
			name: "http: the header's wait", status: http.StatusServiceUnavailable, header: 3 * time.Second,
			give: `{"error":{"code":"server_busy","message":"busy","retryAfter":1}}`,
			want: Error{Status: http.StatusServiceUnavailable, Code: "server_busy", Message: "busy", RetryAfter: 3 * time.Second},
		},
		{
			name: "http: a proxy's page", status: http.StatusBadGateway, give: "bad gateway\n",
			want: Error{Status: http.StatusBadGateway, Message: "bad gateway"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, *decodeError(tt.status, tt.header, []byte(tt.give)))
		})
	}
}
