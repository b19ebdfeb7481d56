package api

import (
	"errors"
	"net/http"
	"net/netip"
	"net/url"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/goeventstream/eventstream/internal/auth"
	"github.com/goeventstream/eventstream/internal/protocol"
)

// Admission (docs/protocol.md, "Tokens"): with a Verifier, every request
// on a stream route but a preflight carries a token that admits it, unless
// the stream's name starts with the open prefix. It is checked first, so a
// refused request reads no body, holds no in-flight memory, spends no rate
// and reaches no store: it leaves nothing behind.

// accessTokenParam is the query parameter of a token where a browser
// cannot set headers (RFC 6750 §2.3), as for a WebSocket upgrade.
const accessTokenParam = "access_token"

// The challenges of a 401 (RFC 6750 §3): no token, or a bad one.
const (
	challengeMissing = `Bearer realm="eventstreamd"`
	challengeInvalid = `Bearer realm="eventstreamd", error="invalid_token"`
)

// guard serves h only for a request admitted (admitted), else answers its
// refusal. With auth off it is h.
func (s *Server) guard(h http.HandlerFunc) http.HandlerFunc {
	if s.auth == nil {
		return h
	}
	return func(w http.ResponseWriter, r *http.Request) {
		if r = s.admitted(w, r); r != nil {
			h(w, r)
		}
	}
}

// admitted returns r, with the grant of its token in its context, when r
// may use its stream; else it answers the refusal and returns nil.
func (s *Server) admitted(w http.ResponseWriter, r *http.Request) *http.Request {
	if s.auth == nil {
		return r
	}
	g, err := s.admit(r)
	if err != nil {
		s.writeError(w, r, err)
		return nil
	}
	if g == nil {
		return r // an open stream
	}
	return r.WithContext(auth.NewContext(r.Context(), g))
}

// admit checks r's token against its path: the stream it admits to, the
// private id (the token's sub) and, for a POST or PUT, a player's role
// (a spectator that asks by ?spectate=1 is refused by spectating). It
// returns nil, nil for an open stream. A token not verified before is
// refused by what its claims, read unverified, would admit before its
// signature is checked (checkSignature); a request is admitted only by
// what a verified token admits.
func (s *Server) admit(r *http.Request) (*auth.Grant, error) {
	name := chi.URLParam(r, "stream")
	if s.openPrefix != "" && strings.HasPrefix(name, s.openPrefix) {
		return nil, nil
	}
	tok, err := bearerToken(r)
	if err != nil {
		return nil, err
	}
	client, write := chi.URLParam(r, "client"), r.Method == http.MethodPost || r.Method == http.MethodPut
	g, verified, err := s.auth.Inspect(tok)
	if err == nil && !verified {
		if err = admits(g, name, client, write); err == nil {
			g, err = s.checkSignature(sourceOf(r.Context()), tok)
		}
	}
	if err != nil {
		return nil, refusal(err)
	}
	if err := admits(g, name, client, write); err != nil {
		return nil, err
	}
	return g, nil
}

// checkSignature verifies tok, a token not verified before from the
// source address src (not valid for loopback), unless src has sent its
// limit of tokens with a wrong signature
// (-max-bad-signatures-per-address-per-minute), or all addresses together
// theirs (-max-bad-signatures-per-second), which does not hold an address
// that presented a valid token lately (goodSources) while its own bucket
// is kept: a signature costs the server tens to hundreds of microseconds
// (BenchmarkHTTPPollAuth), what a stranger would make it spend. A
// signature found right spends nothing, and makes src one of goodSources.
func (s *Server) checkSignature(src netip.Addr, tok string) (*auth.Grant, error) {
	byAddr, all := s.badSigs, s.allBadSigs
	if !src.IsValid() {
		byAddr = nil
	}
	if wait := byAddr.take(src); wait > 0 {
		return nil, retryAfter(wait,
			"too many tokens with a wrong signature come from this address (-max-bad-signatures-per-address-per-minute); tokens verified before still admit, a new one is checked again in %v")
	}
	if s.good.holds(src) && byAddr.tracks(src) {
		all = nil
	}
	if wait := all.take(anyAddress); wait > 0 {
		byAddr.give(src)
		return nil, retryAfter(wait,
			"too many tokens with a wrong signature reach the server (-max-bad-signatures-per-second); tokens verified before still admit, a new one is checked again in %v")
	}
	g, err := s.auth.Verify(tok)
	s.metrics.SignatureChecked(err == nil)
	if err == nil {
		byAddr.give(src)
		all.give(anyAddress)
		if byAddr != nil {
			s.good.add(src, g.ValidUntil())
		}
	}
	return g, err
}

