package stream

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/goeventstream/eventstream/internal/protocol"
)

// Checkpoints, one rule for both stores (docs/protocol.md, "Checkpoints").
// Clients report the hash of their state at the end of every checkpoint
// tick (a multiple of Config.CheckpointInterval); the store judges each
// checkpoint, appends "_x" naming the clients that diverged, asks one
// client that agreed for a snapshot, keeps the snapshot whose SHA-256 is
// the canonical hash, and drops the history it makes unnecessary.
//
// A stream's checkpoint state is bounded however clients behave: at most
// maxCheckpoints checkpoints of one vote per client, maxDesyncReports
// reports of maxDumpsPerReport dumps of at most Config.MaxSnapshotBytes,
// and one snapshot. The Redis scripts are given these limits as arguments
// (syncArgs in store_redis.go); the rules below are mirrored in
// lua/checkpoint.lua, the prelude of the scripts that need them.
const (
	// judgeAfter is the longest a checkpoint waits for reports after it
	// is sealed before it is judged.
	judgeAfter = 2 * time.Second
	// keepVerdicts is how long a checkpoint is kept: reports of older
	// checkpoints are ignored, and a snapshot of one is refused.
	keepVerdicts = 10 * time.Second
	// maxCheckpoints caps the checkpoints a stream keeps; a report that
	// would open another closes the oldest (judging it if it is open).
	maxCheckpoints = 32
	// maxDesyncReports is how many desync reports a stream keeps. When
	// one more is made, the oldest made by a late report (one after its
	// checkpoint was judged) goes, or else the oldest: a client's late
	// reports cannot push a verdict's report out. Mirrored in desync
	// (lua/sync.lua).
	maxDesyncReports = 4
	// maxDumpsPerReport caps the clients asked for a dump per report: one
	// that agreed and up to three that diverged.
	maxDumpsPerReport = 4
)

// Errors of the checkpoint calls.
var (
	// ErrNotFound means the stream, its client, its snapshot or the dump
	// asked for does not exist (code not_found).
	ErrNotFound = errors.New("not found")
	// ErrBadReport means a hash report is not of a checkpoint tick, or
	// checkpoints are off. Nothing was applied (code bad_request).
	ErrBadReport = errors.New("a hash report must be of a checkpoint tick, a multiple of the checkpoint interval")
	// ErrForbidden means a client uploaded a snapshot or a dump it was
	// not asked for: only the client the server asked may upload one
	// (code forbidden). Nothing was stored.
	ErrForbidden = errors.New("only the client the server asked for this checkpoint's snapshot or dump may upload it")
	// ErrSnapshotMismatch means a snapshot's SHA-256 is not the canonical
	// hash of its checkpoint, or the checkpoint has none (code
	// snapshot_mismatch). Nothing was stored.
	ErrSnapshotMismatch = errors.New("the snapshot's SHA-256 is not the canonical hash of its checkpoint " +
		"(or the checkpoint was not judged with one, or is older than " + keepVerdicts.String() + ")")
)

// Snapshot is a stream's state at the end of a checkpoint tick, as a
// client serialized it, verified against the canonical hash.
type Snapshot struct {
	T     int64
	Hash  string // lowercase hex SHA-256 of Data
	Epoch string
	Data  []byte
}

// Upload is a client's snapshot or desync dump of checkpoint tick T.
type Upload struct {
	Stream    string
	PrivateID string
	T         int64
	Data      []byte
}

// DesyncReport says who diverged at a checkpoint.
type DesyncReport struct {
	// T is the checkpoint tick; At the tick of the "_x" that named them.
	T, At int64
	// Hash is the canonical hash, or "" when the reporters tied.
	Hash string
	// Clients are the clients asked for a dump: first one that agreed
	// (when there is a canonical hash), then those that diverged.
	Clients []DesyncClient
}

// DesyncClient is one client of a DesyncReport.
type DesyncClient struct {
	PublicID string
	Hash     string // the hash it reported
	Dump     bool   // its dump has been uploaded
}

