package stream

import "errors"

// The checkpoint budget, one rule for both stores: the snapshots and
// desync dumps of all streams together hold at most
// Config.MaxCheckpointBytes (0: no limit). An upload that would pass it
// first drops the oldest dumps, of any stream; a stream's snapshot is never
// dropped (a later one replaces it, or it goes with its stream). When
// dropping every dump is not enough, the upload is refused with
// ErrCheckpointBudget and nothing is stored. An upload is checked (it was
// asked for, its hash is right) before it spends anything, so a refused one
// drops nobody's dump. Desync reports are not counted: a stream keeps at
// most maxDesyncReports of maxDumpsPerReport clients, some hundreds of
// bytes each.

// ErrCheckpointBudget means the store holds all the checkpoint bytes it
// may and has no dump left to drop for an upload (code server_busy).
// Nothing was stored.
var ErrCheckpointBudget = errors.New("the server holds all the snapshot and dump bytes it keeps (-max-checkpoint-bytes); nothing was stored, try again later")

// fitBudget takes size bytes of the budget: add adds n to the bytes held
// and returns the total, dropOldest drops the oldest dump left and returns
// the bytes it freed, or false when none is left. The caller gives back
// what it does not store with add(-n).
func (c Config) fitBudget(size int64, add func(n int64) (int64, error), dropOldest func() (int64, bool, error)) error {
	held, err := add(size)
	for err == nil && c.MaxCheckpointBytes > 0 && held > c.MaxCheckpointBytes {
		freed, ok, dropErr := dropOldest()
		switch {
		case dropErr != nil:
			return errors.Join(dropErr, giveBack(add, size))
		case !ok:
			return errors.Join(ErrCheckpointBudget, giveBack(add, size))
		}
		held, err = add(-freed)
	}
	return err
}

// checkpointCost is what an upload of n bytes counts against the budget:
// its bytes and a little for what keeps it, so that many empty uploads
// cannot be free.
func checkpointCost(n int) int64 { return int64(n) + 64 }

func giveBack(add func(int64) (int64, error), n int64) error {
	_, err := add(-n)
	return err
}
