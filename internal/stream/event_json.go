package stream

import (
	"bytes"
	"strconv"

	"github.com/goeventstream/eventstream/internal/protocol"
)

// The event's JSON, one rule for both stores: an event is encoded once,
// when it is appended, as
//
//	{"t":<tick>,"type":<type>,"origin":<origin>,"body":<body>}
//
// with the fields in this order and no spaces, so that a reply is a copy
// of stored bytes and a stored event's tick can be read from its head.
// Mirrored in lua/prelude.lua (encode_event) for the Redis store; the
// conformance suite checks that both stores write exactly this form.

// eventHead starts every encoded event; the tick follows it.
const eventHead = `{"t":`

// appendEvent appends one event, encoded as JSON and preceded by a comma,
// to dst. body must be a JSON string literal; it is copied as is.
func appendEvent(dst []byte, t int64, typ, origin string, body []byte) []byte {
	dst = append(dst, ',')
	dst = append(dst, eventHead...)
	dst = strconv.AppendInt(dst, t, 10)
	dst = append(dst, `,"type":`...)
	dst = protocol.AppendString(dst, typ)
	dst = append(dst, `,"origin":`...)
	dst = protocol.AppendString(dst, origin)
	dst = append(dst, `,"body":`...)
	dst = append(dst, body...)
	return append(dst, '}')
}

// eventLen returns the length of an event as appendEvent encodes it,
// without the comma before it.
func eventLen(t int64, typ, origin string, body []byte) int {
	var head [160]byte // the head of most events; a longer one still works
	return len(appendEvent(head[:0], t, typ, origin, nil)) - 1 + len(body)
}

type rawEvent struct {
	t   int64
	raw []byte
}

// splitEvents splits events encoded by appendEvent (or its Lua mirror),
// separated by commas, into events: each starts with eventHead and its
// tick, so the tick is read without decoding the event.
func splitEvents(b []byte) []rawEvent {
	var out []rawEvent
	for len(b) > 0 {
		end := objectEnd(b)
		if end < 0 {
			return out
		}
		obj := b[:end]
		t, _ := eventTick(obj)
		out = append(out, rawEvent{t: t, raw: obj})
		b = b[end:]
		if len(b) > 0 && b[0] == ',' {
			b = b[1:]
		}
	}
	return out
}

// eventTick reads the tick of the event that starts b, from its head,
// and reports whether b starts with one.
func eventTick(b []byte) (int64, bool) {
	if !bytes.HasPrefix(b, []byte(eventHead)) {
		return 0, false
	}
	var t int64
	digits := 0
	for _, c := range b[len(eventHead):] {
		if c < '0' || c > '9' {
			break
		}
		t = t*10 + int64(c-'0')
		digits++
	}
	return t, digits > 0
}

// EventsFrom returns the tail of events, a reply's events as a store
// returns them (SyncResult.Events), from the first event of tick from on,
// or nil if none is. It finds each event by its head, which no body holds
// unescaped, and reads no more than the heads: a push server cuts a read
// it shares to each connection's cursor with it.
func EventsFrom(events []byte, from int64) []byte {
	sep := []byte("," + eventHead)
	for i := 0; i < len(events); {
		if t, ok := eventTick(events[i:]); ok && t >= from {
			return events[i:]
		}
		n := bytes.Index(events[i+1:], sep)
		if n < 0 {
			return nil
		}
		i += n + 2
	}
	return nil
}

// objectEnd returns the length of the JSON object at the start of b.
func objectEnd(b []byte) int {
	depth, inString := 0, false
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch {
		case inString && c == '\\':
			i++
		case c == '"':
			inString = !inString
		case inString:
		case c == '{':
			depth++
		case c == '}':
			depth--
			if depth == 0 {
				return i + 1
			}
		}
	}
	return -1
}
