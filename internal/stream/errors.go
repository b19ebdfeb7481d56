package stream

import (
	"errors"
	"fmt"
)

// Errors a Store returns. internal/api maps each to a status and a code
// (docs/protocol.md); each sentinel is named as its code.
var (
	// ErrServerFull means the store holds its maximum number of streams and
	// the request would have created another (code server_full).
	ErrServerFull = errors.New("the server holds its maximum number of streams")
	// ErrStreamFull means the stream cannot take the request: ErrClientCap,
	// ErrEventCap or ErrByteCap (code stream_full).
	ErrStreamFull = errors.New("the stream is full")
	// ErrClientCap means the stream has its maximum number of clients and
	// the request came from a new one. It wraps ErrStreamFull.
	ErrClientCap = fmt.Errorf("%w: it has its maximum number of clients", ErrStreamFull)
	// ErrEventCap means the request would take the stream past its maximum
	// number of events. It wraps ErrStreamFull.
	ErrEventCap = fmt.Errorf("%w: the request would take it past its maximum number of events", ErrStreamFull)
	// ErrByteCap means the request would take the stream past its maximum
	// size in bytes. It wraps ErrStreamFull.
	ErrByteCap = fmt.Errorf("%w: the request would take it past its maximum size in bytes", ErrStreamFull)
	// ErrTickFull means the request would take the events of the tick in
	// progress past a page (Config.PageBytes), so that every reply stays
	// within a page; the next tick has room (code rate_limited).
	ErrTickFull = errors.New("the tick in progress holds a page of events; send the rest in the next tick")
	// ErrEpochMismatch means the request posted events naming an epoch that
	// is not the stream's: they were meant for a stream that is gone.
	// Nothing was applied (code epoch_mismatch).
	ErrEpochMismatch = errors.New("the request posts events to an epoch that is not the stream's; nothing was applied: sync without events to read the stream from its start")
	// ErrNewClient means a request with SyncRequest.KnownOnly came from a
	// private id the stream does not know. Nothing was applied. It is for
	// the caller that set KnownOnly, never for a client.
	ErrNewClient = errors.New("the request comes from a private id the stream does not know")
	// ErrUnavailable means the store's backend cannot be reached. Nothing
	// was applied (code store_unavailable).
	ErrUnavailable = errors.New("the store is unavailable")
	// ErrOutcomeUnknown means the store did not answer a sync that it may
	// have applied: a retry with the same batch id is safe (code
	// store_unknown). It wraps ErrUnavailable.
	ErrOutcomeUnknown = fmt.Errorf("%w: the request may have been applied", ErrUnavailable)
)
