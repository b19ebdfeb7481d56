package esclient

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/goeventstream/eventstream/internal/protocol"
)

// Error is an error reply from the server.
type Error struct {
	// Status is the HTTP status code.
	Status int
	// Code is the protocol's error code, such as "bad_stream"; empty if the
	// reply was not an eventstreamd error.
	Code string
	// Message says what was wrong.
	Message string
	// RetryAfter is how long the server asked to wait before a retry (the
	// Retry-After header of a 429 or 503); zero when it did not say.
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("eventstreamd: %d %s: %s", e.Status, http.StatusText(e.Status), e.Message)
	}
	return fmt.Sprintf("eventstreamd: %d %s: %s", e.Status, e.Code, e.Message)
}

// Retryable reports whether sending the same request again may succeed:
// true for server errors (5xx), 408 and 429, and for epoch_mismatch, after
// which the next sync asks for the stream's new epoch before it sends
// events. Any other 4xx will fail again.
func (e *Error) Retryable() bool {
	return e.Status >= 500 || e.Status == http.StatusRequestTimeout || e.Status == http.StatusTooManyRequests ||
		e.Code == protocol.CodeEpochMismatch
}

// Errors Send returns.
var (
	// ErrReservedType means the event type starts with "_".
	ErrReservedType = errors.New("esclient: event types starting with _ are reserved for the server")
	// ErrBadType means the event type is empty, longer than MaxTypeLen or
	// holds a control character (U+0000 to U+001F, U+007F to U+009F): the
	// server would refuse the whole batch it is in.
	ErrBadType = fmt.Errorf("esclient: an event type must be 1 to %d bytes with no control character", MaxTypeLen)
	// ErrBodyTooLarge means the body is longer than MaxBodyLen once encoded.
	ErrBodyTooLarge = fmt.Errorf("esclient: an event body must be at most %d bytes encoded", MaxBodyLen)
	// ErrBadBody means the body is not valid UTF-8, which JSON cannot carry.
	ErrBadBody = errors.New("esclient: an event body must be valid UTF-8")
	// ErrQueueFull means Config.MaxQueue events wait to be sent already.
	ErrQueueFull = errors.New("esclient: the send queue is full")
	// ErrSpectator means the client is a spectator (Config.Spectate), which
	// may not send events nor upload.
	ErrSpectator = errors.New("esclient: a spectator reads the stream: it sends no events and uploads nothing")
)

// ErrNotSpectating means a spectator's request was answered as a
// player's (the reply has a public id): the server predates spectators,
// and connected the client as a player. Run returns it.
var ErrNotSpectating = errors.New("esclient: the server answered a spectator as a player: it does not know spectators")

// retryAfter parses a Retry-After header given in seconds; zero for none.
func retryAfter(h http.Header) time.Duration {
	n, err := strconv.Atoi(h.Get("Retry-After"))
	if err != nil || n < 0 {
		return 0
	}
	return time.Duration(min(n, maxRetryAfter)) * time.Second
}

// maxRetryAfter caps the server's Retry-After, in seconds.
const maxRetryAfter = 3600
