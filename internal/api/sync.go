package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/goeventstream/eventstream/internal/protocol"
	"github.com/goeventstream/eventstream/internal/stream"
)

const syncMethods = "GET, POST, OPTIONS"

// syncRoute serves /{stream}/{client}/{tick} for every method.
func (s *Server) syncRoute(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodPost:
		if r = s.admitted(w, r); r == nil {
			return
		}
		query := requestQuery(r)
		spectator, err := s.spectating(r, query)
		switch {
		case err != nil:
			s.writeError(w, r, err)
		case r.Method == http.MethodGet && strings.EqualFold(r.Header.Get("Upgrade"), "websocket"):
			s.push.upgrade(w, r, spectator)
		default:
			s.sync(w, r, query, spectator)
		}
	case http.MethodOptions:
		preflight(w, syncMethods)
	default:
		w.Header().Set("Allow", syncMethods)
		s.writeError(w, r, errorf(protocol.CodeMethodNotAllowed,
			"method %s is not allowed; a sync is GET or POST", r.Method))
	}
}

// sync answers a sync, or a spectator's poll: what a sync would answer,
// read without a client (Store.Read), with "id":"" (a spectator has no
// public id; spectate.go).
func (s *Server) sync(w http.ResponseWriter, r *http.Request, query syncQuery, spectator bool) {
	// The most this sync may hold, its body and its reply, is reserved
	// first; what it does not use is given back as soon as it is known.
	body := s.limits.MaxBodyBytes
	if spectator {
		body = 0 // a GET
	}
	mem, ok := s.reserve(w, r, body+int64(s.limits.MaxReplyBytes))
	if !ok {
		return
	}
	defer mem.release()

	req, err := s.parseSyncQuery(r, query)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	buf := replyBufs.Get().(*[]byte)
	defer putReplyBuf(buf)
	req.Buf = *buf
	res, err := s.syncOrRead(r.Context(), req, spectator)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	mem.trim(body + int64(len(res.Events))) // the body is read; the reply is this size
	if cap(res.Events) > cap(*buf) {
		*buf = res.Events // keep the larger buffer
	}
	if spectator {
		s.metrics.SpectatorPolled()
	}
	writeReply(w, res)
}

// writeReply writes res as a sync reply. The events are written as the
// store returned them, between a head and a tail, without another copy.
func writeReply(w http.ResponseWriter, res *stream.SyncResult) {
	var headBuf [160]byte
	head := appendReplyHead(headBuf[:0], res)
	tail := replyTail
	if res.More {
		tail = replyTailMore
	}
	h := w.Header()
	h["Content-Type"] = jsonContentType
	h["Content-Length"] = []string{strconv.Itoa(len(head) + len(res.Events) + len(tail))}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(head)
	_, _ = w.Write(res.Events)
	_, _ = w.Write(tail)
}

// The ends of a reply, after its events.
var (
	replyTail     = []byte(`]}` + "\n")
	replyTailMore = []byte(`],"more":true}` + "\n")
)

// replyBufs holds buffers for the events of replies, so that a busy server
// does not allocate one per sync.
var replyBufs = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

// maxPooledBuf keeps a rare huge reply from pinning its buffer in the pool.
const maxPooledBuf = 256 << 10

func putReplyBuf(b *[]byte) {
	if cap(*b) <= maxPooledBuf {
		*b = (*b)[:0]
		replyBufs.Put(b)
	}
}

// appendReplyHead encodes a reply up to the opening bracket of its events.
func appendReplyHead(b []byte, res *stream.SyncResult) []byte {
	b = append(b, `{"id":`...)
	b = protocol.AppendString(b, res.PublicID)
	b = append(b, `,"t":`...)
	b = strconv.AppendInt(b, res.T, 10)
	b = append(b, `,"epoch":`...)
	b = protocol.AppendString(b, res.Epoch)
	b = append(b, `,"tps":`...)
	b = strconv.AppendInt(b, int64(res.TickRate), 10)
	b = append(b, `,"ckpt":`...)
	b = strconv.AppendInt(b, res.Checkpoint, 10)
	b = appendTick(b, `,"base":`, res.Base)
	b = appendTick(b, `,"snap":`, res.Snap)
	b = appendTick(b, `,"dump":`, res.Dump)
	return append(b, `,"events":[`...)
}

// appendTick appends a reply field holding a tick, when t is set.
func appendTick(b []byte, field string, t *int64) []byte {
	if t == nil {
		return b
	}
	return strconv.AppendInt(append(b, field...), *t, 10)
}

// wireRequest is the JSON body of a sync. Unknown fields are ignored.
type wireRequest struct {
	Batch  *string     `json:"batch"`
	Epoch  *string     `json:"epoch"`
	Events []wireEvent `json:"events"`
	Hashes []wireHash  `json:"hashes"`
}

// wireHash is one hash report.
type wireHash struct {
	T *int64  `json:"t"`
	H *string `json:"h"`
}