// verify verifies a token a push connection whose source address is src
// renews its own with, and answers why it is refused. Its signature, when
// checked, counts as a request's (checkSignature).
func (s *Server) verify(src netip.Addr, tok string) (*auth.Grant, error) {
	g, verified, err := s.auth.Inspect(tok)
	if err == nil && !verified {
		g, err = s.checkSignature(src, tok)
	}
	if err != nil {
		return nil, refusal(err)
	}
	return g, nil
}

// refusal returns the answer to a token refused by err: auth's errors as
// the protocol answers them, any other as it is.
func refusal(err error) error {
	switch {
	case errors.Is(err, auth.ErrExpired):
		ae := errorf(protocol.CodeTokenExpired, "the token has expired; get a new one from the game's backend")
		ae.challenge = challengeInvalid
		return ae
	case errors.Is(err, auth.ErrInvalid):
		return unauthorized(challengeInvalid,
			"the token is not valid: its signature, algorithm, key id, audience, times or claims (sub, stream, role, exp) are not accepted")
	}
	return err
}

// admits reports why g does not admit its holder to the stream name, as
// the private id client (empty on routes without one), to post or upload
// when write; nil when it does.
func admits(g *auth.Grant, name, client string, write bool) error {
	switch {
	case !g.Admits(name):
		return errorf(protocol.CodeForbidden, "the token does not admit to this stream")
	case client != "" && client != url.PathEscape(g.Sub):
		return errorf(protocol.CodeForbidden, "the private id of the path must be the token's sub")
	case write && g.Spectator():
		return errSpectatorWrites
	}
	return nil
}

// errSpectatorWrites refuses a spectator's post, push message or upload.
var errSpectatorWrites = errorf(protocol.CodeForbidden,
	"a spectator reads the stream: it may not post events, report hashes or upload (poll with GET)")

// bearerToken returns the one token of r: in an Authorization header
// (RFC 6750 §2.1), or in the access_token query parameter.
func bearerToken(r *http.Request) (string, error) {
	headers := r.Header.Values("Authorization")
	params := queryTokens(r.URL.RawQuery)
	switch n := len(headers) + len(params); {
	case n == 0:
		return "", unauthorized(challengeMissing,
			"this stream needs a token: send Authorization: Bearer <token>, or ?access_token=<token> where headers cannot be set")
	case n > 1:
		return "", unauthorized(challengeInvalid, "send one token, in the Authorization header or the access_token parameter")
	case len(params) == 1:
		return params[0], nil
	}
	scheme, tok, _ := strings.Cut(headers[0], " ")
	if !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
		return "", unauthorized(challengeInvalid, "the Authorization header must be Bearer <token>")
	}
	return strings.TrimSpace(tok), nil
}

// queryTokens returns the access_token parameters of the raw query, as
// url.ParseQuery reads them, but for a name written escaped (access%5Ftoken),
// which is not one: a stranger's query, as long as the request line
// allows, costs a search, not the parse of all its parameters
// (BenchmarkQueryTokens).
func queryTokens(raw string) []string {
	var out []string
	for i := 0; ; {
		j := strings.Index(raw[i:], accessTokenParam)
		if j < 0 {
			return out
		}
		start, end := i+j, i+j+len(accessTokenParam)
		i = end
		if start > 0 && raw[start-1] != '&' || end < len(raw) && raw[end] != '=' && raw[end] != '&' {
			continue // a part of another name, or of a value
		}
		pair, _, _ := strings.Cut(raw[start:], "&")
		if strings.Contains(pair, ";") {
			continue // url.ParseQuery drops it
		}
		_, v, _ := strings.Cut(pair, "=")
		if v, err := url.QueryUnescape(v); err == nil {
			out = append(out, v)
		}
	}
}

func unauthorized(challenge, message string) *apiError {
	ae := errorf(protocol.CodeUnauthorized, "%s", message)
	ae.challenge = challenge
	return ae
}
