// Package streamtest is the conformance suite of stream.Store: every backend
// runs it with a factory of its own, so that all backends keep the protocol
// exactly as the memory store does.
//
//	func TestConformance(t *testing.T) {
//		streamtest.Run(t, func(t testing.TB, cfg stream.Config) stream.Store {
//			return newMyStore(t, cfg)
//		})
//	}
//
// The suite sets cfg.Clock to a *clock.Fake and moves time only through it;
// a backend must read time from cfg.Clock. Each test asks for its own store,
// which must start empty. BenchSync is the suite's benchmark, run the same
// way from each backend's BenchmarkSync.
package streamtest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/goeventstream/eventstream/internal/clock"
	"github.com/goeventstream/eventstream/internal/protocol"
	"github.com/goeventstream/eventstream/internal/stream"
)

// Factory returns a new, empty store configured with cfg. It registers
// whatever cleanup the store needs with t.Cleanup. Run, LongLife and
// BenchSync take one.
type Factory func(t testing.TB, cfg stream.Config) stream.Store

// Start is the fake time at which every test of the suite begins.
var Start = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

// Run runs the whole suite against the stores newStore makes.
func Run(t *testing.T, newStore Factory) {
	t.Run("Ticks", func(t *testing.T) { testTicks(t, newStore) })
	t.Run("TicksNeverGoBack", func(t *testing.T) { testTicksNeverGoBack(t, newStore) })
	t.Run("TicksNeverGoBackAfterARead", func(t *testing.T) { testTicksNeverGoBackAfterARead(t, newStore) })
	t.Run("Creation", func(t *testing.T) { testCreation(t, newStore) })
	t.Run("PublicIDs", func(t *testing.T) { testPublicIDs(t, newStore) })
	t.Run("EventsComeBackNextSync", func(t *testing.T) { testEventsComeBackNextSync(t, newStore) })
	t.Run("Window", func(t *testing.T) { testWindow(t, newStore) })
	t.Run("Reset", func(t *testing.T) { testReset(t, newStore) })
	t.Run("PostToAnotherEpoch", func(t *testing.T) { testPostToAnotherEpoch(t, newStore) })
	t.Run("Paging", func(t *testing.T) { testPaging(t, newStore) })
	t.Run("PagingLargeTick", func(t *testing.T) { testPagingLargeTick(t, newStore) })
	t.Run("PagingBytes", func(t *testing.T) { testPagingBytes(t, newStore) })
	t.Run("PagingAgain", func(t *testing.T) { testPagingAgain(t, newStore) })
	t.Run("TickFull", func(t *testing.T) { testTickFull(t, newStore) })
	t.Run("FairUse", func(t *testing.T) { testFairUse(t, newStore) })
	t.Run("FairUseOff", func(t *testing.T) { testFairUseOff(t, newStore) })
	t.Run("Batches", func(t *testing.T) { testBatches(t, newStore) })
	t.Run("MaxStreams", func(t *testing.T) { testMaxStreams(t, newStore) })
	t.Run("MaxClients", func(t *testing.T) { testMaxClients(t, newStore) })
	t.Run("MaxEvents", func(t *testing.T) { testMaxEvents(t, newStore) })
	t.Run("FullStreamStillServesReads", func(t *testing.T) { testFullStreamStillServesReads(t, newStore) })
	t.Run("MaxStreamBytes", func(t *testing.T) { testMaxStreamBytes(t, newStore) })
	t.Run("Presence", func(t *testing.T) { testPresence(t, newStore) })
	t.Run("Reconnect", func(t *testing.T) { testReconnect(t, newStore) })
	t.Run("Expiry", func(t *testing.T) { testExpiry(t, newStore) })
	t.Run("ExpiryCancelled", func(t *testing.T) { testExpiryCancelled(t, newStore) })
	t.Run("Stats", func(t *testing.T) { testStats(t, newStore) })
	t.Run("Concurrent", func(t *testing.T) { testConcurrent(t, newStore) })
	runCheckpoints(t, newStore)
	runAdmission(t, newStore)
}

