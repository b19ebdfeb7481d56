package esclient

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var replies = []string{
	`{"id":"1","t":1,"epoch":"e","tps":20,"events":[{"t":0,"type":"_a","origin":"_","body":"e"}]}`,
	`{"id":"1","t":5,"epoch":"e","tps":20,"events":[]}` + "\n",
	`{"id":"12","t":9,"epoch":"e","tps":20,"events":[{"t":4,"type":"move","origin":"3","body":"\u0041 \"q\" \\ é"},{"t":4,"type":"x","origin":"3","body":""}],"more":true}`,
	` { "events" : [ { "body":"b", "origin":"2", "type":"t", "t":7 } ], "more":false, "tps":30, "epoch":"e", "t":8, "id":"2" } `,
	`{"id":"1","t":1,"epoch":"e","tps":20,"events":[],"extra":1}`,
	`{"id":"1","t":41,"epoch":"e","tps":20,"ckpt":20,"base":20,"snap":0,"dump":40,"events":[]}`,
	`{"id":"1","t":41,"epoch":"e","tps":20,"ckpt":20,"base":"x","events":[]}`,
	`{"id":"1","t":1e3,"epoch":"e","tps":20,"events":[]}`,
	`{"id":"1","t":1,"epoch":"e","tps":20,"events":[{"t":0,"type":"a","origin":"_","body":"bad \xff utf8"}]}`,
	`{"id":"1","t":1,"epoch":"e","tps":20,"events":[{"t":0,"type":"a","origin":"_","body":"\ud800"}]}`,
	`{"id":"1","t":1,"epoch":"e","tps":20,"events":null}`,
	`{"id":"1","t":-0,"epoch":"e","tps":20,"events":[]}`,
	`{"id":"1","t":01,"epoch":"e","tps":20,"events":[]}`,
	`{"id":"1"}{}`,
	`[]`,
	``,
}

// TestDecodeReplyMatchesEncodingJSON: the fast path and encoding/json agree
// on every input, valid or not.
func TestDecodeReplyMatchesEncodingJSON(t *testing.T) {
	for _, in := range replies {
		checkDecode(t, []byte(in))
	}
}

func checkDecode(t *testing.T, in []byte) {
	t.Helper()
	var want wireReply
	wantErr := json.Unmarshal(in, &want)
	var got wireReply
	err := decodeReply(in, &got)
	if wantErr != nil {
		require.Error(t, err, "%q", in)
		return
	}
	require.NoError(t, err, "%q", in)
	if want.Events == nil {
		want.Events = got.Events // an empty array and a missing one differ only in capacity
	}
	if len(want.Events) == 0 && len(got.Events) == 0 {
		want.Events, got.Events = nil, nil
	}
	assert.Equal(t, want, got, "%q", in)
}

func FuzzDecodeReply(f *testing.F) {
	for _, in := range replies {
		f.Add([]byte(in))
	}
	f.Fuzz(func(t *testing.T, in []byte) { checkDecode(t, in) })
}

func BenchmarkDecodeReply(b *testing.B) {
	var events []Event
	for i := range 50 {
		events = append(events, Event{T: int64(1000 + i/12), Type: "move", Origin: "17", Body: "c17.4.1764246000000000000.................................."})
	}
	data, err := json.Marshal(wireReply{ID: "3", T: 1005, Epoch: "6db8b8f2-16c9-427d-9fc9-de43870ed0db", TPS: 20, Events: events})
	require.NoError(b, err)
	b.Run("scanner", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			var r wireReply
			if err := decodeReply(data, &r); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding_json", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			var r wireReply
			if err := json.Unmarshal(data, &r); err != nil {
				b.Fatal(err)
			}
		}
	})
}
