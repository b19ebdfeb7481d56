package api

import (
	"encoding/json"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/goeventstream/eventstream/internal/protocol"
)

// decodeBody decodes a sync body into wire. Most bodies are in the form
// clients write (esclient's: plain strings, known fields, each once), and
// a small scanner reads those without reflection; anything else (escapes,
// unknown fields, repeated keys, odd numbers, invalid JSON) goes to
// encoding/json, which gives the same result or the error to answer, and
// then to portable, which refuses what other parsers would read otherwise.
// FuzzDecodeBody holds the scanner to encoding/json's results and to
// portable's rules.
func decodeBody(body []byte, wire *wireRequest) error {
	if (&bodyScanner{b: body}).request(wire) {
		return nil
	}
	*wire = wireRequest{}
	if err := json.Unmarshal(body, wire); err != nil {
		return err
	}
	return portable(body)
}

// portable refuses a body, valid JSON, that parsers of other languages
// would read otherwise than encoding/json, so that every client of a
// stream sees the same events byte for byte (docs/protocol.md, "Body"):
//
//   - bytes that are not UTF-8 (encoding/json reads them as U+FFFD);
//   - a string holding a lone surrogate escape, such as "\ud800"
//     (encoding/json reads U+FFFD, Python and JavaScript keep it);
//   - an object with a key twice, after escapes ("events" and
//     "\u0065vents" are one key): parsers keep the first or the last;
//   - a key of the request that differs from a field's name only in case,
//     such as "Events" (encoding/json matches it, others ignore it).
func portable(body []byte) error {
	if !utf8.Valid(body) {
		return errorf(protocol.CodeBadRequest, "the body must be valid UTF-8")
	}
	w := portableWalker{b: body}
	w.value(requestShape)
	return w.err
}

// shape is what the objects of a place of the body hold: their fields and
// the shape of each field's value. An array's elements have its shape.
type shape map[string]shape

var requestShape = shape{
	"batch":  nil,
	"epoch":  nil,
	"events": {"type": nil, "body": nil},
	"hashes": {"t": nil, "h": nil},
}

// portableWalker walks a valid JSON text and keeps the first rule of
// portable it breaks.
type portableWalker struct {
	b   []byte
	i   int
	err error
}

func (w *portableWalker) ws() {
	for w.i < len(w.b) && (w.b[w.i] == ' ' || w.b[w.i] == '\t' || w.b[w.i] == '\n' || w.b[w.i] == '\r') {
		w.i++
	}
}

func (w *portableWalker) fail(format string, args ...any) {
	if w.err == nil {
		w.err = errorf(protocol.CodeBadRequest, format, args...)
	}
}

// value walks the value at w.i, of shape s.
func (w *portableWalker) value(s shape) {
	w.ws()
	if w.err != nil || w.i >= len(w.b) {
		return
	}
	switch w.b[w.i] {
	case '{':
		w.i++
		seen := map[string]bool{}
		for w.ws(); w.err == nil && w.b[w.i] != '}'; w.ws() {
			if w.b[w.i] == ',' {
				w.i++
				w.ws()
			}
			key := w.string()
			if seen[key] {
				w.fail("an object holds a key twice, which parsers read differently; send each key once")
			}
			seen[key] = true
			if _, known := s[key]; !known {
				for field := range s {
					if strings.EqualFold(key, field) {
						w.fail("a key differs from the field %q only in case; keys are case-sensitive", field)
					}
				}
			}
			w.ws()
			w.i++ // the colon
			w.value(s[key])
		}
		w.i++
	case '[':
		w.i++
		for w.ws(); w.err == nil && w.b[w.i] != ']'; w.ws() {
			if w.b[w.i] == ',' {
				w.i++
			}
			w.value(s)
		}
		w.i++
	case '"':
		w.string()
	default: // a number, true, false or null
		for w.i < len(w.b) && !strings.ContainsRune(",]} \t\n\r", rune(w.b[w.i])) {
			w.i++
		}
	}
}

// string reads the string at w.i and returns it decoded, refusing a lone
// surrogate escape.
func (w *portableWalker) string() string {
	var out []byte
	w.i++ // the opening quote
	for w.i < len(w.b) && w.b[w.i] != '"' {
		c := w.b[w.i]
		w.i++
		if c != '\\' {
			out = append(out, c)
			continue
		}
		e := w.b[w.i]
		w.i++
		if e != 'u' {
			out = append(out, unescape[e])
			continue
		}
		r := w.hex4()
		if utf16.IsSurrogate(r) {
			low := rune(-1)
			if w.i+1 < len(w.b) && w.b[w.i] == '\\' && w.b[w.i+1] == 'u' {
				w.i += 2
				low = w.hex4()
			}
			if r = utf16.DecodeRune(r, low); r == utf8.RuneError {
				w.fail("a string holds a lone surrogate escape (\\ud800 to \\udfff, not in a high-low pair), " +
					"which languages read differently; send the character itself or its pair")
			}
		}
		out = utf8.AppendRune(out, r)
	}
	w.i++ // the closing quote
	return string(out)
}

// hex4 reads the four hex digits of a \\u escape.
func (w *portableWalker) hex4() rune {
	v, _ := strconv.ParseUint(string(w.b[w.i:w.i+4]), 16, 32) // the JSON is valid: four hex digits
	w.i += 4
	return rune(v)
}

// unescape maps the character after a backslash to what it stands for.
var unescape = [256]byte{'"': '"', '\\': '\\', '/': '/', 'b': '\b', 'f': '\f', 'n': '\n', 'r': '\r', 't': '\t'}

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
		case "epoch":
			w.Epoch, ok = s.str()
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
