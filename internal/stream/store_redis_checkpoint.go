package stream

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/rueidis"
)

// Snapshot implements Store.
func (r *RedisStore) Snapshot(ctx context.Context, stream string) (*Snapshot, error) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	vals, err := r.client.Do(ctx, r.client.B().Hmget().Key(r.keys(stream).meta).
		Field("epoch", "snap_t", "snap_h", "snap").Build()).ToArray()
	if err != nil {
		return nil, unavailable(err)
	}
	if vals[0].IsNil() || vals[1].IsNil() {
		return nil, ErrNotFound
	}
	rd := scriptReply{vals: vals}
	snap := &Snapshot{Epoch: rd.str(), T: rd.int(), Hash: rd.str(), Data: rd.bytes()}
	if err := rd.done(); err != nil {
		return nil, fmt.Errorf("redis store: a snapshot: %w", err)
	}
	return snap, nil
}

// Desyncs implements Store.
func (r *RedisStore) Desyncs(ctx context.Context, stream string) ([]DesyncReport, error) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	k := r.keys(stream)
	resps := r.client.DoMulti(ctx,
		r.client.B().Exists().Key(k.meta).Build(),
		r.client.B().Hget().Key(k.desyncs).Field("r").Build())
	n, err := resps[0].AsInt64()
	if err != nil {
		return nil, unavailable(err)
	}
	if n == 0 {
		return nil, ErrNotFound
	}
	s, err := resps[1].ToString()
	if rueidis.IsRedisNil(err) {
		return []DesyncReport{}, nil
	}
	if err != nil {
		return nil, unavailable(err)
	}
	return parseReports(s)
}

// parseReports parses the desync reports as lua/checkpoint.lua writes them.
func parseReports(s string) ([]DesyncReport, error) {
	out := []DesyncReport{}
	for line := range strings.SplitSeq(s, ";") {
		if line == "" {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 3 {
			return nil, fmt.Errorf("redis store: a desync report %q", line)
		}
		t, err1 := strconv.ParseInt(f[0], 10, 64)
		at, err2 := strconv.ParseInt(f[1], 10, 64)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("redis store: a desync report %q", line)
		}
		rep := DesyncReport{T: t, At: at, Hash: f[2]}
		if rep.Hash == "-" {
			rep.Hash = ""
		}
		for _, c := range f[3:] {
			parts := strings.Split(c, "=")
			if len(parts) != 3 {
				return nil, fmt.Errorf("redis store: a desync report's client %q", c)
			}
			rep.Clients = append(rep.Clients, DesyncClient{PublicID: parts[0], Hash: parts[1], Dump: parts[2] == "1"})
		}
		out = append(out, rep)
	}
	return out, nil
}

// Dump implements Store.
func (r *RedisStore) Dump(ctx context.Context, stream string, t int64, publicID string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	b, err := r.client.Do(ctx, r.client.B().Hget().Key(r.keys(stream).desyncs).
		Field("d:"+strconv.FormatInt(t, 10)+":"+publicID).Build()).AsBytes()
	if rueidis.IsRedisNil(err) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, unavailable(err)
	}
	return b, nil
}

// status reads the {"ok", ...} or {"err", code} head of a script's reply.
func (s *scriptReply) status(script string) error {
	switch status := s.str(); status {
	case "ok":
		return nil
	case "err":
		code := s.str()
		if err := scriptErrors[code]; err != nil {
			return err
		}
		return fmt.Errorf("redis store: %s answered the unknown error %q", script, code)
	default:
		if s.err != nil {
			return fmt.Errorf("redis store: %s's reply: %w", script, s.err)
		}
		return fmt.Errorf("redis store: %s answered %q, not ok or err", script, status)
	}
}

// Read implements Store (lua/read.lua).
func (r *RedisStore) Read(ctx context.Context, req *SyncRequest) (*SyncResult, error) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	vals, err := r.read.exec(ctx, r.client, r.keys(req.Stream).all(), []string{r.nowArg(),
		strconv.FormatInt(req.LastKnownTick, 10), req.Epoch, r.conf.pageEvents, r.conf.pageBytes}).ToArray()
	if err != nil {
		return nil, unavailable(err)
	}
	rd := scriptReply{vals: vals}
	if err := rd.status("read"); err != nil {
		return nil, err
	}
	res := &SyncResult{T: rd.int(), Epoch: rd.str(), TickRate: int(rd.int()), More: rd.flag(),
		Events: append(req.Buf[:0], rd.bytes()...), Checkpoint: r.cfg.CheckpointInterval}
	res.Base = rd.tick()
	if err := rd.done(); err != nil {
		return nil, fmt.Errorf("redis store: the read script's reply: %w", err)
	}
	return res, nil
}
