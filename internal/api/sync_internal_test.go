package api

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// FuzzRequestQuery holds requestQuery, whose common case reads the query
// without url.ParseQuery, to url.ParseQuery's reading of every query; and
// queryTokens, which never does, to it for a query whose names are not
// escaped (an escaped name is no token).
func FuzzRequestQuery(f *testing.F) {
	for _, raw := range []string{
		"", "epoch=", "epoch=0b1c5e2a-7f3d-4c8e-9a6b-1d2e3f405162", "epoch=a&epoch=b", "epoch=a%2Db",
		"epoch=a+b", "epoch=a;b", "epoch=a=b", "epoch=a&spectate=1", "spectate=1", "spectate=1&spectate=1",
		"Epoch=a", "epoch", "epoch=%zz", "x=1&epoch=a",
		"access_token=a", "access_token=a&access_token=b", "epoch=e&access_token=a%2Bb", "access_token=a+b",
		"access_token", "access_token&x=1", "access_token=", "x_access_token=a", "access_tokens=a", "x=access_token",
		"access_token=a;b", "x=1;access_token=a", "access_token=%zz", "access%5Ftoken=a", "access_token=a=b",
	} {
		f.Add(raw)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		want, _ := url.ParseQuery(raw) // as r.URL.Query(), which drops the error
		got := requestQuery(&http.Request{URL: &url.URL{RawQuery: raw}})
		assert.Equal(t, want.Get("epoch"), got.epoch, raw)
		assert.Equal(t, want["spectate"], got.spectate, raw)
		tokens := queryTokens(raw)
		if !strings.Contains(raw, "%") {
			assert.Equal(t, want[accessTokenParam], tokens, raw)
		}
		for _, tok := range tokens { // what it finds, url.ParseQuery finds too
			assert.Contains(t, want[accessTokenParam], tok, raw)
		}
	})
}
