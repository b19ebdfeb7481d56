package api

import (
	"context"
	"errors"
	"net/http"

	"github.com/goeventstream/eventstream/internal/auth"
	"github.com/goeventstream/eventstream/internal/protocol"
	"github.com/goeventstream/eventstream/internal/stream"
)

// Spectators (docs/protocol.md, "Spectators") read a stream as players do,
// by poll or push, but never appear in it: their syncs are Store.Read,
// which touches no presence, appends nothing and creates no stream, so a
// spectator has no public id, no client slot, no vote and no rate of the
// store's. The path's private id only has to be valid (with auth, the
// token's sub): it is never looked up, so a spectator that names a
// player's private id does nothing as that player.

// spectateParam is the query parameter by which a request on an open
// stream asks to spectate: spectate=1.
const spectateParam = "spectate"

// spectating reports whether r, admitted, is a spectator's: its token's
// role is spectator, or it asks with ?spectate=1 (any client may choose to
// only watch). A spectator only reads: its POST or PUT is 403 forbidden,
// before its body is read. query is r's, as requestQuery parsed it.
func (s *Server) spectating(r *http.Request, query syncQuery) (bool, error) {
	asked := false
	switch v := query.spectate; {
	case len(v) == 0 || (len(v) == 1 && v[0] == ""):
	case len(v) == 1 && v[0] == "1":
		asked = true
	default:
		return false, errorf(protocol.CodeBadRequest, "spectate must be 1, once, or absent")
	}
	if !asked && !s.grantsSpectator(r) {
		return false, nil
	}
	if r.Method == http.MethodPost || r.Method == http.MethodPut {
		return true, errSpectatorWrites
	}
	return true, nil
}

// grantsSpectator reports whether r's token is a spectator's. Without
// auth no request has one, and its context is not searched for it.
func (s *Server) grantsSpectator(r *http.Request) bool {
	if s.auth == nil {
		return false
	}
	g, _ := auth.FromContext(r.Context())
	return g != nil && g.Spectator()
}

// playersOnly serves h unless r is a spectator's upload, which it refuses.
func (s *Server) playersOnly(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if _, err := s.spectating(r, requestQuery(r)); err != nil {
			s.writeError(w, r, err)
			return
		}
		h(w, r)
	}
}

// syncOrRead applies req as its client's sync, or for a spectator reads
// what a sync would answer, without a client (Store.Read: no presence, no
// _c, no stream created): the one place where a spectator's request turns
// away from a player's, for polls and push connections alike.
func (s *Server) syncOrRead(ctx context.Context, req *stream.SyncRequest, spectator bool) (*stream.SyncResult, error) {
	if spectator {
		res, err := s.store.Read(ctx, req)
		return res, notYet(err)
	}
	res, err := s.store.Sync(ctx, req)
	if err == nil {
		s.observeSync(req.Stream, res)
	}
	return res, err
}

// notYet explains the ErrNotFound of a spectator's read: the stream does
// not exist (yet), and a spectator creates none.
func notYet(err error) error {
	if errors.Is(err, stream.ErrNotFound) {
		return errorf(protocol.CodeNotFound,
			"no stream of that name (yet): a spectator creates none; poll again later")
	}
	return err
}

// spectatorRetryAfter is the Retry-After, in seconds, of a spectator's
// upgrade refused for the cap: a connection leaves, or the spectator polls.
const spectatorRetryAfter = 5

// spectate counts a spectator's push connection to the stream name, or
// reports false when the stream has its maximum on this server
// (-max-spectators-per-stream). Its memory is a counter per stream with
// spectators connected. p.mu must be held.
func (p *pusher) spectate(name string) bool {
	if p.spectators[name] >= p.cfg.MaxSpectatorsPerStream {
		return false
	}
	p.spectators[name]++
	p.srv.metrics.SpectatorConnections(1)
	return true
}

// unspectate gives back the count of a spectator's connection that ended.
func (p *pusher) unspectate(name string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.spectators[name]--; p.spectators[name] <= 0 {
		delete(p.spectators, name)
	}
	p.srv.metrics.SpectatorConnections(-1)
}
