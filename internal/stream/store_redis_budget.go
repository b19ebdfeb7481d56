package stream

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"github.com/redis/rueidis"
)

// The checkpoint budget on Redis (checkpoint_budget.go). Its keys share a
// hash tag of their own, apart from every stream's: the bytes held
// (<prefix>{ck}:bytes), the dumps stored in the order they were
// (<prefix>{ck}:dumps, members "<cost> <tick> <public id> <id> <stream>",
// scored by the counter <prefix>{ck}:seq)
// and each stream's snapshot cost (<prefix>{ck}:snaps). A budget step is
// therefore a command beside the stream's script, not in it: a replica that
// dies between the two leaves the count too high by one upload, which only
// makes the budget refuse sooner. A dump's cost is counted until its entry
// is popped, even when it went before with its report or its stream or was
// replaced: the count is never below what is held, and the entries' costs
// never above the count, so the set stays within the budget.

type budgetKeys struct{ bytes, dumps, seq, snaps string }

func (r *RedisStore) budgetKeys() budgetKeys {
	tag := r.cfg.Prefix + "{ck}:"
	return budgetKeys{bytes: tag + "bytes", dumps: tag + "dumps", seq: tag + "seq", snaps: tag + "snaps"}
}

// addHeld returns the budget's add on Redis.
func (r *RedisStore) addHeld(ctx context.Context) func(int64) (int64, error) {
	return func(n int64) (int64, error) {
		held, err := r.client.Do(ctx, r.client.B().Incrby().Key(r.budgetKeys().bytes).Increment(n).Build()).AsInt64()
		if err != nil {
			return 0, failed(err)
		}
		return held, nil
	}
}

// dropOldestDump returns the budget's dropOldest on Redis: it pops the
// oldest entry and drops its dump (lua/drop_dump.lua) if it is still
// stored; the entry's cost is given back either way.
func (r *RedisStore) dropOldestDump(ctx context.Context) func() (int64, bool, error) {
	return func() (int64, bool, error) {
		popped, err := r.client.Do(ctx, r.client.B().Zpopmin().Key(r.budgetKeys().dumps).Build()).AsStrSlice()
		if err != nil {
			return 0, false, failed(err)
		}
		if len(popped) == 0 {
			return 0, false, nil
		}
		f := strings.SplitN(popped[0], " ", 5)
		if len(f) != 5 {
			return 0, false, fmt.Errorf("redis store: a checkpoint budget entry %q", popped[0])
		}
		cost, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, false, fmt.Errorf("redis store: a checkpoint budget entry %q", popped[0])
		}
		if err := r.dropDump.exec(ctx, r.client, r.keys(f[4]).all(), f[1:4]).Error(); err != nil {
			return 0, false, failed(err)
		}
		return cost, true, nil
	}
}

// setSnapshotCost records cost as stream's snapshot's, 0 for none, and
// gives back its previous one's.
func (r *RedisStore) setSnapshotCost(ctx context.Context, stream string, cost int64) error {
	k := r.budgetKeys()
	if err := r.budgetSnap.exec(ctx, r.client, []string{k.bytes, k.snaps}, []string{stream, strconv.FormatInt(cost, 10)}).Error(); err != nil {
		return failed(err)
	}
	return nil
}

// checkpointBytes returns the bytes held.
func (r *RedisStore) checkpointBytes(ctx context.Context) (int64, error) {
	n, err := r.client.Do(ctx, r.client.B().Get().Key(r.budgetKeys().bytes).Build()).AsInt64()
	if rueidis.IsRedisNil(err) {
		return 0, nil
	}
	return n, unavailable(err)
}

// PutSnapshot implements Store (lua/put_snapshot.lua): checked, then the
// budget taken, then stored.
func (r *RedisStore) PutSnapshot(ctx context.Context, up *Upload) (int64, bool, error) {
	hash := hashOf(up.Data)
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	put := func(check string) (int64, bool, error) {
		vals, err := r.putSnap.exec(ctx, r.client, r.keys(up.Stream).all(),
			[]string{r.hashID(up.PrivateID), strconv.FormatInt(up.T, 10), hash, string(up.Data), r.nowArg(), r.conf.keepTicks, check}).ToArray()
		if err != nil {
			return 0, false, failed(err)
		}
		rd := scriptReply{vals: vals}
		if err := rd.status("put_snapshot"); err != nil {
			return 0, false, err
		}
		t, stored := rd.int(), rd.flag()
		return t, stored, rd.done()
	}
	if t, would, err := put("1"); err != nil || !would {
		return t, false, err
	}
	cost := checkpointCost(len(up.Data))
	if err := r.cfg.fitBudget(cost, r.addHeld(ctx), r.dropOldestDump(ctx)); err != nil {
		return 0, false, err
	}
	t, stored, err := put("0")
	if err != nil || !stored {
		_, _ = r.addHeld(ctx)(-cost) // best effort: too high a count refuses sooner
		return t, false, err
	}
	return t, true, r.setSnapshotCost(ctx, up.Stream, cost)
}

// PutDump implements Store (lua/put_dump.lua): checked, then the budget
// taken, then stored and queued.
func (r *RedisStore) PutDump(ctx context.Context, up *Upload) error {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	id := uuid.NewString()
	put := func(check string) (string, error) {
		vals, err := r.putDump.exec(ctx, r.client, r.keys(up.Stream).all(),
			[]string{r.hashID(up.PrivateID), strconv.FormatInt(up.T, 10), string(up.Data), id, check}).ToArray()
		if err != nil {
			return "", failed(err)
		}
		rd := scriptReply{vals: vals}
		if err := rd.status("put_dump"); err != nil {
			return "", err
		}
		pub := rd.str()
		return pub, rd.done()
	}
	if _, err := put("1"); err != nil {
		return err
	}
	cost := checkpointCost(len(up.Data))
	if err := r.cfg.fitBudget(cost, r.addHeld(ctx), r.dropOldestDump(ctx)); err != nil {
		return err
	}
	pub, err := put("0")
	if err != nil {
		_, _ = r.addHeld(ctx)(-cost) // best effort: too high a count refuses sooner
		return err
	}
	entry := strconv.FormatInt(cost, 10) + " " + strconv.FormatInt(up.T, 10) + " " + pub + " " + id + " " + up.Stream
	k := r.budgetKeys()
	if err := r.budgetDump.exec(ctx, r.client, []string{k.dumps, k.seq}, []string{entry}).Error(); err != nil {
		return failed(err)
	}
	return nil
}
