package stream

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/redis/rueidis"

	"github.com/goeventstream/eventstream/internal/clock"
	"github.com/goeventstream/eventstream/internal/protocol"
)

var (
	//go:embed lua/sync.lua
	syncLua string
	//go:embed lua/sweep.lua
	sweepLua string
	//go:embed lua/reschedule.lua
	rescheduleLua string
)

// RedisConfig configures a RedisStore.
type RedisConfig struct {
	Config
	// URL is the address of Redis, such as redis://localhost:6379/0. A
	// Redis Cluster is found from any of its nodes.
	URL string
	// Prefix starts every key, so that several deployments, or tests, can
	// share one Redis. Default "es:".
	Prefix string
	// Secret keys the hash under which private ids are stored. Every
	// replica must have the same. Required.
	Secret string
	// Clock, when set (tests), replaces Redis's own clock (TIME) in every
	// script. Production leaves it nil: then replicas' clock skew cannot
	// reorder or reopen a tick.
	Clock clock.Clock
}

// RedisStore keeps streams in Redis, so that any number of replicas behind a
// load balancer serve one consistent set of streams. Every sync is one Lua
// script on the stream's keys, which share one hash tag ({stream}), so a
// Redis Cluster keeps a stream in one slot. Private ids are stored only as
// a keyed hash.
//
// Limits: the stream cap (-max-streams) is checked against a count read at
// most once a second, so replicas may together create a few streams past
// it; per-stream statistics read at most the requested number of streams.
// What Redis loses, the streams lose: without persistence, a restart of
// Redis starts every stream anew (clients see a new epoch and replay from
// "_a"); with AOF (appendfsync always) nothing is lost.
type RedisStore struct {
	cfg    RedisConfig
	client rueidis.Client
	sync   *rueidis.Lua
	sweep  *rueidis.Lua
	resch  *rueidis.Lua
	// syncSHA names the sync script, so that it can be pipelined with
	// EVALSHA; Lua.Exec loads it when Redis does not know it yet.
	syncSHA string
	index   string // the deadline index: stream -> next time a sweep is due, ms

	tails tailCache // sealed ticks read before, per stream

	streamCount atomic.Int64 // streams in the index, read at most once a second
	countedAt   atomic.Int64 // unix ms of the last count
}

var _ Store = (*RedisStore)(nil)

// NewRedisStore connects to Redis and returns a store.
func NewRedisStore(cfg RedisConfig) (*RedisStore, error) {
	if err := cfg.Config.Validate(); err != nil {
		return nil, err
	}
	if cfg.Secret == "" {
		return nil, errors.New("redis store: a secret is required to hash private ids; give every replica the same")
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "es:"
	}
	opt, err := rueidis.ParseURL(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("redis store: %w", err)
	}
	opt.DisableCache = true
	client, err := rueidis.NewClient(opt)
	if err != nil {
		return nil, fmt.Errorf("redis store: connecting to %s: %w", opt.InitAddress, errors.Join(ErrUnavailable, err))
	}
	return &RedisStore{
		cfg:     cfg,
		client:  client,
		sync:    rueidis.NewLuaScript(syncLua),
		sweep:   rueidis.NewLuaScript(sweepLua),
		resch:   rueidis.NewLuaScript(rescheduleLua),
		syncSHA: fmt.Sprintf("%x", sha1.Sum([]byte(syncLua))),
		index:   cfg.Prefix + "deadlines",
	}, nil
}

// Close closes the connections to Redis.
func (r *RedisStore) Close() { r.client.Close() }

func (r *RedisStore) keys(stream string) []string {
	tag := r.cfg.Prefix + "{" + stream + "}:"
	return []string{tag + "m", tag + "l", tag + "i", tag + "s", tag + "b"}
}

// nowArg is the time argument of the scripts: "" lets Redis use its clock.
func (r *RedisStore) nowArg() string {
	if r.cfg.Clock == nil {
		return ""
	}
	return strconv.FormatInt(r.cfg.Clock.Now().UnixMilli(), 10)
}

func (r *RedisStore) now() time.Time {
	if r.cfg.Clock == nil {
		return time.Now()
	}
	return r.cfg.Clock.Now()
}

func (r *RedisStore) hashID(privateID string) string {
	mac := hmac.New(sha256.New, []byte(r.cfg.Secret))
	mac.Write([]byte(privateID))
	return hex.EncodeToString(mac.Sum(nil)[:16])
}

