// Package protocol holds the facts of the eventstreamd wire protocol (v1)
// that the server and its Go clients share: reserved event types, name
// rules, default limits, error codes and the JSON shapes of a reply.
//
// docs/protocol.md is the contract; this package is its Go form. It has no
// state and is safe for concurrent use.
package protocol

import (
	"net/http"
	"strconv"
	"strings"
	"unicode"
)

// Server event types. Every type starting with ReservedPrefix belongs to the
// server; clients may not post one.
const (
	// TypeReset starts a stream at tick 0; its body is the stream's epoch.
	TypeReset = "_a"
	// TypeConnect marks a client joining; its body is the client's public id.
	TypeConnect = "_c"
	// TypeDisconnect marks a client that went silent; its body is the
	// client's public id.
	TypeDisconnect = "_d"
	// TypeDesync names the clients whose state diverged at a checkpoint;
	// its body is the JSON text of a Desync.
	TypeDesync = "_x"
	// ServerOrigin is the origin of every event the server appends.
	ServerOrigin = "_"
	// ReservedPrefix starts every server event type.
	ReservedPrefix = "_"
)

// Fixed limits of the protocol.
const (
	// MaxNameLen is the longest stream name or private id, in bytes.
	MaxNameLen = 128
	// MaxTypeLen is the longest event type, in bytes.
	MaxTypeLen = 64
	// MaxBatchLen is the longest batch id, in bytes.
	MaxBatchLen = 64
	// BatchMemory is how many accepted batch ids the server remembers per
	// client and stream, and so the most batches a client may have
	// unacknowledged at once: a batch resent after BatchMemory newer ones
	// were accepted is appended again (docs/protocol.md, "Body"). Both
	// stores and the clients read it.
	BatchMemory = 8
	// MaxHashReports is the most hash reports one request carries.
	MaxHashReports = 16
	// MaxHashLen is the longest hash of a report, in hex characters.
	MaxHashLen = 64
)

// Default limits; servers may be configured with others.
const (
	DefaultTickRate            = 20
	DefaultMaxBodyBytes        = 64 << 10
	DefaultMaxEventsPerSync    = 256
	DefaultMaxEventBodyBytes   = 16 << 10
	DefaultPageEvents          = 4096
	DefaultMaxClientsPerStream = 1000
)

// Error codes, as found in an error reply's "code". Each has one HTTP
// status, given by Status.
const (
	CodeBadStream        = "bad_stream"
	CodeBadClient        = "bad_client"
	CodeBadTick          = "bad_tick"
	CodeBadRequest       = "bad_request"
	CodeReservedType     = "reserved_type"
	CodeTooManyEvents    = "too_many_events"
	CodeTooLarge         = "too_large"
	CodeNotFound         = "not_found"
	CodeMethodNotAllowed = "method_not_allowed"
	// CodeBadOrigin: a browser's Origin that may not open push connections.
	CodeBadOrigin = "bad_origin"
	// CodeUpgradeRequired: a push upgrade that is not a WebSocket
	// handshake of HTTP/1.1.
	CodeUpgradeRequired  = "upgrade_required"
	CodeServerFull       = "server_full"
	CodeServerBusy       = "server_busy"
	CodeStreamFull       = "stream_full"
	CodeRateLimited      = "rate_limited"
	CodeStoreUnavailable = "store_unavailable"
	CodeStoreUnknown     = "store_unknown"
	CodeInternal         = "internal"
	// CodeSnapshotMismatch: a snapshot whose SHA-256 is not the canonical
	// hash of its checkpoint.
	CodeSnapshotMismatch = "snapshot_mismatch"
	// CodeEpochMismatch: a request that posts events naming an epoch that
	// is not the stream's; nothing was applied.
	CodeEpochMismatch = "epoch_mismatch"
	// CodeUnauthorized: a stream that needs a token got none, or one that
	// is not valid (401, with WWW-Authenticate: Bearer).
	CodeUnauthorized = "unauthorized"
	// CodeTokenExpired: the token was valid and has expired (401); the
	// client gets a new one and retries.
	CodeTokenExpired = "token_expired"
	// CodeForbidden: the token is valid but does not admit to this: another
	// stream, another private id, or a spectator posting or uploading (403).
	CodeForbidden = "forbidden"
)

// errorTable is the table of docs/protocol.md, "Errors": each code and its
// HTTP status. The server answers with these statuses, and a client reads
// the status of an error that came as a push message here.
var errorTable = []struct {
	code   string
	status int
}{
	{CodeBadStream, http.StatusBadRequest},
	{CodeBadClient, http.StatusBadRequest},
	{CodeBadTick, http.StatusBadRequest},
	{CodeBadRequest, http.StatusBadRequest},
	{CodeReservedType, http.StatusBadRequest},
	{CodeTooManyEvents, http.StatusBadRequest},
	{CodeUnauthorized, http.StatusUnauthorized},
	{CodeTokenExpired, http.StatusUnauthorized},
	{CodeBadOrigin, http.StatusForbidden},
	{CodeForbidden, http.StatusForbidden},
	{CodeNotFound, http.StatusNotFound},
	{CodeUpgradeRequired, http.StatusUpgradeRequired},
	{CodeMethodNotAllowed, http.StatusMethodNotAllowed},
	{CodeStreamFull, http.StatusConflict},
	{CodeSnapshotMismatch, http.StatusConflict},
	{CodeEpochMismatch, http.StatusConflict},
	{CodeTooLarge, http.StatusRequestEntityTooLarge},
	{CodeRateLimited, http.StatusTooManyRequests},
	{CodeServerFull, http.StatusServiceUnavailable},
	{CodeServerBusy, http.StatusServiceUnavailable},
	{CodeStoreUnavailable, http.StatusServiceUnavailable},
	{CodeStoreUnknown, http.StatusServiceUnavailable},
	{CodeInternal, http.StatusInternalServerError},
}

