package api

import (
	"context"
	"net"
	"net/http"
	"net/netip"

	"github.com/go-chi/chi/v5"
)

// ConnContext is for http.Server.ConnContext: it keeps on each connection
// what every request on it would otherwise set up again. The requests of
// an HTTP/1 connection come one at a time, so they share one chi routing
// context, made ready for each as chi readies those of its pool (chi then
// puts none in each request's context); and the peer's address is parsed
// once, for the address limiters, which key the requests of a peer that
// is not a trusted proxy by it. A Server serves requests without it as
// well.
func (s *Server) ConnContext(ctx context.Context, c net.Conn) context.Context {
	conn := &connState{route: chi.NewRouteContext()}
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		conn.peer, conn.peerKnown = a.AddrPort(), true
		if addr := conn.peer.Addr().Unmap(); s.bySource && !s.proxies.isTrusted(addr) {
			// Its requests come from the peer, whatever they say.
			conn.sourced = true
			if src := limitKey(addr); src.IsValid() {
				ctx = context.WithValue(ctx, sourceKey{}, src)
			}
		}
	}
	return context.WithValue(context.WithValue(ctx, connKey{}, conn), chi.RouteCtxKey, conn.route)
}

// connState is what ConnContext keeps on a connection.
type connState struct {
	route     *chi.Context
	peer      netip.AddrPort
	peerKnown bool
	sourced   bool // the connection's context holds its requests' source (withSource)
}

// connKey is the context key of a connection's connState.
type connKey struct{}

// connOf returns the connState of r's connection, or nil when its
// server has no ConnContext.
func connOf(r *http.Request) *connState {
	c, _ := r.Context().Value(connKey{}).(*connState)
	return c
}

// ready readies r to be routed. Its connection's routing context is made
// ready for it, as chi readies one of its pool; a request of HTTP/2,
// whose requests on a connection come at once, is given none: chi gives
// it one of its pool. With a limit by address, its source is put in its
// context, unless its connection's holds it already.
func (s *Server) ready(r *http.Request) *http.Request {
	conn := connOf(r)
	switch {
	case conn == nil:
	case r.ProtoMajor != 1:
		r = r.WithContext(context.WithValue(r.Context(), chi.RouteCtxKey, (*chi.Context)(nil)))
	default:
		conn.route.Reset()
		conn.route.Routes = s.router
	}
	if s.bySource && (conn == nil || !conn.sourced) {
		r = s.proxies.withSource(r, conn)
	}
	return r
}

// peerAddr returns the address of r's peer; conn is r's connection's
// state, or nil.
func peerAddr(r *http.Request, conn *connState) (netip.AddrPort, error) {
	if conn != nil && conn.peerKnown {
		return conn.peer, nil
	}
	return netip.ParseAddrPort(r.RemoteAddr)
}
