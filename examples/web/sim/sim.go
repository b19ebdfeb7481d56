// Package sim is the simulation of Gem Rush, the browser demo of
// examples/web: players steer round discs with the keyboard, collect the
// gems the shared Rand scatters, and ram each other to steal points, in
// rounds of a minute.
//
// It is the reference for the TypeScript copy the page runs
// (examples/web/src/sim.ts, which mirrors this file rule for rule): both
// use integers only (positions in 1/16 of a pixel, truncating division),
// so a Go bot and a browser agree bit for bit, and both write the same
// snapshot bytes, so they are members of the same checkpoints. The vectors
// in testdata/, made by this package's tests, hold the two to each other.
//
// A World is used by one gamesim.Driver, on the goroutine that calls its
// Update; between ticks its exported fields may be read for rendering.
package sim

import (
	"encoding/binary"
	"errors"

	"github.com/goeventstream/eventstream/pkg/esclient"
	"github.com/goeventstream/eventstream/pkg/gamesim"
)

// The arena, in units of 1/Unit pixel. Mirrored in src/sim.ts.
const (
	Unit         = 16
	Width        = 800 * Unit
	Height       = 480 * Unit
	PlayerRadius = 14 * Unit
	GemRadius    = 7 * Unit
	Accel        = 16 // units per tick², along one axis
	AccelDiag    = 11 // Accel/√2, along each axis of a diagonal
	MaxGems      = 12
	GemChance    = 6    // a gem appears with chance 1/GemChance a tick, below MaxGems
	BigGemChance = 10   // 1 gem in BigGemChance is worth BigGemValue
	BigGemValue  = 5    //
	RoundTicks   = 1200 // a minute at 20 ticks a second
	PauseTicks   = 100  // between rounds, showing the winner
	BumpCooldown = 20   // ticks after a collision before the next steal
	MaxNameLen   = 12
)

// Event types a player sends. Mirrored in src/sim.ts.
const (
	// TypeInput's body is one lowercase hex digit of Input bits: the keys
	// held.
	TypeInput = "in"
	// TypeName's body is the player's name: 1 to MaxNameLen printable
	// ASCII characters.
	TypeName = "name"
)

// Input bits: the arrow keys held.
const (
	Up    = 1
	Down  = 2
	Left  = 4
	Right = 8
)

// Player is one player's disc, kept from its first connection on, so that
// a player who reconnects keeps its place and score.
type Player struct {
	ID       string // public id
	Name     string
	X, Y     int
	VX, VY   int
	Input    int // Up|Down|Left|Right bits held
	Score    int
	Online   bool
	Cooldown int // ticks before this player may steal or be robbed again
}

// Gem is a gem on the floor.
type Gem struct {
	X, Y  int
	Value int
}

// World is the game's state; it implements gamesim.Sim and
// gamesim.Snapshotter. Everything in it is simulation state, in the
// order the simulation made it.
type World struct {
	Players     []*Player // in order of first connection
	Gems        []Gem     // in order of appearance
	Round       int       // rounds finished
	Clock       int       // ticks left in the round; 0 during the pause
	Pause       int       // ticks left of the pause between rounds
	Winner      string    // public id of the last round's winner, "" for none
	WinnerScore int

	arena *arena
}

var (
	_ gamesim.Sim         = (*World)(nil)
	_ gamesim.Snapshotter = (*World)(nil)
)

// Player returns the player of a public id, or nil.
func (w *World) Player(id string) *Player {
	for _, p := range w.Players {
		if p.ID == id {
			return p
		}
	}
	return nil
}

// OnReset implements gamesim.Sim: a new game, with the arena as its only
// entity.
func (w *World) OnReset(d *gamesim.Driver, _ gamesim.Reset) {
	*w = World{Clock: RoundTicks, arena: &arena{w: w}}
	_ = d.Spawn(w.arena)
}

// OnConnect implements gamesim.Sim: a new player appears at a place Rand
// draws; a returning one comes back where it left.
func (w *World) OnConnect(d *gamesim.Driver, id string) {
	p := w.Player(id)
	if p == nil {
		p = &Player{ID: id}
		p.X = PlayerRadius + d.Rand().IntN(Width-2*PlayerRadius)
		p.Y = PlayerRadius + d.Rand().IntN(Height-2*PlayerRadius)
		w.Players = append(w.Players, p)
	}
	p.Online = true
}

// OnDisconnect implements gamesim.Sim: the player's disc stops and
// leaves the arena until it returns.
func (w *World) OnDisconnect(_ *gamesim.Driver, id string) {
	if p := w.Player(id); p != nil {
		p.Online, p.VX, p.VY, p.Input = false, 0, 0, 0
	}
}

