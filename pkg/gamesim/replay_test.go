package gamesim_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/goeventstream/eventstream/pkg/esclient"
	"github.com/goeventstream/eventstream/pkg/gamesim"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// recorder is a Sim that writes down every call, and can be told to spawn
// or destroy entities when it sees certain events.
type recorder struct {
	log   []string
	named map[string]*probe
}

func (r *recorder) logf(d *gamesim.Driver, format string, args ...any) {
	r.log = append(r.log, fmt.Sprintf("%d ", d.Tick())+fmt.Sprintf(format, args...))
}

func (r *recorder) OnReset(d *gamesim.Driver, _ gamesim.Reset) {
	r.logf(d, "reset entities=%d", len(d.Entities()))
	r.named = map[string]*probe{}
}
func (r *recorder) OnConnect(d *gamesim.Driver, id string)    { r.logf(d, "connect %s", id) }
func (r *recorder) OnDisconnect(d *gamesim.Driver, id string) { r.logf(d, "disconnect %s", id) }
func (r *recorder) OnClientEvent(d *gamesim.Driver, e esclient.Event) {
	r.logf(d, "%s %s from %s", e.Type, e.Body, e.Origin)
	switch e.Type {
	case "spawn":
		p := &probe{name: e.Body, rec: r}
		r.named[e.Body] = p
		if err := d.Spawn(p); err != nil {
			r.logf(d, "spawn error: %v", err)
		}
	case "destroy":
		if err := d.Destroy(r.named[e.Body]); err != nil {
			r.logf(d, "destroy error: %v", err)
		}
	case "respawn": // a second spawn of the same entity
		if err := d.Spawn(r.named[e.Body]); err != nil {
			r.logf(d, "spawn error: %v", err)
		}
	}
}

// probe is an entity that logs its ticks and can spawn a child on its
// first tick.
type probe struct {
	name  string
	rec   *recorder
	child string
}

func (p *probe) SimTick(d *gamesim.Driver) {
	p.rec.logf(d, "tick %s", p.name)
	if p.child != "" {
		c := &probe{name: p.child, rec: p.rec}
		p.child = ""
		p.rec.named[c.name] = c
		if err := d.Spawn(c); err != nil {
			p.rec.logf(d, "spawn error: %v", err)
		}
	}
}

func ev(t int64, typ, origin, body string) esclient.Event {
	return esclient.Event{T: t, Type: typ, Origin: origin, Body: body}
}

const epoch = "6db8b8f2-16c9-427d-9fc9-de43870ed0db"

func TestCallbackOrder(t *testing.T) {
	r := &recorder{}
	replay(t, r, []esclient.Event{
		ev(0, "_a", "_", epoch),
		ev(1, "_c", "_", "1"),
		ev(1, "move", "1", "left"),
		ev(1, "_c", "_", "2"),
		ev(3, "_d", "_", "1"),
	}, 4, gamesim.Config{})
	assert.Equal(t, []string{
		"0 reset entities=0",
		"1 connect 1",
		"1 move left from 1",
		"1 connect 2",
		"3 disconnect 1",
	}, r.log)
}

func TestSpawnTiming(t *testing.T) {
	r := &recorder{}
	d := replay(t, r, []esclient.Event{
		ev(0, "_a", "_", epoch),
		ev(1, "spawn", "1", "a"),
		ev(1, "spawn", "1", "b"),
		ev(3, "destroy", "1", "a"),
		ev(3, "spawn", "1", "c"),
	}, 6, gamesim.Config{})
	assert.Equal(t, []string{
		"0 reset entities=0",
		"1 spawn a from 1",
		"1 spawn b from 1", // a and b first tick at 2, in spawn order
		"2 tick a",
		"2 tick b",
		"3 destroy a from 1",
		"3 spawn c from 1",
		"3 tick a", // a is destroyed at the end of tick 3: it still ticks in 3
		"3 tick b",
		"4 tick b",
		"4 tick c",
		"5 tick b",
		"5 tick c",
	}, r.log)
	require.Len(t, d.Entities(), 2)
	assert.Equal(t, "b", d.Entities()[0].(*probe).name)
	assert.Equal(t, "c", d.Entities()[1].(*probe).name)
	assert.Equal(t, int64(5), d.Tick())
}

func TestEntitySpawnsDuringItsTick(t *testing.T) {
	r := &recorder{named: map[string]*probe{}}
	var events []esclient.Event
	events = append(events, ev(0, "_a", "_", epoch), ev(1, "spawn", "1", "parent"))
	d := replay(t, &spawner{recorder: r}, events, 5, gamesim.Config{})
	assert.Equal(t, []string{
		"0 reset entities=0",
		"1 spawn parent from 1",
		"2 tick parent", // spawns child during tick 2
		"3 tick parent",
		"3 tick child",
		"4 tick parent",
		"4 tick child",
	}, r.log)
	assert.Len(t, d.Entities(), 2)
}

