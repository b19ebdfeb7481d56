package esclient

import (
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// decodeReply parses a sync reply. A client spends most of its time here,
// so the canonical form the server writes is read by a small scanner that
// copies the reply once and cuts every plain string out of that copy; any
// other valid JSON (unknown fields, escapes in keys, unusual numbers) falls
// back to encoding/json, with the same result.
func decodeReply(data []byte, r *wireReply) error {
	s := scanner{b: data, src: string(data)}
	if s.reply(r) {
		return nil
	}
	*r = wireReply{}
	return json.Unmarshal(data, r)
}

// scanner reads the JSON the server writes. Every method returns false on
// anything it does not expect, and the caller falls back.
type scanner struct {
	b   []byte
	src string // b as a string: plain strings are cut from it, not copied one by one
	i   int
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) peek() byte {
	s.ws()
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

func (s *scanner) take(c byte) bool {
	if s.peek() == c {
		s.i++
		return true
	}
	return false
}

// raw reads a string and returns its bytes between the quotes, and
// whether they can be used as they are (no escapes, valid UTF-8).
func (s *scanner) raw() (raw []byte, plain, ok bool) {
	if !s.take('"') {
		return nil, false, false
	}
	start := s.i
	plain = true
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			raw = s.b[start:s.i]
			s.i++
			return raw, plain && utf8.Valid(raw), true
		case c == '\\':
			plain = false
			s.i += 2
		case c < 0x20:
			return nil, false, false
		default:
			s.i++
		}
	}
	return nil, false, false
}

// str reads a string. Strings with escapes or bytes that are not valid
// UTF-8 go through encoding/json, which decides what they mean.
func (s *scanner) str() (string, bool) {
	raw, plain, ok := s.raw()
	switch {
	case !ok:
		return "", false
	case plain:
		return s.src[s.i-len(raw)-1 : s.i-1], true
	}
	var v string
	if json.Unmarshal(s.b[s.i-len(raw)-2:s.i], &v) != nil {
		return "", false
	}
	return v, true
}

func (s *scanner) int() (int64, bool) {
	s.ws()
	start := s.i
	if s.i < len(s.b) && s.b[s.i] == '-' {
		s.i++
	}
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
	}
	digits := start // a leading zero is JSON only alone: 0 and -0, not 00 or -00
	if s.i > start && s.b[start] == '-' {
		digits++
	}
	if s.i == digits || s.i-start > 19 || (s.b[digits] == '0' && s.i-digits > 1) {
		return 0, false
	}
	n, err := strconv.ParseInt(string(s.b[start:s.i]), 10, 64)
	return n, err == nil
}

func (s *scanner) boolean() (bool, bool) {
	s.ws()
	switch {
	case len(s.b)-s.i >= 4 && string(s.b[s.i:s.i+4]) == "true":
		s.i += 4
		return true, true
	case len(s.b)-s.i >= 5 && string(s.b[s.i:s.i+5]) == "false":
		s.i += 5
		return false, true
	}
	return false, false
}

// object reads an object, calling field for each key; field reads the
// value. Keys with escapes are left to encoding/json.
func (s *scanner) object(field func(key []byte) bool) bool {
	if !s.take('{') {
		return false
	}
	if s.take('}') {
		return true
	}
	for {
		key, plain, ok := s.raw()
		if !ok || !plain || !s.take(':') || !field(key) {
			return false
		}
		if s.take(',') {
			continue
		}
		return s.take('}')
	}
}

func (s *scanner) reply(r *wireReply) bool {
	ok := s.object(func(key []byte) bool {
		var ok bool
		switch string(key) {
		case "id":
			r.ID, ok = s.str()
		case "t":
			r.T, ok = s.int()
		case "epoch":
			r.Epoch, ok = s.str()
		case "tps":
			var n int64
			n, ok = s.int()
			r.TPS = int(n)
		case "events":
			ok = s.events(r)
		case "more":
			r.More, ok = s.boolean()
		case "ckpt":
			r.Ckpt, ok = s.int()
		case "base":
			r.Base, ok = s.tick()
		case "snap":
			r.Snap, ok = s.tick()
		case "dump":
			r.Dump, ok = s.tick()
		}
		return ok
	})
	s.ws()
	return ok && s.i == len(s.b) && r.Events != nil
}

// tick reads a tick into a new *int64.
func (s *scanner) tick() (*int64, bool) {
	v, ok := s.int()
	return &v, ok
}

func (s *scanner) events(r *wireReply) bool {
	if !s.take('[') {
		return false
	}
	r.Events = make([]Event, 0, len(s.b)/96+1) // about the size of a typical event
	if s.take(']') {
		return true
	}
	for {
		var e Event
		ok := s.object(func(key []byte) bool {
			var ok bool
			switch string(key) {
			case "t":
				e.T, ok = s.int()
			case "type":
				e.Type, ok = s.str()
			case "origin":
				e.Origin, ok = s.str()
			case "body":
				e.Body, ok = s.str()
			}
			return ok
		})
		if !ok {
			return false
		}
		r.Events = append(r.Events, e)
		if s.take(',') {
			continue
		}
		return s.take(']')
	}
}