// CloseTokenExpired is the close code of a push connection whose token
// expired without a renewal (docs/protocol.md, "Push"): the client gets a
// new token and reconnects.
const CloseTokenExpired = 4003

// ErrorCodes lists every error code, for metrics that count them.
var ErrorCodes = func() []string {
	codes := make([]string, len(errorTable))
	for i, e := range errorTable {
		codes[i] = e.code
	}
	return codes
}()

// Status returns the HTTP status of an error code; 400 for a code it does
// not know (a newer server's): a request refused for a reason this
// version cannot name will not pass by being sent again.
func Status(code string) int {
	for _, e := range errorTable {
		if e.code == code {
			return e.status
		}
	}
	return http.StatusBadRequest
}

// TypeHasControl reports whether event type typ holds a control character
// (U+0000 to U+001F, U+007F to U+009F), which the server refuses: the
// server checks a posted type with it, and esclient a type before it is
// queued. Mirrored in clients/ts/src/client.ts (EventStreamClient.send).
func TypeHasControl(typ string) bool { return strings.ContainsFunc(typ, unicode.IsControl) }

// ValidName reports whether s may be a stream name or a private id:
// 1 to MaxNameLen characters of [A-Za-z0-9._~-].
func ValidName(s string) bool {
	if len(s) == 0 || len(s) > MaxNameLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !nameChar[s[i]] {
			return false
		}
	}
	return true
}

var nameChar = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range "._~-" {
		t[c] = true
	}
	return t
}()

// Event is one event of a stream as the server sends it.
type Event struct {
	T      int64  `json:"t"`
	Type   string `json:"type"`
	Origin string `json:"origin"`
	Body   string `json:"body"`
}

// SyncReply is the body of a successful sync, as docs/protocol.md gives
// it: the reference the tests decode replies into. The server writes it
// without encoding/json (internal/api).
type SyncReply = Reply[Event]

// Reply is a sync reply whose events are of type E: SyncReply, and the
// reply esclient decodes into its own exported Event.
type Reply[E any] struct {
	ID     string `json:"id"`
	T      int64  `json:"t"`
	Epoch  string `json:"epoch"`
	TPS    int    `json:"tps"`
	Events []E    `json:"events"`
	More   bool   `json:"more,omitempty"`
	// Ckpt is the checkpoint interval; Snap and Dump the checkpoint whose
	// snapshot or desync dump the server asks for; Base the snapshot a
	// compacted reply starts after.
	Ckpt int64  `json:"ckpt"`
	Snap *int64 `json:"snap,omitempty"`
	Dump *int64 `json:"dump,omitempty"`
	Base *int64 `json:"base,omitempty"`
}

// Desync is the body of a TypeDesync event: the checkpoint tick and the
// public ids of the clients that diverged there.
type Desync struct {
	T   int64    `json:"t"`
	IDs []string `json:"ids"`
}

// HashReport is one of a request's "hashes": a client's state hash at the
// end of checkpoint tick T, as lowercase hex.
type HashReport struct {
	T int64  `json:"t"`
	H string `json:"h"`
}

// ValidHash reports whether h may be a report's hash: 1 to MaxHashLen
// lowercase hex characters.
func ValidHash(h string) bool {
	if len(h) == 0 || len(h) > MaxHashLen {
		return false
	}
	for i := 0; i < len(h); i++ {
		if c := h[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// ErrorReply is the body of every error, over HTTP and as a push message.
type ErrorReply struct {
	Error ErrorBody `json:"error"`
}

// ErrorBody says what went wrong.
type ErrorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	// RetryAfter is how many seconds to wait before a retry; 0 when the
	// server does not say. Over HTTP it is the Retry-After header too.
	RetryAfter int `json:"retryAfter,omitempty"`
	// Batch is the batch id of the push message that was refused, when it
	// had one.
	Batch string `json:"batch,omitempty"`
}

// AppendError appends the JSON of e's error reply, {"error":{…}}, to dst:
// the one encoder of an error, for HTTP replies and push messages alike.
func AppendError(dst []byte, e ErrorBody) []byte {
	dst = append(dst, `{"error":{"code":`...)
	dst = AppendString(dst, e.Code)
	dst = append(dst, `,"message":`...)
	dst = AppendString(dst, e.Message)
	if e.RetryAfter > 0 {
		dst = append(dst, `,"retryAfter":`...)
		dst = strconv.AppendInt(dst, int64(e.RetryAfter), 10)
	}
	if e.Batch != "" {
		dst = append(dst, `,"batch":`...)
		dst = AppendString(dst, e.Batch)
	}
	return append(dst, "}}"...)
}
