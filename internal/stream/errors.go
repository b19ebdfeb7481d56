package stream

import "errors"

// Errors a Store returns. internal/api maps each to a status and a code.
var (
	// ErrServerFull means the store holds its maximum number of streams and
	// the request would have created another.
	ErrServerFull = errors.New("the server holds its maximum number of streams")
	// ErrTooManyClients means the stream has its maximum number of clients
	// and the request came from a new one.
	ErrTooManyClients = errors.New("the stream has its maximum number of clients")
	// ErrTooManyEvents means the request would take the stream past its
	// maximum number of events.
	ErrTooManyEvents = errors.New("the stream would pass its maximum number of events")
	// ErrUnavailable means the store's backend cannot be reached. Nothing
	// was applied.
	ErrUnavailable = errors.New("the store is unavailable")
)
