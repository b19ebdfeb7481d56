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
}

// FuzzDecodeBody: whatever the body, the scanner's result, when it gives
// one, is encoding/json's.
func FuzzDecodeBody(f *testing.F) {
	for _, b := range bodies {
		f.Add([]byte(b))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var fast wireRequest
		if !(&bodyScanner{b: body}).request(&fast) {
			return // decodeBody falls back to encoding/json
		}
		var slow wireRequest
		require.NoError(t, json.Unmarshal(body, &slow), "the scanner read what encoding/json refuses: %q", body)
		require.Equal(t, normalize(slow), normalize(fast), "%q", body)
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