// spawner gives every spawned probe a child to spawn on its first tick.
type spawner struct{ *recorder }

func (s *spawner) OnClientEvent(d *gamesim.Driver, e esclient.Event) {
	s.logf(d, "%s %s from %s", e.Type, e.Body, e.Origin)
	p := &probe{name: e.Body, rec: s.recorder, child: "child"}
	s.named[e.Body] = p
	if err := d.Spawn(p); err != nil {
		s.logf(d, "spawn error: %v", err)
	}
}

func TestSpawnAndDestroyErrors(t *testing.T) {
	r := &recorder{}
	d := replay(t, r, []esclient.Event{
		ev(0, "_a", "_", epoch),
		ev(1, "spawn", "1", "a"),
		ev(1, "respawn", "1", "a"),
		ev(2, "respawn", "1", "a"),
		ev(2, "destroy", "1", "nobody"),
		ev(3, "destroy", "1", "a"),
		ev(3, "destroy", "1", "a"),
		ev(3, "respawn", "1", "a"),
	}, 4, gamesim.Config{})
	var errs []string
	for _, l := range r.log {
		if strings.Contains(l, "error") {
			errs = append(errs, l)
		}
	}
	assert.Equal(t, []string{
		"1 spawn error: " + gamesim.ErrSpawned.Error(),
		"2 spawn error: " + gamesim.ErrSpawned.Error(),
		"2 destroy error: " + gamesim.ErrNilEntity.Error(), // nobody is a nil *probe
		"3 destroy error: " + gamesim.ErrUnknownEntity.Error(),
	}, errs)
	assert.Len(t, d.Entities(), 1, "destroyed then spawned again in one tick: still there")

	assert.ErrorIs(t, d.Spawn(&probe{}), gamesim.ErrNotProcessing, "outside a tick")
	assert.ErrorIs(t, d.Destroy(d.Entities()[0]), gamesim.ErrNotProcessing)
}

func TestResetClearsTheScene(t *testing.T) {
	r := &recorder{}
	d := replay(t, r, []esclient.Event{
		ev(0, "_a", "_", epoch),
		ev(1, "spawn", "1", "a"),
		ev(2, "spawn", "1", "b"),
		ev(4, "_a", "_", "another-epoch"), // as after a reset in one recording
	}, 6, gamesim.Config{})
	assert.Contains(t, r.log, "4 reset entities=0")
	assert.Empty(t, d.Entities())
	assert.NotContains(t, r.log, "5 tick a")
}

// randSim draws numbers from Rand: some at every event, some at every tick.
type randSim struct {
	draws []uint64
	extra int // extra numbers drawn at tick 2
}

func (s *randSim) OnReset(d *gamesim.Driver, _ gamesim.Reset) {
	s.draws = append(s.draws, d.Rand().Uint64())
}
func (s *randSim) OnConnect(d *gamesim.Driver, _ string)    {}
func (s *randSim) OnDisconnect(d *gamesim.Driver, _ string) {}
func (s *randSim) OnClientEvent(d *gamesim.Driver, _ esclient.Event) {
	if d.Tick() == 2 {
		for range s.extra {
			d.Rand().Uint64()
		}
	}
	s.draws = append(s.draws, d.Rand().Uint64())
}

func TestRandIsDeterministic(t *testing.T) {
	stream := func(seed string) []esclient.Event {
		return []esclient.Event{ev(0, "_a", "_", seed), ev(1, "x", "1", ""), ev(2, "x", "1", ""), ev(3, "x", "1", "")}
	}
	a, b := &randSim{}, &randSim{}
	replay(t, a, stream(epoch), 4, gamesim.Config{})
	replay(t, b, stream(epoch), 4, gamesim.Config{})
	assert.Equal(t, a.draws, b.draws, "the same stream draws the same numbers")

	c := &randSim{}
	replay(t, c, stream("another-epoch"), 4, gamesim.Config{})
	assert.NotEqual(t, a.draws, c.draws, "another epoch draws other numbers")

	greedy := &randSim{extra: 5}
	replay(t, greedy, stream(epoch), 4, gamesim.Config{})
	assert.Equal(t, a.draws[3], greedy.draws[3], "each tick's numbers are re-derived, whatever was drawn before")
	assert.NotEqual(t, a.draws[1], a.draws[2], "each tick draws other numbers")
}

type hashSim struct {
	recorder
	n uint64
}