// OnClientEvent implements gamesim.Sim: inputs and names. Anything
// malformed is ignored, the same way on every client.
func (w *World) OnClientEvent(_ *gamesim.Driver, e esclient.Event) {
	p := w.Player(e.Origin)
	if p == nil {
		return
	}
	switch e.Type {
	case TypeInput:
		if in, ok := ParseInput(e.Body); ok {
			p.Input = in
		}
	case TypeName:
		if ValidName(e.Body) {
			p.Name = e.Body
		}
	}
}

// ParseInput reads the body of an input event.
func ParseInput(body string) (int, bool) {
	if len(body) != 1 {
		return 0, false
	}
	switch c := body[0]; {
	case c >= '0' && c <= '9':
		return int(c - '0'), true
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10, true
	}
	return 0, false
}

// FormatInput is the body of an input event of bits in (0 to 15).
func FormatInput(in int) string { return string("0123456789abcdef"[in&15]) }

// ValidName reports whether s may be a player's name.
func ValidName(s string) bool {
	if len(s) < 1 || len(s) > MaxNameLen {
		return false
	}
	for i := range len(s) {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// arena is the World's one entity: it runs the game's tick.
type arena struct{ w *World }

// SimTick runs a tick: the round's clock, the discs' movement, their
// collisions, the gems they collect, and a new gem now and then.
func (a *arena) SimTick(d *gamesim.Driver) {
	w := a.w
	w.clock()
	for _, p := range w.Players {
		if p.Online {
			p.move()
		}
	}
	for i, p := range w.Players {
		for _, q := range w.Players[i+1:] {
			if p.Online && q.Online {
				w.collide(p, q)
			}
		}
	}
	for _, p := range w.Players {
		if p.Online {
			w.collect(p)
		}
	}
	if w.Pause == 0 && len(w.Gems) < MaxGems && d.Rand().IntN(GemChance) == 0 {
		g := Gem{Value: 1}
		g.X = GemRadius*2 + d.Rand().IntN(Width-GemRadius*4)
		g.Y = GemRadius*2 + d.Rand().IntN(Height-GemRadius*4)
		if d.Rand().IntN(BigGemChance) == 0 {
			g.Value = BigGemValue
		}
		w.Gems = append(w.Gems, g)
	}
}

// clock counts the round down, and the pause after it.
func (w *World) clock() {
	if w.Pause > 0 {
		w.Pause--
		if w.Pause == 0 {
			w.Clock = RoundTicks
		}
		return
	}
	w.Clock--
	if w.Clock > 0 {
		return
	}
	w.Round++
	w.Pause = PauseTicks
	w.Winner, w.WinnerScore = "", 0
	for _, p := range w.Players {
		if p.Score > w.WinnerScore {
			w.Winner, w.WinnerScore = p.ID, p.Score
		}
		p.Score = 0
	}
	w.Gems = nil
}

// move accelerates the disc as its keys say, slows it by friction, moves
// it, and bounces it off the walls.
func (p *Player) move() {
	ax, ay := 0, 0
	if p.Input&Left != 0 {
		ax--
	}
	if p.Input&Right != 0 {
		ax++
	}
	if p.Input&Up != 0 {
		ay--
	}
	if p.Input&Down != 0 {
		ay++
	}
	acc := Accel
	if ax != 0 && ay != 0 {
		acc = AccelDiag
	}
	p.VX = (p.VX + ax*acc) * 15 / 16
	p.VY = (p.VY + ay*acc) * 15 / 16
	p.X, p.VX = bounce(p.X+p.VX, p.VX, Width)
	p.Y, p.VY = bounce(p.Y+p.VY, p.VY, Height)
	if p.Cooldown > 0 {
		p.Cooldown--
	}
}

// bounce keeps a coordinate within [PlayerRadius, size-PlayerRadius],
// reversing and halving the speed of a disc that hits a wall.
func bounce(x, v, size int) (int, int) {
	switch {
	case x < PlayerRadius:
		return PlayerRadius, -v / 2
	case x > size-PlayerRadius:
		return size - PlayerRadius, -v / 2
	}
	return x, v
}

// collide bounces two discs that overlap off each other: they exchange
// their velocities and are pushed apart. In a round, unless either is
// cooling down, the faster one steals a point from the other.
func (w *World) collide(p, q *Player) {
	dx, dy := q.X-p.X, q.Y-p.Y
	d2 := dx*dx + dy*dy
	if d2 >= 4*PlayerRadius*PlayerRadius {
		return
	}
	if w.Pause == 0 && p.Cooldown == 0 && q.Cooldown == 0 {
		sp, sq := p.VX*p.VX+p.VY*p.VY, q.VX*q.VX+q.VY*q.VY
		switch {
		case sp > sq && q.Score > 0:
			p.Score++
			q.Score--
		case sq > sp && p.Score > 0:
			q.Score++
			p.Score--
		}
		p.Cooldown, q.Cooldown = BumpCooldown, BumpCooldown
	}
	p.VX, q.VX = q.VX, p.VX
	p.VY, q.VY = q.VY, p.VY
	dist := isqrt(d2)
	overlap := 2*PlayerRadius - dist
	var px, py int
	if dist == 0 {
		px = overlap / 2 // one on top of the other: apart along x
	} else {
		px = dx * overlap / (2 * dist)
		py = dy * overlap / (2 * dist)
	}
	p.X, _ = bounce(p.X-px, 0, Width)
	p.Y, _ = bounce(p.Y-py, 0, Height)
	q.X, _ = bounce(q.X+px, 0, Width)
	q.Y, _ = bounce(q.Y+py, 0, Height)
}

// collect gives the player every gem it touches.
func (w *World) collect(p *Player) {
	reach := (PlayerRadius + GemRadius) * (PlayerRadius + GemRadius)
	kept := w.Gems[:0]
	for _, g := range w.Gems {
		if dx, dy := g.X-p.X, g.Y-p.Y; dx*dx+dy*dy < reach {
			p.Score += g.Value
		} else {
			kept = append(kept, g)
		}
	}
	w.Gems = kept
}

// isqrt is the integer square root of n ≥ 0 (Newton's method).
func isqrt(n int) int {
	if n < 2 {
		return n
	}
	x, y := n, (n+1)/2
	for y < x {
		x, y = y, (y+n/y)/2
	}
	return x
}

// Snapshot implements gamesim.Snapshotter: the whole state, players in
// order of first connection, gems in order of appearance. The format is
// mirrored in src/sim.ts: unsigned varints for counts and lengths, signed
// (zig-zag) varints for numbers, strings as a length and their bytes.
func (w *World) Snapshot(_ *gamesim.Driver, b []byte) ([]byte, error) {
	for _, v := range []int{w.Round, w.Clock, w.Pause, w.WinnerScore} {
		b = binary.AppendVarint(b, int64(v))
	}
	b = appendString(b, w.Winner)
	b = binary.AppendUvarint(b, uint64(len(w.Players)))
	for _, p := range w.Players {
		b = appendString(b, p.ID)
		b = appendString(b, p.Name)
		online := 0
		if p.Online {
			online = 1
		}
		for _, v := range []int{p.X, p.Y, p.VX, p.VY, p.Input, p.Score, online, p.Cooldown} {
			b = binary.AppendVarint(b, int64(v))
		}
	}
	b = binary.AppendUvarint(b, uint64(len(w.Gems)))
	for _, g := range w.Gems {
		for _, v := range []int{g.X, g.Y, g.Value} {
			b = binary.AppendVarint(b, int64(v))
		}
	}
	return b, nil
}

// Restore implements gamesim.Snapshotter.
func (w *World) Restore(d *gamesim.Driver, data []byte) error {
	r := reader{b: data}
	*w = World{Round: r.int(), Clock: r.int(), Pause: r.int(), WinnerScore: r.int(), Winner: r.string()}
	for range r.count() {
		p := &Player{ID: r.string(), Name: r.string()}
		p.X, p.Y, p.VX, p.VY, p.Input, p.Score = r.int(), r.int(), r.int(), r.int(), r.int(), r.int()
		p.Online, p.Cooldown = r.int() == 1, r.int()
		w.Players = append(w.Players, p)
	}
	for range r.count() {
		w.Gems = append(w.Gems, Gem{X: r.int(), Y: r.int(), Value: r.int()})
	}
	if r.err == nil && len(r.b) > 0 {
		r.err = errors.New("sim: bytes after the snapshot")
	}
	if r.err != nil {
		return r.err
	}
	w.arena = &arena{w: w}
	return d.Spawn(w.arena)
}

func appendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

// reader reads what Snapshot appended, keeping the first error.
type reader struct {
	b   []byte
	err error
}

// count reads a number of items, each at least one byte.
func (r *reader) count() int {
	n, w := binary.Uvarint(r.b)
	if w <= 0 || n > uint64(len(r.b)-w) {
		r.fail()
		return 0
	}
	r.b = r.b[w:]
	return int(n)
}

func (r *reader) int() int {
	v, w := binary.Varint(r.b)
	if w <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[w:]
	return int(v)
}

func (r *reader) string() string {
	n := r.count()
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

func (r *reader) fail() {
	if r.err == nil {
		r.err = errors.New("sim: a snapshot cut short")
	}
	r.b = nil
}
