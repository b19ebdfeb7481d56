package api

import (
	"bytes"
	"context"
	"encoding/json"

	"github.com/coder/websocket"

	"github.com/goeventstream/eventstream/internal/auth"
	"github.com/goeventstream/eventstream/internal/protocol"
)

// Push connections and stream tokens (docs/protocol.md, "Push"): the
// upgrade's token admits a connection; the client renews it, before it
// expires, with the message {"token":"…"}, and a connection whose token
// expired unrenewed is closed with CloseTokenExpired. A spectator's
// connection reads: any other message of its is refused.

// CloseTokenExpired: the connection's token expired and was not renewed;
// the client gets a new token and reconnects.
const CloseTokenExpired websocket.StatusCode = protocol.CloseTokenExpired

// tokenMessage is a message that renews the connection's token; it
// carries nothing else.
type tokenMessage struct {
	Token  *string         `json:"token"`
	Batch  json.RawMessage `json:"batch"`
	Events json.RawMessage `json:"events"`
	Hashes json.RawMessage `json:"hashes"`
}

// admitMessage decides, before a message of c is applied as a sync body,
// what becomes of it: a renewal of the token is applied here and answered
// only when refused; once the token has expired, c is closed; a
// spectator's message is refused. It reports whether body is to be applied
// as a sync body, and whether c stays open.
func (c *pushConn) admitMessage(ctx context.Context, body []byte) (apply, open bool) {
	if c.tokenExpired() {
		return false, false
	}
	if bytes.Contains(body, []byte(`"token"`)) { // cheap: most messages are not
		var m tokenMessage
		if json.Unmarshal(body, &m) == nil && m.Token != nil {
			if m.Batch != nil || m.Events != nil || m.Hashes != nil {
				c.sendError(errorf(protocol.CodeBadRequest,
					`a message that renews the token carries only the token: {"token":"..."}; nothing was applied`), "")
			} else if err := c.renew(*m.Token); err != nil {
				c.sendError(err, "")
			}
			return false, true
		}
	}
	if c.spectator { // by its token's role or ?spectate=1: hash reports and empty messages neither
		c.sendError(errSpectatorWrites, "")
		return false, true
	}
	return true, true
}

// renew replaces c's token with tok, which must admit c as its upgrade's
// token did: the same stream, private id and role. With auth off, or on
// an open stream, there is nothing to renew and tok is ignored.
func (c *pushConn) renew(tok string) error {
	old := c.grant()
	if old == nil {
		return nil
	}
	g, err := c.p.srv.verify(c.src, tok)
	if err != nil {
		return err
	}
	req := c.at()
	if err := admits(g, req.Stream, req.PrivateID, false); err != nil {
		return err
	}
	if g.Role != old.Role {
		return errorf(protocol.CodeForbidden, "a renewed token keeps the connection's role, %s", old.Role)
	}
	c.mu.Lock()
	c.auth = g
	c.mu.Unlock()
	return nil
}

// tokenExpired closes c with CloseTokenExpired, and reports true, once its
// token has expired unrenewed.
func (c *pushConn) tokenExpired() bool {
	g := c.grant()
	if g == nil || !c.p.srv.auth.Expired(g) {
		return false
	}
	c.ws.Close(CloseTokenExpired, "the token expired; get a new one and reconnect")
	return true
}

// grant returns the grant of c's token; nil with auth off or on an open
// stream.
func (c *pushConn) grant() *auth.Grant {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.auth
}