// hashOf returns the hash of a snapshot: lowercase hex SHA-256.
func hashOf(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// vote is a client's report of a checkpoint, as the tally sees it.
type vote struct {
	pub  string
	hash string
}

// judge tallies the votes of one checkpoint, given in ascending public id
// order, of its voters (Config.voter) still connected; eligible is how
// many such voters there are, reported or not. The hash reported most is
// canonical if at least quorum voters (all of them, when fewer are
// eligible) reported it and no other hash as many; the voters that
// reported another have diverged. When hashes tie for the most there is
// no verdict and nobody has diverged: the votes cannot tell who is right,
// and naming every reporter would let as many minted ids as there are
// honest players send those players to resync (docs/protocol.md, "Trust
// model"). Mirrored in tally (lua/checkpoint.lua).
func judge(votes []vote, eligible, quorum int) (canonical string, diverged []string) {
	counts := make(map[string]int, 2)
	top, tops := 0, 0
	for _, v := range votes {
		counts[v.hash]++
		switch n := counts[v.hash]; {
		case n > top:
			top, tops, canonical = n, 1, v.hash
		case n == top:
			tops++
		}
	}
	if tops != 1 || top < min(quorum, max(eligible, 1)) {
		return "", nil // a tie, or too few agree
	}
	for _, v := range votes {
		if v.hash != canonical {
			diverged = append(diverged, v.pub)
		}
	}
	return canonical, diverged
}

// desyncBody returns the body of "_x": a JSON string literal holding
// {"t":<checkpoint>,"ids":[<public ids>]}. Mirrored in desync_body
// (lua/prelude.lua).
func desyncBody(t int64, ids []string) []byte {
	b := append(make([]byte, 0, 32+8*len(ids)), `{"t":`...)
	b = strconv.AppendInt(b, t, 10)
	b = append(b, `,"ids":[`...)
	for i, id := range ids {
		if i > 0 {
			b = append(b, ',')
		}
		b = protocol.AppendString(b, id)
	}
	b = append(b, "]}"...)
	return protocol.AppendString(nil, string(b))
}

// pubLess orders public ids as numbers. Mirrored in pub_less
// (lua/checkpoint.lua).
func pubLess(a, b string) int {
	if len(a) != len(b) {
		return len(a) - len(b)
	}
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// The checkpoint rule's durations in ticks of the stream's rate.
func (c Config) judgeTicks() int64  { return durationTicks(judgeAfter, c.TickRate) }
func (c Config) keepTicks() int64   { return durationTicks(keepVerdicts, c.TickRate) }
func (c Config) tenureTicks() int64 { return durationTicks(c.VoterTenure, c.TickRate) }
func (c Config) retainTicks() int64 {
	return durationTicks(c.HistoryRetain, c.TickRate)
}

// durationTicks returns d in ticks at rate, rounded up.
func durationTicks(d time.Duration, rate int) int64 {
	return int64((d*time.Duration(rate) + time.Second - 1) / time.Second)
}

// checkReports returns ErrBadReport unless every report is of a
// checkpoint tick. Both stores call it before anything else.
func (c Config) checkReports(hashes []protocol.HashReport) error {
	for _, h := range hashes {
		if c.CheckpointInterval == 0 {
			return fmt.Errorf("%w, and checkpoints are off on this server (-checkpoint-interval 0): send no hash reports (one was of tick %d)", ErrBadReport, h.T)
		}
		if h.T%c.CheckpointInterval != 0 {
			return fmt.Errorf("%w (%d): not tick %d", ErrBadReport, c.CheckpointInterval, h.T)
		}
	}
	return nil
}

// kept reports whether checkpoint ck is still kept at tick t: for
// keepVerdicts after its tick. A report of a checkpoint no longer kept is
// ignored, its verdict is forgotten, and a snapshot of it is refused.
// Mirrored in ck_kept (lua/checkpoint.lua).
func (c Config) kept(ck, t int64) bool { return ck > t-c.keepTicks() }

// judgeAt returns the tick from which open checkpoint ck is judged without
// waiting for more reports: judgeAfter after it is sealed (at ck+1).
// Mirrored in ck_judge_at (lua/checkpoint.lua).
func (c Config) judgeAt(ck int64) int64 { return ck + 1 + c.judgeTicks() }

// askAgainAt returns the tick from which a client asked at tick t for a
// snapshot or a dump that has not come is asked again (or, for a snapshot,
// another client is): judgeAfter later, time for an upload under way.
// Mirrored in ask_again_at (lua/checkpoint.lua).
func (c Config) askAgainAt(t int64) int64 { return t + c.judgeTicks() }

// voter reports whether a client connected at tick joined (its latest
// "_c") votes on checkpoint ck: only if it was in the stream VoterTenure
// before ck, so that ids minted shortly before a checkpoint cannot
// outvote the players that reached it; the stream's founders (those
// connected within its first VoterTenure) vote on every checkpoint they
// were in the stream at, so a game whose players all join at its start
// is judged at once. A report from any other client is ignored. The
// voters are the clients that joined at or before voterUntil: a client
// that votes on ck joined no later than every one that does not.
// Mirrored in ck_voter (lua/checkpoint.lua).
func (c Config) voter(joined, ck int64) bool { return joined <= c.voterUntil(ck) }

// voterUntil returns the latest tick of a "_c" that votes on checkpoint
// ck (Config.voter). Mirrored in ck_voter_until (lua/checkpoint.lua).
func (c Config) voterUntil(ck int64) int64 {
	tenure := c.tenureTicks()
	return max(ck-tenure, min(tenure, ck))
}

// reportable reports whether a report of checkpoint ck, made at tick t,
// is one the store considers: a sealed checkpoint still kept.
// (checkReports has refused those that are not multiples of the interval.)
// Mirrored in ck_reportable (lua/checkpoint.lua).
func (c Config) reportable(ck, t int64) bool { return ck < t && c.kept(ck, t) }