func hashBatch(batch string) string {
	if batch == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(batch))
	return hex.EncodeToString(sum[:8])
}

func unavailable(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}

// Sync implements Store.
func (r *RedisStore) Sync(ctx context.Context, req *SyncRequest) (*SyncResult, error) {
	mayCreate := "1"
	if r.streams(ctx) >= int64(r.cfg.MaxStreams) {
		mayCreate = "0"
	}
	// The sealed ticks this replica already read need not be read again.
	// They are copied into the reply's buffer now; the script's events follow.
	cached, n, cacheEpoch, cacheFrom, cacheSealed, hit := r.tails.lookup(req.Buf[:0], req.Stream, req.LastKnownTick, r.cfg.PageEvents)
	if !hit {
		cacheEpoch, cacheFrom, cacheSealed = "", 0, 0
	}
	args := make([]string, 0, 16+2*len(req.Events))
	args = append(args,
		r.nowArg(), r.hashID(req.PrivateID), strconv.FormatInt(req.LastKnownTick, 10), req.Epoch,
		hashBatch(req.Batch), uuid.NewString(), strconv.Itoa(r.cfg.TickRate),
		strconv.Itoa(r.cfg.MaxClientsPerStream), strconv.Itoa(r.cfg.MaxEventsPerStream),
		strconv.Itoa(r.cfg.PageEvents), mayCreate, strconv.Itoa(len(req.Events)),
		cacheEpoch, strconv.FormatInt(cacheFrom, 10), strconv.FormatInt(cacheSealed, 10), strconv.Itoa(r.cfg.PageEvents-n))
	for _, e := range req.Events {
		args = append(args, string(protocol.AppendString(nil, e.Type)), string(e.Body))
	}

	// The stream's deadline is put in the index before the sync, so that a
	// replica dying between the two cannot leave a client no sweep will find.
	// Both go in one round trip.
	deadline := r.now().Add(r.cfg.ClientTimeout).UnixMilli()
	keys := r.keys(req.Stream)
	resps := r.client.DoMulti(ctx,
		r.client.B().Zadd().Key(r.index).Lt().ScoreMember().ScoreMember(float64(deadline), req.Stream).Build(),
		r.client.B().Evalsha().Sha1(r.syncSHA).Numkeys(int64(len(keys))).Key(keys...).Arg(args...).Build())
	if err := resps[0].Error(); err != nil {
		return nil, unavailable(err)
	}
	vals, err := resps[1].ToArray()
	if err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT") {
		vals, err = r.sync.Exec(ctx, r.client, keys, args).ToArray() // loads the script
	}
	if err != nil {
		return nil, unavailable(err)
	}
	status, _ := vals[0].ToString()
	if status == "err" {
		code, _ := vals[1].ToString()
		switch code {
		case "server_full":
			return nil, ErrServerFull
		case "too_many_clients":
			return nil, ErrTooManyClients
		case "too_many_events":
			return nil, ErrTooManyEvents
		}
		return nil, fmt.Errorf("redis store: sync script said %q", code)
	}
	if len(vals) != 12 {
		return nil, fmt.Errorf("redis store: sync script returned %d values", len(vals))
	}
	res := &SyncResult{}
	res.PublicID, _ = vals[1].ToString()
	res.T, _ = vals[2].AsInt64()
	res.Epoch, _ = vals[3].ToString()
	rate, _ := vals[4].AsInt64()
	res.TickRate = int(rate)
	more, _ := vals[5].AsInt64()
	created, _ := vals[6].AsInt64()
	connected, _ := vals[7].AsInt64()
	appended, _ := vals[8].AsInt64()
	res.More, res.Created, res.Connected, res.Appended = more == 1, created == 1, connected == 1, int(appended)
	events, _ := vals[9].ToString()
	skipped, _ := vals[10].AsInt64()
	covered, _ := vals[11].AsInt64() // the first tick the script's events cover
	res.Events = req.Buf[:0]
	if skipped == 1 {
		covered = cacheSealed
		res.Events = cached
		if len(cached) > 0 && len(events) > 0 {
			res.Events = append(res.Events, ',')
		}
	}
	res.Events = append(res.Events, events...)
	r.tails.store(req.Stream, res.Epoch, covered, res.T, []byte(events))
	if res.Created {
		r.streamCount.Add(1)
	}
	return res, nil
}

