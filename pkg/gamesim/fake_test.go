package gamesim_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/goeventstream/eventstream/internal/protocol"
	"github.com/goeventstream/eventstream/pkg/esclient"
	"github.com/goeventstream/eventstream/pkg/gamesim"
)

// scripted serves one stream, "s", as a test writes it: the events and the
// t it sets, checkpoints every 20 ticks, no snapshot, and a dump asked
// once, in the next reply. It gives replies a real server gives
// only by timing. The public id of private id "pN" is "N".
type scripted struct {
	srv *httptest.Server

	mu       sync.Mutex
	events   []esclient.Event
	t        int64
	dump     *int64            // asked until stored
	failPuts int               // dump uploads to refuse with 503 first
	reports  map[string]string // "id/tick" -> the first hash reported
	dumps    map[string][]byte // "id/tick" -> the dump stored
	puts     int               // dump uploads received
}

const scriptedEpoch = "0f4c2b8e-1d3a-4e5b-9c6d-7e8f9a0b1c2d"

func newScripted(t *testing.T, events ...esclient.Event) *scripted {
	s := &scripted{reports: map[string]string{}, dumps: map[string][]byte{}}
	s.add(append([]esclient.Event{
		{T: 0, Type: esclient.TypeReset, Origin: "_", Body: scriptedEpoch},
	}, events...)...)
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

// add appends events, in stream order.
func (s *scripted) add(events ...esclient.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, events...)
}

// seal makes every tick below t final.
func (s *scripted) seal(t int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.t = t
}

func (s *scripted) serve(w http.ResponseWriter, r *http.Request) {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case len(parts) == 2 && parts[1] == "snapshot":
		w.WriteHeader(http.StatusNotFound)
	case len(parts) == 4 && parts[2] == "dump" && r.Method == http.MethodPut:
		s.puts++
		if s.failPuts > 0 {
			s.failPuts--
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write(protocol.AppendError(nil, protocol.ErrorBody{Code: protocol.CodeStoreUnavailable, Message: "down"}))
			return
		}
		body, _ := io.ReadAll(r.Body)
		s.dumps[strings.TrimPrefix(parts[1], "p")+"/"+parts[3]] = body
		w.WriteHeader(http.StatusNoContent)
	case len(parts) == 3:
		from, err := strconv.ParseInt(parts[2], 10, 64)
		if err != nil {
			http.NotFound(w, r)
			return
		}
		id := strings.TrimPrefix(parts[1], "p")
		var body struct {
			Hashes []protocol.HashReport `json:"hashes"`
		}
		_ = json.NewDecoder(r.Body).Decode(&body)
		for _, h := range body.Hashes {
			if k := id + "/" + strconv.FormatInt(h.T, 10); s.reports[k] == "" {
				s.reports[k] = h.H
			}
		}
		reply := protocol.SyncReply{ID: id, Epoch: scriptedEpoch, TPS: 20, Ckpt: 20, T: max(s.t, 1), Dump: s.dump, Events: []protocol.Event{}}
		s.dump = nil
		for _, e := range s.events {
			if e.T >= from && e.T < reply.T {
				reply.Events = append(reply.Events, protocol.Event{T: e.T, Type: e.Type, Origin: e.Origin, Body: e.Body})
			}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(reply)
	default:
		http.NotFound(w, r)
	}
}

// driver returns a Driver of sim for private id "p"+id on s, polling.
func (s *scripted) driver(t *testing.T, id string, sim gamesim.Sim) *gamesim.Driver {
	c, err := esclient.New(esclient.Config{BaseURL: s.srv.URL, Stream: "s", PrivateID: "p" + id,
		Transport: esclient.Poll, SyncInterval: 5 * time.Millisecond,
		HTTPClient: &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{}}})
	require.NoError(t, err)
	d := gamesim.New(c, sim, gamesim.Config{RecordHashes: 1 << 10})
	t.Cleanup(func() { _ = d.Close() })
	return d
}

// playTo calls d.Update, a second of game time each, until d has played
// tick last.
func playTo(t *testing.T, d *gamesim.Driver, last int64) {
	t.Helper()
	now := time.Unix(0, 0)
	require.Eventually(t, func() bool {
		now = now.Add(time.Second)
		d.Update(now)
		return d.Tick() >= last
	}, 10*time.Second, time.Millisecond, "tick %d", last)
	require.NoError(t, d.Err())
}

func desyncEvent(at, checkpoint int64, ids ...string) esclient.Event {
	b, _ := json.Marshal(protocol.Desync{T: checkpoint, IDs: ids})
	return esclient.Event{T: at, Type: esclient.TypeDesync, Origin: "_", Body: string(b)}
}