// wireEvent is one posted event; fields other than type and body (such as
// t and origin) are the server's to set and are ignored.
type wireEvent struct {
	Type *string         `json:"type"`
	Body json.RawMessage `json:"body"`
}

var emptyBody = json.RawMessage(`""`)

// parseSync validates everything about a sync request that can be checked
// without the store.
func (s *Server) parseSync(r *http.Request) (*stream.SyncRequest, error) {
	return s.parseSyncQuery(r, requestQuery(r))
}

// parseSyncQuery is parseSync of r whose query, as requestQuery parsed
// it, is query: a sync's route parses it once.
func (s *Server) parseSyncQuery(r *http.Request, query syncQuery) (*stream.SyncRequest, error) {
	route := chi.RouteContext(r.Context()) // looked up once: each look walks the context
	req := &stream.SyncRequest{
		Stream:    route.URLParam("stream"),
		PrivateID: route.URLParam("client"),
	}
	if err := validNames(req.Stream, req.PrivateID); err != nil {
		return nil, err
	}
	tick, ok := parseTick(route.URLParam("tick"))
	if !ok {
		return nil, errorf(protocol.CodeBadTick,
			"the last known tick must be a non-negative decimal integer below 2^63, digits only")
	}
	req.LastKnownTick = tick
	if epoch := query.epoch; epoch != "" {
		if err := checkEpoch(epoch); err != nil {
			return nil, err
		}
		req.Epoch = epoch
	}
	if r.Method != http.MethodPost {
		return req, nil
	}

	body, err := readBody(r, s.limits.MaxBodyBytes, "the request body")
	if err != nil {
		return nil, err
	}
	if err := s.parseBody(body, req); err != nil {
		return nil, err
	}
	return req, nil
}

// parseBody validates the body of a sync (or of a push connection's
// message) into req, whose LastKnownTick is set.
func (s *Server) parseBody(body []byte, req *stream.SyncRequest) error {
	switch body = bytes.TrimSpace(body); {
	case len(body) == 0:
		return nil
	case body[0] != '{': // null, among others, would decode into nothing
		return errorf(protocol.CodeBadRequest, "%s", bodyShape)
	}
	var wire wireRequest
	if err := decodeBody(body, &wire); err != nil {
		return bodyError(err)
	}
	if wire.Batch != nil {
		if n := len(*wire.Batch); n < 1 || n > protocol.MaxBatchLen {
			return errorf(protocol.CodeBadRequest,
				"batch must be 1 to %d bytes", protocol.MaxBatchLen)
		}
		req.Batch = *wire.Batch
	}
	if wire.Epoch != nil && *wire.Epoch != "" {
		if err := checkEpoch(*wire.Epoch); err != nil {
			return err
		}
		if req.Epoch != "" && req.Epoch != *wire.Epoch {
			return errorf(protocol.CodeBadRequest, "the body's epoch and the query's must be the same")
		}
		req.Epoch = *wire.Epoch
	}
	if len(wire.Events) > s.limits.MaxEventsPerSync {
		return errorf(protocol.CodeTooManyEvents,
			"a request may carry at most %d events, not %d", s.limits.MaxEventsPerSync, len(wire.Events))
	}
	req.Events = make([]stream.Event, len(wire.Events))
	for i, e := range wire.Events {
		ev, err := s.parseEvent(i, e)
		if err != nil {
			return err
		}
		req.Events[i] = ev
	}
	var err error
	req.Hashes, err = parseHashes(wire.Hashes, req.LastKnownTick)
	return err
}

// checkEpoch refuses an epoch that is not a UUID, as the server sends them.
func checkEpoch(epoch string) error {
	if _, err := uuid.Parse(epoch); err != nil {
		return errorf(protocol.CodeBadRequest, "epoch must be a UUID as the server sent it")
	}
	return nil
}

// parseHashes validates the shape of a request's hash reports: at most
// protocol.MaxHashReports, each of a distinct tick below the client's last
// known tick, with a hash of 1 to protocol.MaxHashLen lowercase hex
// characters. The store checks that each is a checkpoint tick.
func parseHashes(wire []wireHash, lastKnown int64) ([]protocol.HashReport, error) {
	if len(wire) == 0 {
		return nil, nil
	}
	if len(wire) > protocol.MaxHashReports {
		return nil, errorf(protocol.CodeBadRequest,
			"a request may carry at most %d hashes, not %d", protocol.MaxHashReports, len(wire))
	}
	out := make([]protocol.HashReport, len(wire))
	for i, h := range wire {
		switch {
		case h.T == nil || *h.T < 0:
			return nil, errorf(protocol.CodeBadRequest,
				"hashes[%d].t must be a checkpoint tick, not negative", i)
		case *h.T >= lastKnown:
			return nil, errorf(protocol.CodeBadRequest,
				"hashes[%d].t must be a checkpoint tick below the last known tick %d", i, lastKnown)
		case h.H == nil || !protocol.ValidHash(*h.H):
			return nil, errorf(protocol.CodeBadRequest,
				"hashes[%d].h must be 1 to %d lowercase hex characters", i, protocol.MaxHashLen)
		}
		for _, prev := range out[:i] {
			if prev.T == *h.T {
				return nil, errorf(protocol.CodeBadRequest, "hashes[%d].t repeats tick %d", i, *h.T)
			}
		}
		out[i] = protocol.HashReport{T: *h.T, H: *h.H}
	}
	return out, nil
}

