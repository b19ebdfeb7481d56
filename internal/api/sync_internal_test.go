package api

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
)

// FuzzRequestQuery holds requestQuery, whose common case reads the query
// without url.ParseQuery, to url.ParseQuery's reading of every query.
func FuzzRequestQuery(f *testing.F) {
	for _, raw := range []string{
		"", "epoch=", "epoch=0b1c5e2a-7f3d-4c8e-9a6b-1d2e3f405162", "epoch=a&epoch=b", "epoch=a%2Db",
		"epoch=a+b", "epoch=a;b", "epoch=a=b", "epoch=a&spectate=1", "spectate=1", "spectate=1&spectate=1",
		"Epoch=a", "epoch", "epoch=%zz", "x=1&epoch=a",
	} {
		f.Add(raw)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		want, _ := url.ParseQuery(raw) // as r.URL.Query(), which drops the error
		got := requestQuery(&http.Request{URL: &url.URL{RawQuery: raw}})
		assert.Equal(t, want.Get("epoch"), got.epoch, raw)
		assert.Equal(t, want["spectate"], got.spectate, raw)
	})
}