// streams returns the number of streams, counted at most once a second.
func (r *RedisStore) streams(ctx context.Context) int64 {
	now := time.Now().UnixMilli()
	if last := r.countedAt.Load(); now-last < 1000 {
		return r.streamCount.Load()
	}
	r.countedAt.Store(now)
	n, err := r.client.Do(ctx, r.client.B().Zcard().Key(r.index).Build()).AsInt64()
	if err == nil {
		r.streamCount.Store(n)
	}
	return r.streamCount.Load()
}

// Sweep implements Store. Any number of replicas may sweep at once: each
// stream is swept by one atomic script, which appends a disconnect only for
// a client still connected.
func (r *RedisStore) Sweep(ctx context.Context) (SweepResult, error) {
	var res SweepResult
	now := r.now().UnixMilli()
	if r.cfg.Clock == nil {
		tm, err := r.client.Do(ctx, r.client.B().Time().Build()).AsIntSlice()
		if err != nil {
			return res, unavailable(err)
		}
		now = tm[0]*1000 + tm[1]/1000
	}
	due, err := r.client.Do(ctx, r.client.B().Zrangebyscore().Key(r.index).Min("-inf").
		Max(strconv.FormatInt(now, 10)).Withscores().Limit(0, 1000).Build()).AsZScores()
	if err != nil {
		return res, unavailable(err)
	}
	timeout := strconv.FormatInt(r.cfg.ClientTimeout.Milliseconds(), 10)
	ttl := strconv.FormatInt(r.cfg.StreamTTL.Milliseconds(), 10)
	for _, z := range due {
		vals, err := r.sweep.Exec(ctx, r.client, r.keys(z.Member), []string{r.nowArg(), timeout, ttl}).ToArray()
		if err != nil {
			return res, unavailable(err)
		}
		status, _ := vals[0].ToString()
		seen := strconv.FormatFloat(z.Score, 'f', -1, 64)
		switch status {
		case "gone", "expired":
			changed, err := r.resch.Exec(ctx, r.client, []string{r.index}, []string{z.Member, seen, ""}).AsInt64()
			if err != nil {
				return res, unavailable(err)
			}
			if status == "expired" || changed == 1 {
				res.Expired = append(res.Expired, z.Member)
				r.streamCount.Add(-1)
			}
		case "ok":
			next, _ := vals[1].AsInt64()
			t, _ := vals[2].AsInt64()
			for _, v := range vals[3:] {
				pub, _ := v.ToString()
				res.Disconnected = append(res.Disconnected, Disconnect{Stream: z.Member, PublicID: pub, T: t})
			}
			err := r.resch.Exec(ctx, r.client, []string{r.index}, []string{z.Member, seen, strconv.FormatInt(next, 10)}).Error()
			if err != nil {
				return res, unavailable(err)
			}
		}
	}
	return res, nil
}

// Stats implements Store. It reads every stream's counts, pipelined a
// thousand at a time, and describes at most limit of them.
func (r *RedisStore) Stats(ctx context.Context, limit int) (Stats, error) {
	var st Stats
	names, err := r.client.Do(ctx, r.client.B().Zrange().Key(r.index).Min("0").Max("-1").Build()).AsStrSlice()
	if err != nil {
		return st, unavailable(err)
	}
	now := r.now().UnixMilli()
	for chunk := range slices.Chunk(names, 1000) {
		cmds := make(rueidis.Commands, len(chunk))
		for i, name := range chunk {
			cmds[i] = r.client.B().Hmget().Key(r.keys(name)[0]).Field("created", "rate", "last_t", "connected").Build()
		}
		for i, resp := range r.client.DoMulti(ctx, cmds...) {
			vals, err := resp.ToArray()
			if err != nil {
				return st, unavailable(err)
			}
			created, err := vals[0].AsInt64()
			if err != nil {
				continue // expired since it was listed
			}
			rate, _ := vals[1].AsInt64()
			lastT, _ := vals[2].AsInt64()
			clients, _ := vals[3].AsInt64()
			t := int64(1)
			if now > created {
				t = 1 + (now-created)*rate/1000
			}
			st.Streams++
			st.Clients += int(clients)
			st.PerStream = append(st.PerStream, StreamStats{Stream: chunk[i], T: max(t, lastT), Clients: int(clients)})
		}
	}
	st.rank(limit)
	return st, nil
}

// Ping implements Store.
func (r *RedisStore) Ping(ctx context.Context) error {
	return unavailable(r.client.Do(ctx, r.client.B().Ping().Build()).Error())
}