func (s *Server) parseEvent(i int, e wireEvent) (stream.Event, error) {
	switch {
	case e.Type == nil || len(*e.Type) == 0 || len(*e.Type) > protocol.MaxTypeLen:
		return stream.Event{}, errorf(protocol.CodeBadRequest,
			"events[%d].type must be a string of 1 to %d bytes", i, protocol.MaxTypeLen)
	case (*e.Type)[:1] == protocol.ReservedPrefix:
		return stream.Event{}, errorf(protocol.CodeReservedType,
			"events[%d].type must not start with %q, which is reserved for the server", i, protocol.ReservedPrefix)
	case protocol.TypeHasControl(*e.Type):
		return stream.Event{}, errorf(protocol.CodeBadRequest,
			"events[%d].type must not hold control characters (U+0000 to U+001F, U+007F to U+009F)", i)
	}
	body := e.Body
	switch {
	case body == nil:
		body = emptyBody
	case body[0] != '"':
		return stream.Event{}, errorf(protocol.CodeBadRequest,
			"events[%d].body must be a JSON string", i)
	case len(body)-2 > s.limits.MaxEventBodyBytes:
		return stream.Event{}, errorf(protocol.CodeTooLarge,
			"events[%d].body is larger than %d bytes", i, s.limits.MaxEventBodyBytes)
	case !utf8.Valid(body):
		return stream.Event{}, errorf(protocol.CodeBadRequest,
			"events[%d].body must be valid UTF-8", i)
	}
	return stream.Event{Type: *e.Type, Body: body}, nil
}

// syncQuery is what the query of a sync's route may say.
type syncQuery struct {
	epoch    string   // the first epoch, as url.Values.Get
	spectate []string // every spectate value
}

// requestQuery parses r's query: nothing for the most requests, which
// carry none, and without url.ParseQuery's map for the most others, a
// sole ?epoch= as clients send it, whose value has nothing to unescape.
func requestQuery(r *http.Request) syncQuery {
	raw := r.URL.RawQuery
	if raw == "" {
		return syncQuery{}
	}
	if v, ok := strings.CutPrefix(raw, "epoch="); ok && plainQueryValue(v) {
		return syncQuery{epoch: v}
	}
	q := r.URL.Query()
	return syncQuery{epoch: q.Get("epoch"), spectate: q[spectateParam]}
}

// plainQueryValue reports whether url.ParseQuery reads v as itself: only
// letters, digits and '-', so nothing ends, splits or escapes it.
func plainQueryValue(v string) bool {
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-':
		default:
			return false
		}
	}
	return true
}

// readBody reads the body of r, at most limit bytes; what names it in
// the error past the limit.
func readBody(r *http.Request, limit int64, what string) ([]byte, error) {
	if r.ContentLength == 0 || r.Body == nil || r.Body == http.NoBody {
		return nil, nil // most polls: nothing to read, nothing to allocate
	}
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, limit))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, errorf(protocol.CodeTooLarge, "%s is larger than %d bytes", what, limit)
		}
		return nil, errorf(protocol.CodeBadRequest, "the request body could not be read")
	}
	return body, nil
}

// validNames validates a stream name and a client's id, private or public.
func validNames(stream, client string) error {
	if !protocol.ValidName(stream) {
		return errorf(protocol.CodeBadStream,
			"the stream name must be 1 to %d characters of A-Z a-z 0-9 . _ ~ -", protocol.MaxNameLen)
	}
	if !protocol.ValidName(client) {
		return errorf(protocol.CodeBadClient,
			"the client id must be 1 to %d characters of A-Z a-z 0-9 . _ ~ -", protocol.MaxNameLen)
	}
	return nil
}

// parseTick parses a last known tick: decimal digits only, within int64.
func parseTick(s string) (int64, bool) {
	if s == "" || len(s) > 19 {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

// bodyError explains why a body is not a valid sync request, without
// repeating the body.
func bodyError(err error) error {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	var ae *apiError
	switch {
	case errors.As(err, &ae): // portable's
		return ae
	case errors.As(err, &syntax):
		return errorf(protocol.CodeBadRequest,
			"the body is not valid JSON (at byte %d); send {\"batch\":\"...\",\"events\":[{\"type\":\"...\",\"body\":\"...\"}]}", syntax.Offset)
	case errors.As(err, &typ) && typ.Field != "":
		return errorf(protocol.CodeBadRequest,
			"%s must not be a JSON %s", typ.Field, typ.Value)
	default:
		return errorf(protocol.CodeBadRequest, "%s", bodyShape)
	}
}

const bodyShape = `the body must be a JSON object: {"batch":"...","events":[{"type":"...","body":"..."}]}`