func (h *hashSim) OnClientEvent(d *gamesim.Driver, e esclient.Event) {
	h.n = h.n*31 + uint64(len(e.Body))
}
func (h *hashSim) StateHash(*gamesim.Driver) uint64 { return h.n }

func TestRecordHashes(t *testing.T) {
	d := replay(t, &hashSim{}, []esclient.Event{
		ev(0, "_a", "_", epoch), ev(1, "x", "1", "a"), ev(2, "x", "1", "bb"), ev(4, "x", "1", "c"),
	}, 5, gamesim.Config{RecordHashes: 3})
	assert.Equal(t, []gamesim.TickHash{
		{Epoch: epoch, Tick: 2, Hash: 33}, {Epoch: epoch, Tick: 3, Hash: 33}, {Epoch: epoch, Tick: 4, Hash: 33*31 + 1},
	}, d.Hashes(), "the last three ticks, oldest first, with their epoch")
}

// replay is gamesim.Replay, which must succeed.
func replay(t *testing.T, sim gamesim.Sim, events []esclient.Event, until int64, cfg gamesim.Config) *gamesim.Driver {
	t.Helper()
	d, err := gamesim.Replay(sim, events, until, cfg)
	require.NoError(t, err)
	return d
}

func TestSpawnRefusesATypedNil(t *testing.T) {
	var typedNil *probe
	s := &nilSpawner{give: typedNil}
	d := replay(t, s, []esclient.Event{ev(0, "_a", "_", epoch), ev(1, "spawn", "1", "")}, 3, gamesim.Config{})
	assert.ErrorIs(t, s.err, gamesim.ErrNilEntity)
	assert.Empty(t, d.Entities(), "nothing to panic a tick later")
}

type nilSpawner struct {
	recorder
	give gamesim.Entity
	err  error
}

func (s *nilSpawner) OnClientEvent(d *gamesim.Driver, _ esclient.Event) { s.err = d.Spawn(s.give) }

func TestReplayRefusesWhatItCannotReplay(t *testing.T) {
	tests := []struct {
		name   string
		events []esclient.Event
		until  int64
		want   string
	}{
		{name: "no events", until: 5, want: "_a at tick 0"},
		{name: "no _a", events: []esclient.Event{ev(1, "_c", "_", "1")}, until: 5, want: "_a at tick 0"},
		{name: "_a not first", events: []esclient.Event{ev(0, "x", "1", ""), ev(0, "_a", "_", epoch)}, until: 5, want: "_a at tick 0"},
		{name: "out of order", events: []esclient.Event{ev(0, "_a", "_", epoch), ev(3, "x", "1", ""), ev(2, "x", "1", "")}, until: 5, want: "events[2] is at tick 2"},
		{name: "past until", events: []esclient.Event{ev(0, "_a", "_", epoch), ev(5, "x", "1", "")}, until: 5, want: "runs to tick 5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &recorder{}
			_, err := gamesim.Replay(r, tt.events, tt.until, gamesim.Config{})
			require.ErrorContains(t, err, tt.want)
			assert.Empty(t, r.log, "nothing was processed")
		})
	}
}

func TestUnknownServerEventsAreSkipped(t *testing.T) {
	r := &recorder{}
	replay(t, r, []esclient.Event{
		ev(0, "_a", "_", epoch), ev(1, "_x", "_", `{"t":0,"ids":["1"]}`), ev(1, "move", "1", "up"),
	}, 2, gamesim.Config{})
	assert.Equal(t, []string{"0 reset entities=0", "1 move up from 1"}, r.log)
}

// resetSim records what OnReset was told.
type resetSim struct {
	hashSim
	resets []gamesim.Reset
}

func (s *resetSim) OnReset(d *gamesim.Driver, r gamesim.Reset) { s.resets = append(s.resets, r) }

func TestResetTellsTheEpochAndHashesAreKeyedByIt(t *testing.T) {
	s := &resetSim{}
	d := replay(t, s, []esclient.Event{
		ev(0, "_a", "_", epoch), ev(1, "x", "1", "a"), ev(2, "_a", "_", "another-epoch"),
	}, 4, gamesim.Config{RecordHashes: 10})
	assert.Equal(t, []gamesim.Reset{{Epoch: epoch}, {Epoch: "another-epoch", Previous: epoch}}, s.resets,
		"a first start has no previous epoch; a server reset names the one it ends")
	assert.Equal(t, "another-epoch", d.Epoch())
	var keys []string
	for _, h := range d.Hashes() {
		keys = append(keys, fmt.Sprintf("%s/%d", h.Epoch, h.Tick))
	}
	assert.Equal(t, []string{epoch + "/0", epoch + "/1", "another-epoch/2", "another-epoch/3"}, keys)
}