// env is one test's store and clock.
type env struct {
	t     *testing.T
	store stream.Store
	clock *clock.Fake
	cfg   stream.Config
}

func newEnv(t *testing.T, newStore Factory, edit func(*stream.Config)) *env {
	t.Helper()
	cfg := stream.DefaultConfig()
	fake := clock.NewFake(Start)
	cfg.Clock = fake
	if edit != nil {
		edit(&cfg)
	}
	return &env{t: t, store: newStore(t, cfg), clock: fake, cfg: cfg}
}

// Reply is a decoded SyncResult.
type Reply struct {
	*stream.SyncResult
	Events []protocol.Event
}

// sync applies req and requires it to succeed.
func (e *env) sync(req *stream.SyncRequest) Reply {
	e.t.Helper()
	res, err := e.store.Sync(context.Background(), req)
	require.NoError(e.t, err)
	return Reply{SyncResult: res, Events: Decode(e.t, res.Events)}
}

// poll syncs with no events.
func (e *env) poll(streamName, privateID string, from int64) Reply {
	e.t.Helper()
	return e.sync(&stream.SyncRequest{Stream: streamName, PrivateID: privateID, LastKnownTick: from})
}

// post syncs with the given events, each of type "move".
func (e *env) post(streamName, privateID string, from int64, bodies ...string) Reply {
	e.t.Helper()
	return e.sync(&stream.SyncRequest{Stream: streamName, PrivateID: privateID, LastKnownTick: from, Events: Moves(bodies...)})
}

// all reads the whole stream from tick 0 as client privateID, following pages.
func (e *env) all(streamName, privateID string) []protocol.Event {
	e.t.Helper()
	var out []protocol.Event
	from := int64(0)
	for {
		r := e.poll(streamName, privateID, from)
		out = append(out, r.Events...)
		from = r.T
		if !r.More {
			return out
		}
	}
}

func (e *env) sweep() stream.SweepResult {
	e.t.Helper()
	res, err := e.store.Sweep(context.Background())
	require.NoError(e.t, err)
	return res
}

func (e *env) stats() stream.Stats {
	e.t.Helper()
	st, err := e.store.Stats(context.Background(), 1000)
	require.NoError(e.t, err)
	return st
}

// Decode parses the events of a SyncResult, and requires them to be in the
// one form every store writes (docs/protocol.md): no spaces, the fields t,
// type, origin and body in this order.
func Decode(t testing.TB, events []byte) []protocol.Event {
	t.Helper()
	out := []protocol.Event{}
	b := make([]byte, 0, len(events)+2)
	b = append(append(append(b, '['), events...), ']')
	require.NoError(t, json.Unmarshal(b, &out), "events are not JSON: %s", events)
	requireCanonical(t, b)
	return out
}

// requireCanonical requires b, a JSON array of events, to be compact and
// to give each event's fields in the order t, type, origin, body.
func requireCanonical(t testing.TB, b []byte) {
	t.Helper()
	var compact bytes.Buffer
	require.NoError(t, json.Compact(&compact, b))
	require.Equal(t, compact.String(), string(b), "events are not compact")
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	keys := []string{"t", "type", "origin", "body"}
	var got []string
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		if k, ok := tok.(string); ok && dec.More() && len(got)%2 == 0 {
			got = append(got, k) // a key
			continue
		}
		if _, ok := tok.(json.Delim); !ok {
			got = append(got, "") // a value
		}
	}
	for i := 0; i < len(got); i += 2 {
		require.Equal(t, keys[(i/2)%len(keys)], got[i], "event fields out of order in %s", b)
	}
}

// Body returns s as a JSON string literal, as stream.Event.Body wants it.
func Body(s string) json.RawMessage {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err)
	}
	return b
}

// Moves returns one event of type "move" per body.
func Moves(bodies ...string) []stream.Event {
	evs := make([]stream.Event, len(bodies))
	for i, b := range bodies {
		evs[i] = stream.Event{Type: "move", Body: Body(b)}
	}
	return evs
}

// ev is shorthand for an expected event.
func ev(t int64, typ, origin, body string) protocol.Event {
	return protocol.Event{T: t, Type: typ, Origin: origin, Body: body}
}
