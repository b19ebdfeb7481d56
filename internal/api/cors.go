package api

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// cors answers browsers' cross-origin checks: every reply names the origin
// it may be read from, and a preflight (OPTIONS) says what a sync may send.
type cors struct {
	origins []string
	any     bool // "*": every origin
}

func newCORS(origins []string) cors {
	return cors{origins: origins, any: len(origins) == 0 || slices.Contains(origins, "*")}
}

// allowOrigin sets the reply's Access-Control-Allow-Origin for r, and
// exposes Retry-After so that a page can read how long a refusal asks it to
// wait (a reply with a body of bytes names its own headers instead).
func (c cors) allowOrigin(h http.Header, r *http.Request) {
	h.Set("Access-Control-Expose-Headers", "Retry-After")
	if c.any {
		h.Set("Access-Control-Allow-Origin", "*")
		return
	}
	h.Add("Vary", "Origin")
	if o := r.Header.Get("Origin"); o != "" && slices.Contains(c.origins, o) {
		h.Set("Access-Control-Allow-Origin", o)
	}
}

// preflight answers an OPTIONS request for a resource that allows methods.
func preflight(w http.ResponseWriter, methods string) {
	h := w.Header()
	h.Set("Access-Control-Allow-Methods", methods)
	h.Set("Access-Control-Allow-Headers", "Content-Type, Authorization")
	h.Set("Access-Control-Max-Age", "600")
	h.Set("Allow", methods)
	w.WriteHeader(http.StatusNoContent)
}

// allows reports whether a browser at origin may call.
func (c cors) allows(origin string) bool { return c.any || slices.Contains(c.origins, origin) }

// sameHost reports whether origin is the host the request was sent to,
// which a WebSocket always allows.
func sameHost(origin, host string) bool {
	u, err := url.Parse(origin)
	return err == nil && strings.EqualFold(u.Host, host)
}
