package stream

import (
	"strconv"
	"unicode/utf8"
)

// appendEvent appends one event, encoded as JSON and preceded by a comma,
// to dst. body must be a JSON string literal; it is copied as is.
func appendEvent(dst []byte, t int64, typ, origin string, body []byte) []byte {
	dst = append(dst, `,{"t":`...)
	dst = strconv.AppendInt(dst, t, 10)
	dst = append(dst, `,"type":`...)
	dst = appendString(dst, typ)
	dst = append(dst, `,"origin":`...)
	dst = appendString(dst, origin)
	dst = append(dst, `,"body":`...)
	dst = append(dst, body...)
	return append(dst, '}')
}

// appendServerEvent appends a server event whose body is the string body.
func appendServerEvent(dst []byte, t int64, typ, body string) []byte {
	return appendEvent(dst, t, typ, serverOrigin, appendString(nil, body))
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string literal. Invalid UTF-8 becomes
// U+FFFD, as encoding/json does.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				dst = append(dst, '\\', c)
			case c < 0x20:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				dst = append(dst, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, `\ufffd`...)
		} else {
			dst = append(dst, s[i:i+size]...)
		}
		i += size
	}
	return append(dst, '"')
}
