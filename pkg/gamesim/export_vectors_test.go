package gamesim

import (
	"encoding/hex"
	"math/rand/v2"
)

// RandAt returns a Rand as the Driver has it at the start of tick k of the
// stream whose "_a" has body epoch, and the PCG's state (hi, lo) in hex:
// for the vectors of vectors_test.go.
func RandAt(epoch string, k int64) (*rand.Rand, [2]string) {
	d := newDriver(nil, Config{})
	d.seed = seedOf(epoch)
	d.reseed(k)
	state, _ := d.src.MarshalBinary() // "pcg:", hi, lo big-endian
	return d.rng, [2]string{hex.EncodeToString(state[4:12]), hex.EncodeToString(state[12:20])}
}
