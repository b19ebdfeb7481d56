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

func (r *recorder) OnReset(d *gamesim.Driver) {
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
	gamesim.Replay([]esclient.Event{
		ev(0, "_a", "_", epoch),
		ev(1, "_c", "_", "1"),
		ev(1, "move", "1", "left"),
		ev(1, "_c", "_", "2"),
		ev(3, "_d", "_", "1"),
	}, r)
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
	d := gamesim.Replay([]esclient.Event{
		ev(0, "_a", "_", epoch),
		ev(1, "spawn", "1", "a"),
		ev(1, "spawn", "1", "b"),
		ev(3, "destroy", "1", "a"),
		ev(3, "spawn", "1", "c"),
	}, r, gamesim.ReplayUntil(6))
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
	d := gamesim.Replay(events, &spawner{recorder: r}, gamesim.ReplayUntil(5))
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
	d := gamesim.Replay([]esclient.Event{
		ev(0, "_a", "_", epoch),
		ev(1, "spawn", "1", "a"),
		ev(1, "respawn", "1", "a"),
		ev(2, "respawn", "1", "a"),
		ev(2, "destroy", "1", "nobody"),
		ev(3, "destroy", "1", "a"),
		ev(3, "destroy", "1", "a"),
		ev(3, "respawn", "1", "a"),
	}, r)
	var errs []string
	for _, l := range r.log {
		if strings.Contains(l, "error") {
			errs = append(errs, l)
		}
	}
	assert.Equal(t, []string{
		"1 spawn error: " + gamesim.ErrSpawned.Error(),
		"2 spawn error: " + gamesim.ErrSpawned.Error(),
		"2 destroy error: " + gamesim.ErrUnknownEntity.Error(),
		"3 destroy error: " + gamesim.ErrUnknownEntity.Error(),
	}, errs)
	assert.Len(t, d.Entities(), 1, "destroyed then spawned again in one tick: still there")

	assert.ErrorIs(t, d.Spawn(&probe{}), gamesim.ErrNotProcessing, "outside a tick")
	assert.ErrorIs(t, d.Destroy(d.Entities()[0]), gamesim.ErrNotProcessing)
}

func TestResetClearsTheScene(t *testing.T) {
	r := &recorder{}
	d := gamesim.Replay([]esclient.Event{
		ev(0, "_a", "_", epoch),
		ev(1, "spawn", "1", "a"),
		ev(2, "spawn", "1", "b"),
		ev(4, "_a", "_", "another-epoch"), // as after a reset in one recording
	}, r, gamesim.ReplayUntil(6))
	assert.Contains(t, r.log, "4 reset entities=0")
	assert.Empty(t, d.Entities())
	assert.NotContains(t, r.log, "5 tick a")
}

// randSim draws numbers from Rand: some at every event, some at every tick.
type randSim struct {
	draws []uint64
	extra int // extra numbers drawn at tick 2
}

func (s *randSim) OnReset(d *gamesim.Driver)                { s.draws = append(s.draws, d.Rand().Uint64()) }
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
	gamesim.Replay(stream(epoch), a)
	gamesim.Replay(stream(epoch), b)
	assert.Equal(t, a.draws, b.draws, "the same stream draws the same numbers")

	c := &randSim{}
	gamesim.Replay(stream("another-epoch"), c)
	assert.NotEqual(t, a.draws, c.draws, "another epoch draws other numbers")

	greedy := &randSim{extra: 5}
	gamesim.Replay(stream(epoch), greedy)
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
func (h *hashSim) StateHash() uint64 { return h.n }

func TestRecordHashes(t *testing.T) {
	d := gamesim.Replay([]esclient.Event{
		ev(0, "_a", "_", epoch), ev(1, "x", "1", "a"), ev(2, "x", "1", "bb"), ev(4, "x", "1", "c"),
	}, &hashSim{}, gamesim.RecordHashes(3))
	assert.Equal(t, []gamesim.TickHash{{Tick: 2, Hash: 33}, {Tick: 3, Hash: 33}, {Tick: 4, Hash: 33*31 + 1}}, d.Hashes(),
		"the last three ticks, oldest first")
}
