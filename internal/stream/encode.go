package stream

import (
	"strconv"

	"github.com/goeventstream/eventstream/internal/protocol"
)

// appendEvent appends one event, encoded as JSON and preceded by a comma,
// to dst. body must be a JSON string literal; it is copied as is.
func appendEvent(dst []byte, t int64, typ, origin string, body []byte) []byte {
	dst = append(dst, `,{"t":`...)
	dst = strconv.AppendInt(dst, t, 10)
	dst = append(dst, `,"type":`...)
	dst = protocol.AppendString(dst, typ)
	dst = append(dst, `,"origin":`...)
	dst = protocol.AppendString(dst, origin)
	dst = append(dst, `,"body":`...)
	dst = append(dst, body...)
	return append(dst, '}')
}
