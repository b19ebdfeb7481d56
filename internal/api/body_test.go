package api

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

var bodies = []string{
	`{}`,
	`{"batch":"b1","events":[{"type":"move","body":"left"},{"type":"aim","body":""}]}`,
	`{"events":[{"type":"m","body":"{\"x\":3}"}]}`,
	`{"events":[{"type":"m"}],"hashes":[{"t":20,"h":"ab"},{"t":-0,"h":"cd"}]}`,
	` { "batch" : "b" , "events" : [ ] , "hashes" : [ ] } `,
	`{"batch":"b","batch":"c"}`,
	`{"Batch":"b"}`,
	`{"events":null}`,
	`{"events":[{"type":"m","body":"x","t":-1}]}`,
	`{"hashes":[{"t":1.0,"h":"ab"}]}`,
	`{"hashes":[{"t":01,"h":"ab"}]}`,
	`{"hashes":[{"t":9223372036854775808,"h":"ab"}]}`,
	`{"events":[{"type":"m","body":"bad ` + "\xff" + `"}]}`,
	`{"events":[{"type":"m","body":"tab	"}]}`,
	`{"events":[{"type":"m","body":5}]}`,
	`{"batch":"b"}x`,
	`{"batch":"b"`,
	`[]`,
	`{"events":[{"type":"m","body":"x"},]}`,
	// Read otherwise by other parsers: refused (TestDecodeBodyRefuses).
	`{"events":[{"type":"m","body":"\ud800"}]}`,
	`{"events":[{"type":"m","body":"x"}],"events":[]}`,
	`{"Events":[{"type":"m","body":"x"}]}`,
	`{"events":[{"type":"m","type":"n"}]}`,
	`{"events":[{"type":"m\u0000"}]}`,
	`{"batch":"\udc00\ud800"}`,
	// Escapes that every parser reads alike: accepted.
	`{"events":[{"type":"\u006d","body":"\ud83d\ude00 \"\\\/\b\f\n\r\t"}],"x":{"a":[1,{"b":null}]}}`,
}

// FuzzDecodeBody: whatever the body, decodeBody answers without panicking,
// and the scanner's result, when it gives one, is encoding/json's, of a
// body portable accepts.
func FuzzDecodeBody(f *testing.F) {
	for _, b := range bodies {
		f.Add([]byte(b))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		_ = decodeBody(body, &wireRequest{})
		var fast wireRequest
		if !(&bodyScanner{b: body}).request(&fast) {
			return // decodeBody falls back to encoding/json
		}
		var slow wireRequest
		require.NoError(t, json.Unmarshal(body, &slow), "the scanner read what encoding/json refuses: %q", body)
		require.Equal(t, normalize(slow), normalize(fast), "%q", body)
		require.NoError(t, portable(body), "the scanner read what other parsers read otherwise: %q", body)
	})
}

// normalize makes nil and empty slices alike: they mean the same here.
func normalize(w wireRequest) wireRequest {
	if len(w.Events) == 0 {
		w.Events = nil
	}
	if len(w.Hashes) == 0 {
		w.Hashes = nil
	}
	return w
}

// TestDecodeBodyTakesTheCommonForm: what clients write is read by the
// scanner, not by reflection.
func TestDecodeBodyTakesTheCommonForm(t *testing.T) {
	for _, b := range []string{bodies[0], bodies[1], bodies[3], bodies[4]} {
		var w wireRequest
		require.True(t, (&bodyScanner{b: []byte(b)}).request(&w), "%s", b)
	}
}

// TestDecodeBodyRefuses: what parsers of other languages would read
// otherwise than encoding/json is refused, so that every client sees the
// same events (docs/protocol.md, "Body"); escapes they all read alike are
// not.
func TestDecodeBodyRefuses(t *testing.T) {
	tests := []struct {
		name string
		give string
		want string // in the error's message; "" for none
	}{
		{name: "a lone high surrogate", give: `{"events":[{"type":"m","body":"\ud800"}]}`, want: "lone surrogate"},
		{name: "a lone low surrogate", give: `{"events":[{"type":"m","body":"a\udfffb"}]}`, want: "lone surrogate"},
		{name: "a pair in the wrong order", give: `{"batch":"\udc00\ud800"}`, want: "lone surrogate"},
		{name: "a high surrogate before another escape", give: `{"batch":"\ud800\u0041"}`, want: "lone surrogate"},
		{name: "a lone surrogate in an unknown field", give: `{"x":["\ud800"]}`, want: "lone surrogate"},
		{name: "a lone surrogate in a key", give: `{"\ud800":1}`, want: "lone surrogate"},
		{name: "two events keys", give: `{"events":[{"type":"m","body":"x"}],"events":[]}`, want: "key twice"},
		{name: "two keys alike after escapes", give: `{"events":[],"\u0065vents":[{"type":"m"}]}`, want: "key twice"},
		{name: "two type keys", give: `{"events":[{"type":"m","type":"n"}]}`, want: "key twice"},
		{name: "two keys in an unknown object", give: `{"x":{"a":1,"a":2}}`, want: "key twice"},
		{name: "a key in another case", give: `{"Events":[{"type":"m","body":"x"}]}`, want: "only in case"},
		{name: "a key folding to a field", give: "{\"hashe\u017f\":[]}", want: "only in case"},
		{name: "an event key in another case", give: `{"events":[{"TYPE":"m"}]}`, want: "only in case"},
		{name: "bytes that are not UTF-8", give: "{\"events\":[{\"type\":\"m\xff\"}]}", want: "UTF-8"},
		{name: "a pair", give: `{"events":[{"type":"m","body":"\ud83d\ude00"}]}`},
		{name: "escapes", give: `{"events":[{"type":"\u006d","body":"\u0000\"\\\/\b\f\n\r\t\u00e9"}]}`},
		{name: "an unknown key in another case than another unknown key", give: `{"x":1,"X":2}`},
		{name: "nested unknown values", give: `{"x":{"a":[1,-2.5e3,true,false,null,{"b":"c"}]},"batch":"b"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var w wireRequest
			err := decodeBody([]byte(tt.give), &w)
			if tt.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tt.want)
			require.Equal(t, "bad_request", bodyError(err).(*apiError).Code)
		})
	}
}
