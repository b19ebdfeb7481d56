// Package refsim is the reference simulation of docs/gamesim-spec.md ("The
// reference simulation"): a small game that draws from Rand with several
// methods, spawns and destroys from callbacks and from SimTick, and
// snapshots its state. pkg/gamesim's vectors replay a recorded stream
// through it, and refpeer (below) plays it live beside the TypeScript tests;
// its twin is clients/ts/test/refsim.ts. The two must stay identical: the
// state hashes in pkg/gamesim/testdata/vectors/stream.json say they are.
// Like every Sim, one is used by one Driver, on the goroutine that runs it.
package refsim

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/goeventstream/eventstream/pkg/esclient"
	"github.com/goeventstream/eventstream/pkg/gamesim"
)

// Sim is the reference simulation. The zero Sim is ready; a Sim is used by
// one Driver.
type Sim struct {
	players []*player // in connect order
	nextID  uint64    // the id of the next coin
}

type player struct {
	id          string
	x, y, score int64
}

// size is the side of the reference sim's square, wrapped around.
const size = 32

// coin is an entity: a coin that a player picks up by standing on it,
// and that moves elsewhere when its time runs out.
type coin struct {
	s    *Sim
	id   uint64
	x, y int64
	ttl  int64
}

// clock is an entity that draws from Rand every tick.
type clock struct {
	s   *Sim
	n   uint64
	acc uint64
}

func (s *Sim) spawnCoin(d *gamesim.Driver) {
	c := &coin{s: s, id: s.nextID, x: int64(d.Rand().IntN(size)), y: int64(d.Rand().IntN(size)), ttl: 1 + int64(d.Rand().IntN(40))}
	s.nextID++
	_ = d.Spawn(c)
}

func (s *Sim) find(id string) *player {
	for _, p := range s.players {
		if p.id == id {
			return p
		}
	}
	return nil
}

// OnReset starts the scene: the clock and three coins.
func (s *Sim) OnReset(d *gamesim.Driver, _ gamesim.Reset) {
	s.players, s.nextID = nil, 0
	_ = d.Spawn(&clock{s: s})
	for range 3 {
		s.spawnCoin(d)
	}
}

// OnConnect places a new player at random.
func (s *Sim) OnConnect(d *gamesim.Driver, id string) {
	if s.find(id) == nil {
		s.players = append(s.players, &player{id: id, x: int64(d.Rand().IntN(size)), y: int64(d.Rand().IntN(size))})
	}
}

// OnDisconnect removes the player.
func (s *Sim) OnDisconnect(_ *gamesim.Driver, id string) {
	s.players = slices.DeleteFunc(s.players, func(p *player) bool { return p.id == id })
}

// OnClientEvent plays "move" (body l, r, u or d), "coin", "drop" and "jump";
// other types, and events of unknown players, change nothing.
func (s *Sim) OnClientEvent(d *gamesim.Driver, e esclient.Event) {
	p := s.find(e.Origin)
	if p == nil {
		return
	}
	switch e.Type {
	case "move":
		switch e.Body {
		case "l":
			p.x = (p.x + size - 1) % size
		case "r":
			p.x = (p.x + 1) % size
		case "u":
			p.y = (p.y + size - 1) % size
		case "d":
			p.y = (p.y + 1) % size
		}
	case "coin":
		s.spawnCoin(d)
	case "drop": // the first coin of the scene; a second drop in one tick fails on the same coin
		for _, en := range d.Entities() {
			if c, ok := en.(*coin); ok {
				_ = d.Destroy(c)
				break
			}
		}
	case "jump":
		p.x = (p.x + d.Rand().Int64N(5)) % size
		p.y = (p.y + int64(d.Rand().Uint64N(5))) % size
	}
}

func (c *coin) SimTick(d *gamesim.Driver) {
	c.ttl--
	for _, p := range c.s.players {
		if p.x == c.x && p.y == c.y {
			p.score++
			_ = d.Destroy(c)
			return
		}
	}
	if c.ttl <= 0 {
		_ = d.Destroy(c)
		c.s.spawnCoin(d)
	}
}

func (k *clock) SimTick(d *gamesim.Driver) {
	k.n++
	k.acc ^= d.Rand().Uint64()
	if k.n%10 == 0 && len(k.s.players) > 0 {
		perm := d.Rand().Perm(len(k.s.players))
		k.acc = k.acc*31 + uint64(perm[0])
	}
	if d.Rand().Float64() < 0.05 {
		k.s.spawnCoin(d)
	}
}

// Snapshot writes the state as the spec's reference sim defines it.
func (s *Sim) Snapshot(d *gamesim.Driver, b []byte) ([]byte, error) {
	b = binary.AppendUvarint(b, uint64(len(s.players)))
	for _, p := range s.players {
		b = binary.AppendUvarint(b, uint64(len(p.id)))
		b = append(b, p.id...)
		b = binary.AppendVarint(b, p.x)
		b = binary.AppendVarint(b, p.y)
		b = binary.AppendVarint(b, p.score)
	}
	b = binary.AppendUvarint(b, s.nextID)
	for _, en := range d.Entities() {
		switch en := en.(type) {
		case *coin:
			b = append(b, 'C')
			b = binary.AppendUvarint(b, en.id)
			b = binary.AppendVarint(b, en.x)
			b = binary.AppendVarint(b, en.y)
			b = binary.AppendVarint(b, en.ttl)
		case *clock:
			b = append(b, 'K')
			b = binary.AppendUvarint(b, en.n)
			b = binary.BigEndian.AppendUint64(b, en.acc)
		default:
			return nil, fmt.Errorf("refsim: unknown entity %T", en)
		}
	}
	return b, nil
}

// reader reads what Snapshot wrote.
type reader struct {
	b   []byte
	err error
}

func (r *reader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errors.New("refsim: bad uvarint")
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.err = errors.New("refsim: bad varint")
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) bytes(n uint64) []byte {
	if uint64(len(r.b)) < n {
		r.err = errors.New("refsim: cut short")
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

// Restore reads what Snapshot wrote and spawns the entities again.
func (s *Sim) Restore(d *gamesim.Driver, data []byte) error {
	r := &reader{b: data}
	s.players = nil
	for n := r.uvarint(); n > 0 && r.err == nil; n-- {
		p := &player{id: string(r.bytes(r.uvarint()))}
		p.x, p.y, p.score = r.varint(), r.varint(), r.varint()
		s.players = append(s.players, p)
	}
	s.nextID = r.uvarint()
	for len(r.b) > 0 && r.err == nil {
		switch kind := r.bytes(1); {
		case r.err != nil:
		case kind[0] == 'C':
			c := &coin{s: s, id: r.uvarint()}
			c.x, c.y, c.ttl = r.varint(), r.varint(), r.varint()
			_ = d.Spawn(c)
		case kind[0] == 'K':
			k := &clock{s: s, n: r.uvarint()}
			if b := r.bytes(8); b != nil {
				k.acc = binary.BigEndian.Uint64(b)
			}
			_ = d.Spawn(k)
		default:
			return fmt.Errorf("refsim: unknown entity kind %q", kind)
		}
	}
	return r.err
}
