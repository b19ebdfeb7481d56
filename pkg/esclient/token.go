package esclient

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/goeventstream/eventstream/internal/protocol"
)

// Stream tokens (docs/protocol.md, "Tokens"): a server with auth on admits
// a client only with a token that the game's backend signs. Config.Token
// gets one; the Client keeps it until shortly before its exp (read from
// the token, not verified: the server verifies), and gets a new one then,
// or when the server answers token_expired.

// tokenRenewBefore is how long before its exp a token is replaced.
const tokenRenewBefore = 30 * time.Second

// tokens holds the token a Client sends.
type tokens struct {
	get func(context.Context) (string, error) // Config.Token; nil: none

	mu  sync.Mutex // one Config.Token call at a time
	tok string
	exp time.Time // zero: unknown, kept until the server says it expired
}

// current returns the token to send, getting one when none is held or the
// one held expires within tokenRenewBefore; "" without Config.Token.
func (t *tokens) current(ctx context.Context) (string, error) {
	if t.get == nil {
		return "", nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.tok != "" && (t.exp.IsZero() || time.Until(t.exp) > tokenRenewBefore) {
		return t.tok, nil
	}
	tok, err := t.get(ctx)
	if err != nil {
		return "", fmt.Errorf("esclient: getting a stream token: %w", err)
	}
	if tok == "" {
		return "", fmt.Errorf("esclient: Config.Token returned an empty token")
	}
	t.tok, t.exp = tok, tokenExpiry(tok)
	return tok, nil
}

// expired drops tok, which the server found expired: the next request
// gets a new one.
func (t *tokens) expired(tok string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.tok == tok {
		t.tok = ""
	}
}

// authorize sets the Authorization header of a request to the token, and
// returns it ("" when there is none).
func (t *tokens) authorize(ctx context.Context, h http.Header) (string, error) {
	tok, err := t.current(ctx)
	if tok != "" {
		h.Set("Authorization", "Bearer "+tok)
	}
	return tok, err
}

// send sends req with the token, and once again with a new one if the
// server answers that the token expired.
func (c *Client) send(req *http.Request) (*http.Response, error) {
	tok, err := c.tokens.authorize(req.Context(), req.Header)
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil || tok == "" || resp.StatusCode != http.StatusUnauthorized {
		return resp, err
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	if replyError(resp, data).Code != protocol.CodeTokenExpired {
		resp.Body = io.NopCloser(bytes.NewReader(data))
		return resp, nil
	}
	c.tokens.expired(tok)
	retry := req.Clone(req.Context())
	if req.GetBody != nil {
		if retry.Body, err = req.GetBody(); err != nil {
			return nil, err
		}
	}
	if _, err := c.tokens.authorize(req.Context(), retry.Header); err != nil {
		return nil, err
	}
	return c.http.Do(retry)
}

// tokenExpiry reads the exp of a JWT, without verifying it; zero when it
// has none or is not a JWT.
func tokenExpiry(tok string) time.Time {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return time.Time{}
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return time.Time{}
	}
	var claims struct {
		Exp *float64 `json:"exp"`
	}
	if json.Unmarshal(payload, &claims) != nil || claims.Exp == nil {
		return time.Time{}
	}
	return time.Unix(int64(*claims.Exp), 0)
}
