package api

import (
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// decodeBody decodes a sync body into wire. Most bodies are in the form
// clients write (esclient's: plain strings, known fields, each once), and
// a small scanner reads those without reflection; anything else (escapes,
// unknown fields, repeated keys, odd numbers, invalid JSON) goes to
// encoding/json, which gives the same result or the error to answer.
// FuzzDecodeBody holds the two to the same results.
func decodeBody(body []byte, wire *wireRequest) error {
	if (&bodyScanner{b: body}).request(wire) {
		return nil
	}
	*wire = wireRequest{}
	return json.Unmarshal(body, wire)
}

// bodyScanner reads the common form of a sync body. Every method returns
// false on anything it does not expect, and decodeBody falls back.
type bodyScanner struct {
	b []byte
	i int
}

func (s *bodyScanner) ws() {
	for s.i < len(s.b) && (s.b[s.i] == ' ' || s.b[s.i] == '\t' || s.b[s.i] == '\n' || s.b[s.i] == '\r') {
		s.i++
	}
}

func (s *bodyScanner) take(c byte) bool {
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// raw reads a string with no escapes and no control characters, of valid
// UTF-8, and returns it with its quotes.
func (s *bodyScanner) raw() ([]byte, bool) {
	s.ws()
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return nil, false
	}
	start := s.i
	for j := s.i + 1; j < len(s.b); j++ {
		switch c := s.b[j]; {
		case c == '"':
			s.i = j + 1
			lit := s.b[start:s.i]
			return lit, utf8.Valid(lit)
		case c == '\\' || c < 0x20:
			return nil, false
		}
	}
	return nil, false
}

func (s *bodyScanner) str() (*string, bool) {
	lit, ok := s.raw()
	if !ok {
		return nil, false
	}
	v := string(lit[1 : len(lit)-1])
	return &v, true
}

// int reads an integer as JSON writes one: -?(0|[1-9][0-9]*), within int64.
func (s *bodyScanner) int() (*int64, bool) {
	s.ws()
	start := s.i
	if s.i < len(s.b) && s.b[s.i] == '-' {
		s.i++
	}
	digits := s.i
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
	}
	if s.i == digits || (s.b[digits] == '0' && s.i > digits+1) {
		return nil, false
	}
	if s.i < len(s.b) && (s.b[s.i] == '.' || s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		return nil, false
	}
	v, err := strconv.ParseInt(string(s.b[start:s.i]), 10, 64)
	return &v, err == nil
}

// object reads an object whose keys are among known, each at most once,
// calling field to read each value.
func (s *bodyScanner) object(field func(key string) bool) bool {
	if !s.take('{') {
		return false
	}
	if s.take('}') {
		return true
	}
	var seen []string
	for {
		key, ok := s.raw()
		if !ok || !s.take(':') {
			return false
		}
		k := string(key[1 : len(key)-1])
		for _, x := range seen {
			if x == k {
				return false // encoding/json keeps the last: let it
			}
		}
		seen = append(seen, k)
		if !field(k) {
			return false
		}
		if s.take(',') {
			continue
		}
		return s.take('}')
	}
}

// array reads an array, calling elem for each element.
func (s *bodyScanner) array(elem func() bool) bool {
	if !s.take('[') {
		return false
	}
	if s.take(']') {
		return true
	}
	for {
		if !elem() {
			return false
		}
		if s.take(',') {
			continue
		}
		return s.take(']')
	}
}

// objects reads an array of objects, each read by field into a T.
func objects[T any](s *bodyScanner, field func(e *T, key string) bool) ([]T, bool) {
	out := []T{}
	ok := s.array(func() bool {
		var e T
		if !s.object(func(key string) bool { return field(&e, key) }) {
			return false
		}
		out = append(out, e)
		return true
	})
	return out, ok
}

func (s *bodyScanner) request(w *wireRequest) bool {
	ok := s.object(func(key string) bool {
		var ok bool
		switch key {
		case "batch":
			w.Batch, ok = s.str()
		case "events":
			w.Events, ok = objects(s, func(e *wireEvent, key string) bool {
				var ok bool
				switch key {
				case "type":
					e.Type, ok = s.str()
				case "body":
					e.Body, ok = s.raw()
				}
				return ok
			})
		case "hashes":
			w.Hashes, ok = objects(s, func(h *wireHash, key string) bool {
				var ok bool
				switch key {
				case "t":
					h.T, ok = s.int()
				case "h":
					h.H, ok = s.str()
				}
				return ok
			})
		}
		return ok
	})
	s.ws()
	return ok && s.i == len(s.b)
}
