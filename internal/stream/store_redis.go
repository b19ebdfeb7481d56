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
	"net"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/redis/rueidis"

	"github.com/goeventstream/eventstream/internal/protocol"
)

var (
	//go:embed lua/prelude.lua
	preludeLua string
	//go:embed lua/checkpoint.lua
	checkpointLua string
	//go:embed lua/sync.lua
	syncLua string
	//go:embed lua/put_snapshot.lua
	putSnapshotLua string
	//go:embed lua/put_dump.lua
	putDumpLua string
	//go:embed lua/drop_dump.lua
	dropDumpLua string
	//go:embed lua/budget_snapshot.lua
	budgetSnapLua string
	//go:embed lua/budget_dump.lua
	budgetDumpLua string
	//go:embed lua/read.lua
	readLua string
	//go:embed lua/sweep.lua
	sweepLua string
	//go:embed lua/claim.lua
	claimLua string
	//go:embed lua/reschedule.lua
	rescheduleLua string
)

// script is a Lua script and its SHA-1, so that it can be pipelined with
// EVALSHA.
type script struct {
	lua  *rueidis.Lua
	sha  string
	text string
}

// streamScript returns a script of lua/ that works on a stream's keys,
// with the prelude every such script shares and, for those that need its
// rules, lua/checkpoint.lua.
func streamScript(body string) script { return newScript(preludeLua + body) }

func checkpointScript(body string) script { return newScript(preludeLua + checkpointLua + body) }

func newScript(text string) script {
	return script{lua: rueidis.NewLuaScript(text), sha: fmt.Sprintf("%x", sha1.Sum([]byte(text))), text: text}
}

// cmd is the EVALSHA of the script.
func (s script) cmd(c rueidis.CoreClient, keys, args []string) rueidis.Completed {
	return c.B().Evalsha().Sha1(s.sha).Numkeys(int64(len(keys))).Key(keys...).Arg(args...).Build()
}

// loaded returns res, or the script run again with Lua.Exec, which loads
// it, when res says Redis does not know it yet.
func (s script) loaded(ctx context.Context, c rueidis.Client, keys, args []string, res rueidis.RedisResult) rueidis.RedisResult {
	if re, ok := rueidis.IsRedisErr(res.Error()); ok && re.IsNoScript() {
		return s.lua.Exec(ctx, c, keys, args)
	}
	return res
}

// exec runs the script in one round trip (two when Redis must load it).
func (s script) exec(ctx context.Context, c rueidis.Client, keys, args []string) rueidis.RedisResult {
	return s.loaded(ctx, c, keys, args, c.Do(ctx, s.cmd(c, keys, args)))
}

// DefaultRedisPrefix starts every key unless RedisConfig.Prefix says
// otherwise.
const DefaultRedisPrefix = "es:"

// MinSecretLen is the shortest RedisConfig.Secret accepted.
const MinSecretLen = 16

// ErrBadSecret is wrapped by the errors of RedisConfig.Validate that refuse
// the secret, so that a caller can name the setting that holds it.
var ErrBadSecret = errors.New("the Redis store's secret")

// RedisConfig configures a RedisStore. Start from DefaultRedisConfig.
type RedisConfig struct {
	// Config is what every store is configured with. Its Clock, when set
	// (tests), replaces Redis's own clock (TIME) in every script.
	Config
	// URL is the address of Redis, such as redis://localhost:6379/0. A
	// Redis Cluster is found from any of its nodes.
	URL string
	// Prefix starts every key, so that several deployments, or tests, can
	// share one Redis.
	Prefix string
	// Secret keys the hash under which private ids are stored. Every
	// replica must have the same; at least MinSecretLen characters.
	Secret string
	// Timeout bounds every call to Redis: a sync, a batch of a sweep, a
	// ping. A call that passes it answers ErrUnavailable, or
	// ErrOutcomeUnknown when the sync may have been applied.
	Timeout time.Duration
	// AllowEviction lets the store run on a Redis whose maxmemory-policy
	// may evict keys: a stream could then lose part of its state. Without
	// it, NewRedisStore refuses such a Redis.
	AllowEviction bool
	// TailCacheBytes bounds the memory of the sealed ticks a replica keeps
	// of the streams it serves, so that a sync reads from Redis only what
	// follows them. Zero keeps none.
	TailCacheBytes int64
	// WaitReplicas, when positive, is how many Redis replicas must have
	// acknowledged a sync's writes (Redis WAIT) before it is answered, so
	// that a failover to one of them loses no event a client was told of.
	// The wait is within Timeout; a sync that fewer replicas acknowledged in
	// time answers ErrNotReplicated (code store_unknown: it stands on the
	// primary, a retry with its batch id is safe). Snapshots, dumps and a
	// sweep's disconnects do not wait. Zero waits for none (asynchronous
	// replication, the default).
	WaitReplicas int
}

// DefaultRedisConfig returns the defaults of DefaultConfig and
// DefaultRedisPrefix; URL and Secret are left for the caller.
func DefaultRedisConfig() RedisConfig {
	return RedisConfig{Config: DefaultConfig(), Prefix: DefaultRedisPrefix, Timeout: 2 * time.Second, TailCacheBytes: 64 << 20}
}

// Validate reports the first invalid field, if any.
func (c RedisConfig) Validate() error {
	if err := c.Config.Validate(); err != nil {
		return err
	}
	switch {
	case !strings.HasPrefix(c.URL, "redis://") && !strings.HasPrefix(c.URL, "rediss://"):
		return fmt.Errorf("the Redis URL must start with redis:// or rediss://, not %q", c.URL)
	case c.Prefix == "":
		return errors.New("the Redis key prefix must not be empty")
	case c.Timeout <= 0:
		return errors.New("the store timeout must be positive")
	case c.TailCacheBytes < 0:
		return errors.New("the tail cache's bytes must not be negative")
	case c.WaitReplicas < 0:
		return errors.New("the replicas a sync waits for must not be negative")
	case len(c.Secret) < MinSecretLen:
		return fmt.Errorf("%w must have at least %d characters (it keys the hash of private ids, the same on every replica)", ErrBadSecret, MinSecretLen)
	case placeholder(c.Secret):
		return fmt.Errorf("%w is a placeholder from an example: set one of 32 random characters (openssl rand -hex 16), the same on every replica", ErrBadSecret)
	case distinct(c.Secret) < minSecretDistinct:
		return fmt.Errorf("%w has fewer than %d distinct characters: set one of 32 random characters (openssl rand -hex 16)", ErrBadSecret, minSecretDistinct)
	}
	return nil
}

// minSecretDistinct is the fewest distinct characters a secret may have: a
// long run of one character, or a short pattern repeated, is not secret.
const minSecretDistinct = 8

// placeholder reports whether secret is one that examples show, which an
// operator may have left in place: a phrase such as change-me, or a
// template in angle brackets, as in <32 random characters>.
func placeholder(secret string) bool {
	if strings.ContainsAny(secret, "<>") {
		return true
	}
	s := strings.ToLower(secret)
	for _, p := range []string{"change-me", "changeme", "change_me", "replace-me", "replaceme", "your-secret", "example"} {
		if strings.Contains(s, p) {
			return true
		}
	}
	return false
}

// distinct returns the number of distinct bytes of s.
func distinct(s string) int {
	var seen [256]bool
	n := 0
	for i := 0; i < len(s); i++ {
		if !seen[s[i]] {
			seen[s[i]] = true
			n++
		}
	}
	return n
}

// RedisStore keeps streams in Redis, so that any number of replicas behind a
// load balancer serve one consistent set of streams. Every sync is one Lua
// script (lua/sync.lua) on the stream's keys, which share one hash tag
// ({stream}), so a Redis Cluster keeps a stream in one slot. Private ids
// are stored only as a keyed hash.
//
// Limits: the stream cap (-max-streams) is checked against a count read at
// most once a second, so replicas may together create a few streams past
// it; per-stream statistics read at most the requested number of streams.
// What Redis loses, the streams lose: without persistence, a restart of
// Redis starts every stream anew (clients see a new epoch and replay from
// "_a"); with AOF (appendfsync always) nothing is lost.
type RedisStore struct {
	cfg     RedisConfig
	conf    scriptConf // cfg as script arguments
	client  rueidis.Client
	sync    script
	sweep   script
	putSnap script
	putDump script
	// The checkpoint budget's (store_redis_budget.go).
	dropDump, budgetSnap, budgetDump script
	read                             script
	claim                            script
	resch                            script
	index                            string // the deadline index: stream -> next time a sweep is due, ms

	tails *tailCache // sealed ticks read before, per stream

	streamCount atomic.Int64 // streams in the index, read at most once a second
	countedAt   atomic.Int64 // unix ms of the last count

	beforeReschedule func() // tests: runs between a batch's sweeps and its reschedule
}

var _ Store = (*RedisStore)(nil)

// NewRedisStore validates cfg, connects to Redis and returns a store.
func NewRedisStore(cfg RedisConfig) (*RedisStore, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("redis store: %w", err)
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
	if !cfg.AllowEviction {
		if err := refuseEviction(client); err != nil {
			client.Close()
			return nil, err
		}
	}
	return &RedisStore{
		cfg:        cfg,
		conf:       newScriptConf(cfg.Config),
		client:     client,
		sync:       checkpointScript(syncLua),
		sweep:      streamScript(sweepLua),
		putSnap:    checkpointScript(putSnapshotLua),
		putDump:    checkpointScript(putDumpLua),
		dropDump:   checkpointScript(dropDumpLua),
		budgetSnap: newScript(budgetSnapLua), // on the budget's keys: no prelude
		budgetDump: newScript(budgetDumpLua),
		read:       streamScript(readLua),
		claim:      newScript(claimLua), // on the index, not a stream: no prelude
		resch:      newScript(rescheduleLua),
		index:      cfg.Prefix + "deadlines",
		tails:      newTailCache(cfg.TailCacheBytes, cfg.PageEvents, cfg.PageBytes),
	}, nil
}

// refuseEviction returns an error unless Redis's maxmemory-policy is
// noeviction. (On a Redis Cluster, the node asked stands for all.)
func refuseEviction(client rueidis.Client) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	info, err := client.Do(ctx, client.B().Info().Section("memory").Build()).ToString()
	if err != nil {
		return fmt.Errorf("redis store: reading its memory policy: %w", errors.Join(ErrUnavailable, err))
	}
	for line := range strings.Lines(info) {
		if policy, ok := strings.CutPrefix(strings.TrimSpace(line), "maxmemory_policy:"); ok && policy != "noeviction" {
			return fmt.Errorf("redis store: Redis may evict keys (maxmemory-policy %s), and a stream that loses a key loses its order or its clients; "+
				"set maxmemory-policy noeviction, or accept it with -store-allow-eviction", policy)
		}
	}
	return nil
}

// Close closes the connections to Redis.
func (r *RedisStore) Close() { r.client.Close() }

// streamKeys are the keys of one stream, in the order of the scripts' KEYS.
// They share the hash tag {stream}, so a Redis Cluster keeps them in one
// slot.
type streamKeys struct {
	meta    string // hash: epoch, created, rate, last_t, counts (lua/prelude.lua META)
	log     string // stream: the events, ids <tick>-<n>
	ids     string // hash: keyed hash of a private id -> public id
	seen    string // zset: public id -> last heard from (ms), connected clients only
	clients string // hash: public id -> its last batch hashes; "r:" + public id -> its fair-use buckets;
	// "k:" + public id -> the keyed hash of its private id (to forget it, admission.go);
	// "v:" + public id -> its hash reports; "d:" + public id -> the dump it owes and when to ask
	desyncs string // hash: "r" -> the desync reports; "d:<tick>:<public id>" -> a dump
	joined  string // zset: public id -> the tick of its latest "_c", connected clients only
	left    string // zset: public id -> the tick of its latest "_d", disconnected clients only (admission.go)
}

func (r *RedisStore) keys(stream string) streamKeys {
	tag := r.cfg.Prefix + "{" + stream + "}:"
	return streamKeys{meta: tag + "m", log: tag + "l", ids: tag + "i", seen: tag + "s", clients: tag + "b", desyncs: tag + "x", joined: tag + "j", left: tag + "g"}
}

func (k streamKeys) all() []string {
	return []string{k.meta, k.log, k.ids, k.seen, k.clients, k.desyncs, k.joined, k.left}
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

// scriptErrors maps the codes of a script's {"err", code} reply to errors.
var scriptErrors = map[string]error{
	"server_full":    ErrServerFull,
	"client_cap":     ErrClientCap,
	"event_cap":      ErrEventCap,
	"byte_cap":       ErrByteCap,
	"tick_full":      ErrTickFull,
	"not_found":      ErrNotFound,
	"forbidden":      ErrForbidden,
	"new_client":     ErrNewClient,
	"epoch_mismatch": ErrEpochMismatch,
	// Of put_snapshot.lua.
	"snapshot_mismatch": ErrSnapshotMismatch,
}

// failed says what an error of the client means for a request that was
// being sent: unless it could not even connect, Redis may have run it.
func failed(err error) error {
	var op *net.OpError
	if _, isRedis := rueidis.IsRedisErr(err); isRedis || (errors.As(err, &op) && op.Op == "dial") {
		return unavailable(err) // Redis refused it, or never saw it
	}
	return fmt.Errorf("%w: %w", ErrOutcomeUnknown, err)
}

// Sync implements Store.
func (r *RedisStore) Sync(ctx context.Context, req *SyncRequest) (*SyncResult, error) {
	if err := r.cfg.checkReports(req.Hashes); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	mayCreate := r.streams(ctx) < int64(r.cfg.MaxStreams)
	// The sealed ticks this replica already read need not be read again.
	// They are copied into the reply's buffer now; the script's events follow.
	hit := r.tails.lookup(req.Buf[:0], req.Stream, req.LastKnownTick, r.cfg.PageEvents, r.cfg.PageBytes)
	keys := r.keys(req.Stream).all()
	args := r.syncArgs(req, mayCreate, hit)

	// The stream's deadline is put in the index before the sync, so that a
	// replica dying between the two cannot leave a client no sweep will find.
	// Both go in one round trip. When no stream may be created (nor by a
	// post naming an epoch, which never creates one), only an entry that
	// exists is moved: a refused request leaves none behind.
	deadline := float64(r.now().Add(r.cfg.ClientTimeout).UnixMilli())
	schedule := r.client.B().Zadd().Key(r.index).Lt().ScoreMember().ScoreMember(deadline, req.Stream).Build()
	if !mayCreate || req.KnownOnly || (len(req.Events) > 0 && req.Epoch != "") {
		schedule = r.client.B().Zadd().Key(r.index).Xx().Lt().ScoreMember().ScoreMember(deadline, req.Stream).Build()
	}
	var vals []rueidis.RedisMessage
	var err error
	if r.cfg.WaitReplicas > 0 {
		// A copy: keys, which its closure keeps, would otherwise move to
		// the heap on every sync.
		vals, err = r.syncReplicated(ctx, schedule, slices.Clone(keys), args)
	} else {
		resps := r.client.DoMulti(ctx, schedule, r.sync.cmd(r.client, keys, args))
		if err := resps[0].Error(); err != nil {
			return nil, failed(err)
		}
		vals, err = r.sync.loaded(ctx, r.client, keys, args, resps[1]).ToArray()
	}
	if errors.Is(err, ErrNotReplicated) {
		return nil, err
	}
	if err != nil {
		return nil, failed(err)
	}
	reply, err := decodeSyncReply(vals)
	if err != nil {
		return nil, err
	}

	res := &reply.SyncResult
	res.Checkpoint = r.cfg.CheckpointInterval
	res.Events = req.Buf[:0]
	if reply.skipped {
		// The script read only what follows the cached ticks.
		reply.covered = hit.sealed
		res.Events = hit.events
		if len(hit.events) > 0 && len(reply.events) > 0 {
			res.Events = append(res.Events, ',')
		}
	}
	res.Events = append(res.Events, reply.events...)
	r.tails.store(req.Stream, res.Epoch, reply.covered, res.T, reply.events)
	if res.Created {
		r.streamCount.Add(1)
	}
	return res, nil
}

// ErrNotReplicated means a sync was applied on the Redis primary but fewer
// replicas than RedisConfig.WaitReplicas acknowledged it within the store
// timeout: a failover now could lose it (code store_unknown). A retry with
// the same batch id is safe. It wraps ErrOutcomeUnknown.
var ErrNotReplicated = fmt.Errorf("%w: fewer Redis replicas than -store-wait-replicas acknowledged it in time", ErrOutcomeUnknown)

// waitMargin is what a sync that waits for replicas leaves of the store
// timeout for WAIT's answer: Redis notices a WAIT's timeout on its cron,
// ten times a second by default (hz 10).
const waitMargin = 150 * time.Millisecond

// syncReplicated schedules the stream's deadline, then runs the sync script
// and WAIT on one connection of its own, so that WAIT covers the script's
// writes (Redis counts a connection's writes), within what is left of
// ctx's time. It returns the script's reply, or ErrNotReplicated. A
// refused request (its reply an error) does not wait.
func (r *RedisStore) syncReplicated(ctx context.Context, schedule rueidis.Completed, keys, args []string) ([]rueidis.RedisMessage, error) {
	if err := r.client.Do(ctx, schedule).Error(); err != nil {
		return nil, err
	}
	var vals []rueidis.RedisMessage
	var acked int64
	err := r.client.Dedicated(func(c rueidis.DedicatedClient) error {
		res := c.Do(ctx, r.sync.cmd(c, keys, args))
		if re, ok := rueidis.IsRedisErr(res.Error()); ok && re.IsNoScript() {
			res = c.Do(ctx, c.B().Eval().Script(r.sync.text).Numkeys(int64(len(keys))).Key(keys...).Arg(args...).Build())
		}
		var err error
		if vals, err = res.ToArray(); err != nil {
			return err
		}
		if len(vals) == 0 {
			return nil // decodeSyncReply says what is wrong
		}
		if status, _ := vals[0].ToString(); status != "ok" {
			acked = int64(r.cfg.WaitReplicas) // refused: nothing to wait for
			return nil
		}
		wait := time.Millisecond
		if deadline, ok := ctx.Deadline(); ok {
			wait = max(wait, time.Until(deadline)-waitMargin)
		}
		acked, err = c.Do(ctx, c.B().Wait().Numreplicas(int64(r.cfg.WaitReplicas)).Timeout(wait.Milliseconds()).Build()).AsInt64()
		return err
	})
	switch {
	case err != nil:
		return nil, err
	case acked < int64(r.cfg.WaitReplicas):
		return nil, fmt.Errorf("%w (%d of %d)", ErrNotReplicated, acked, r.cfg.WaitReplicas)
	}
	return vals, nil
}

// syncArgs returns the ARGV of lua/sync.lua, in the order its header gives.
func (r *RedisStore) syncArgs(req *SyncRequest, mayCreate bool, hit tailHit) []string {
	c := &r.conf
	args := make([]string, 0, 41+2*len(req.Events)+2*len(req.Hashes))
	args = append(args,
		r.nowArg(),                               // 1
		r.hashID(req.PrivateID),                  // 2
		strconv.FormatInt(req.LastKnownTick, 10), // 3
		req.Epoch,                                // 4
		hashBatch(req.Batch),                     // 5
		uuid.NewString(),                         // 6 the epoch, if the stream is created
		c.tickRate,                               // 7
		c.maxClients,                             // 8
		c.maxEvents,                              // 9
		c.maxBytes,                               // 10
		c.pageEvents,                             // 11
		c.pageBytes,                              // 12
		flag(mayCreate),                          // 13
		c.batchMemory,                            // 14
		hit.epoch,                                // 15 "" when the cache missed
		strconv.FormatInt(hit.from, 10),          // 16
		strconv.FormatInt(hit.sealed, 10),        // 17
		strconv.Itoa(r.cfg.PageEvents-hit.n),     // 18
		strconv.Itoa(r.cfg.PageBytes-hit.bytes()), // 19
		c.syncRate,                    // 20
		c.syncBurst,                   // 21
		c.eventRate,                   // 22
		c.eventBurst,                  // 23
		strconv.Itoa(len(req.Events)), // 24
		c.checkpoint,                  // 25
		c.quorum,                      // 26
		c.snapshotEvery,               // 27
		c.judgeTicks,                  // 28
		c.keepTicks,                   // 29
		c.retainTicks,                 // 30
		strconv.Itoa(len(req.Hashes)), // 31
		c.maxCheckpoints,              // 32
		c.maxDesyncReports,            // 33
		c.maxDumpsPerReport,           // 34
		c.maxKnownClients,             // 35
		c.streamByteRate,              // 36
		c.streamByteBurst,             // 37
		c.joinRate,                    // 38
		c.joinBurst,                   // 39
		flag(req.KnownOnly),           // 40
		c.tenureTicks,                 // 41
	)
	for _, e := range req.Events {
		args = append(args, string(protocol.AppendString(nil, e.Type)), string(e.Body))
	}
	for _, h := range req.Hashes {
		args = append(args, strconv.FormatInt(h.T, 10), h.H)
	}
	return args
}

// scriptConf is the configuration as the sync script's arguments, formatted
// once.
type scriptConf struct {
	tickRate, maxClients, maxEvents, maxBytes, pageEvents, pageBytes, batchMemory      string
	syncRate, syncBurst, eventRate, eventBurst                                         string
	checkpoint, quorum, snapshotEvery, judgeTicks, keepTicks, retainTicks, tenureTicks string
	maxCheckpoints, maxDesyncReports, maxDumpsPerReport                                string
	maxKnownClients                                                                    string
	streamByteRate, streamByteBurst, joinRate, joinBurst                               string
}

func newScriptConf(c Config) scriptConf {
	f := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	return scriptConf{
		tickRate: strconv.Itoa(c.TickRate), maxClients: strconv.Itoa(c.MaxClientsPerStream),
		maxEvents: strconv.Itoa(c.MaxEventsPerStream), maxBytes: strconv.FormatInt(c.MaxStreamBytes, 10),
		pageEvents: strconv.Itoa(c.PageEvents), pageBytes: strconv.Itoa(c.PageBytes),
		batchMemory: strconv.Itoa(protocol.BatchMemory),
		syncRate:    f(c.MaxSyncsPerSecond), syncBurst: f(c.syncBurst()),
		eventRate: f(c.MaxEventsPerSecond), eventBurst: strconv.Itoa(c.EventBurst),
		checkpoint: strconv.FormatInt(c.CheckpointInterval, 10), quorum: strconv.Itoa(c.CheckpointQuorum),
		snapshotEvery: strconv.FormatInt(c.SnapshotEvery, 10), judgeTicks: strconv.FormatInt(c.judgeTicks(), 10),
		keepTicks: strconv.FormatInt(c.keepTicks(), 10), retainTicks: strconv.FormatInt(c.retainTicks(), 10),
		tenureTicks:    strconv.FormatInt(c.tenureTicks(), 10),
		maxCheckpoints: strconv.Itoa(maxCheckpoints), maxDesyncReports: strconv.Itoa(maxDesyncReports),
		maxDumpsPerReport: strconv.Itoa(maxDumpsPerReport),
		maxKnownClients:   strconv.Itoa(knownPerSlot * c.MaxClientsPerStream),
		streamByteRate:    f(c.MaxStreamBytesPerSecond), streamByteBurst: f(c.streamByteBurst()),
		joinRate: f(c.MaxJoinsPerSecond), joinBurst: f(c.joinBurst()),
	}
}

func flag(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// syncReply is what lua/sync.lua returns.
type syncReply struct {
	SyncResult        // without Events
	events     []byte // the events the script read
	skipped    bool   // the script skipped the replica's cached ticks
	covered    int64  // the first tick events covers
}

// decodeSyncReply decodes the reply of lua/sync.lua, checking every value.
func decodeSyncReply(vals []rueidis.RedisMessage) (*syncReply, error) {
	rd := scriptReply{vals: vals}
	switch status := rd.str(); status {
	case "ok":
	case "err":
		code := rd.str()
		if code == "rate_limited" {
			e := &RateLimitError{What: rd.str(), Wait: time.Duration(rd.int()) * time.Millisecond}
			if err := rd.done(); err != nil {
				return nil, fmt.Errorf("redis store: the sync script's reply: %w", err)
			}
			return nil, e
		}
		if err := scriptErrors[code]; err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("redis store: the sync script answered the unknown error %q", code)
	default:
		return nil, fmt.Errorf("redis store: the sync script answered %q, not ok or err", status)
	}
	var out syncReply
	out.PublicID = rd.str()
	out.T = rd.int()
	out.Epoch = rd.str()
	out.TickRate = int(rd.int())
	out.More = rd.flag()
	out.Created = rd.flag()
	out.Connected = rd.flag()
	out.Appended = int(rd.int())
	out.events = rd.bytes()
	out.skipped = rd.flag()
	out.covered = rd.int()
	out.Snap, out.Dump, out.Base = rd.tick(), rd.tick(), rd.tick()
	out.Judged, out.Diverged, out.Compacted = int(rd.int()), int(rd.int()), int(rd.int())
	if err := rd.done(); err != nil {
		return nil, fmt.Errorf("redis store: the sync script's reply: %w", err)
	}
	return &out, nil
}

// scriptReply reads the values of a script's reply in order and keeps the
// first error: a missing value or one of the wrong type.
type scriptReply struct {
	vals []rueidis.RedisMessage
	i    int
	err  error
}

func (s *scriptReply) next() *rueidis.RedisMessage {
	if s.err != nil {
		return nil
	}
	if s.i >= len(s.vals) {
		s.err = fmt.Errorf("value %d is missing", s.i+1)
		return nil
	}
	s.i++
	return &s.vals[s.i-1]
}

func (s *scriptReply) str() string {
	m := s.next()
	if m == nil {
		return ""
	}
	v, err := m.ToString()
	if err != nil {
		s.err = fmt.Errorf("value %d: %w", s.i, err)
	}
	return v
}

func (s *scriptReply) bytes() []byte {
	m := s.next()
	if m == nil {
		return nil
	}
	v, err := m.AsBytes()
	if err != nil {
		s.err = fmt.Errorf("value %d: %w", s.i, err)
	}
	return v
}

func (s *scriptReply) int() int64 {
	m := s.next()
	if m == nil {
		return 0
	}
	v, err := m.AsInt64()
	if err != nil {
		s.err = fmt.Errorf("value %d: %w", s.i, err)
	}
	return v
}

// tick reads a tick that -1 stands for the absence of.
func (s *scriptReply) tick() *int64 {
	if v := s.int(); v >= 0 && s.err == nil {
		return &v
	}
	return nil
}

// flag reads a value that must be 0 or 1.
func (s *scriptReply) flag() bool {
	switch v := s.int(); {
	case s.err != nil:
	case v == 0 || v == 1:
		return v == 1
	default:
		s.err = fmt.Errorf("value %d is %d, not 0 or 1", s.i, v)
	}
	return false
}

// rest reads every value left as strings.
func (s *scriptReply) rest() []string {
	var out []string
	for s.err == nil && s.i < len(s.vals) {
		out = append(out, s.str())
	}
	return out
}

// done returns the first error, or an error if values are left unread.
func (s *scriptReply) done() error {
	if s.err == nil && s.i != len(s.vals) {
		s.err = fmt.Errorf("%d values, not %d", len(s.vals), s.i)
	}
	return s.err
}

// streams returns the number of streams, counted at most once a second.
func (r *RedisStore) streams(ctx context.Context) int64 {
	now := r.now().UnixMilli()
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
// claims a batch of the streams that are due (lua/claim.lua), so that the
// replicas share them, runs their sweep scripts in one pipeline, and moves
// their index entries to their next deadlines in one script, which keeps a
// deadline a sync set meanwhile (lua/reschedule.lua). A stream whose script
// fails is reported in SweepResult.Failed and tried again after
// sweepRetry; the others are swept. A replica that dies holding a claim
// delays its streams' sweep to the claim's end (claimLease past a
// deadline).
func (r *RedisStore) Sweep(ctx context.Context) (SweepResult, error) {
	var res SweepResult
	now := r.now().UnixMilli()
	if r.cfg.Clock == nil {
		ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
		defer cancel()
		tm, err := r.client.Do(ctx, r.client.B().Time().Build()).AsIntSlice()
		if err != nil {
			return res, unavailable(err)
		}
		now = tm[0]*1000 + tm[1]/1000
	}
	for range maxSweepBatches {
		n, err := r.sweepBatch(ctx, now, &res)
		if err != nil || n < sweepBatch {
			return res, err
		}
	}
	return res, nil
}

const (
	sweepBatch      = 500 // streams claimed at once
	maxSweepBatches = 40  // claimed in one Sweep: the rest wait for the next
	claimLease      = 30 * time.Second
	sweepRetry      = 5 * time.Second
)

// sweepBatch claims and sweeps up to sweepBatch due streams, adds what it
// did to res, and returns how many it claimed.
func (r *RedisStore) sweepBatch(ctx context.Context, now int64, res *SweepResult) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	// A claim ends later than any deadline a sync may set meanwhile.
	claim := strconv.FormatInt(now+(r.cfg.ClientTimeout+claimLease).Milliseconds(), 10)
	due, err := r.claim.exec(ctx, r.client, []string{r.index},
		[]string{strconv.FormatInt(now, 10), claim, strconv.Itoa(sweepBatch)}).AsStrSlice()
	if err != nil || len(due) == 0 {
		return 0, unavailable(err)
	}

	args := []string{r.nowArg(), strconv.FormatInt(r.cfg.ClientTimeout.Milliseconds(), 10),
		strconv.FormatInt(r.cfg.StreamTTL.Milliseconds(), 10)}
	cmds := make(rueidis.Commands, len(due))
	for i, name := range due {
		cmds[i] = r.sweep.cmd(r.client, r.keys(name).all(), args)
	}
	next := make([]string, 1, 1+2*len(due)) // the reschedule's ARGV
	next[0] = claim
	var expired []bool // per stream: the sweep deleted it
	for i, resp := range r.client.DoMulti(ctx, cmds...) {
		name := due[i]
		vals, err := r.sweep.loaded(ctx, r.client, r.keys(name).all(), args, resp).ToArray()
		if _, isRedis := rueidis.IsRedisErr(err); err != nil && !isRedis {
			return len(due), unavailable(err) // the claims end by themselves
		}
		swept := sweepReply{status: "failed"}
		if err == nil {
			swept, err = decodeSweepReply(vals)
		}
		switch {
		case err != nil:
			res.Failed = append(res.Failed, SweepFailure{Stream: name, Err: err})
			next = append(next, name, strconv.FormatInt(now+sweepRetry.Milliseconds(), 10))
		case swept.status == "ok":
			for _, pub := range swept.disconnected {
				res.Disconnected = append(res.Disconnected, Disconnect{Stream: name, PublicID: pub, T: swept.t})
			}
			next = append(next, name, strconv.FormatInt(swept.next, 10))
		default: // gone, or expired now
			next = append(next, name, "")
		}
		expired = append(expired, err == nil && swept.status == "expired")
	}

	if r.beforeReschedule != nil {
		r.beforeReschedule()
	}
	removed, err := r.resch.exec(ctx, r.client, []string{r.index}, next).AsIntSlice()
	if err != nil {
		return len(due), unavailable(err)
	}
	for i, name := range due {
		if expired[i] || (i < len(removed) && removed[i] == 1 && next[2+2*i] == "") {
			res.Expired = append(res.Expired, name)
			r.streamCount.Add(-1)
			r.tails.drop(name)
			// Its snapshot's cost goes back to the budget; its dumps' go
			// as their entries are popped. A failure leaves the count too
			// high, which only refuses sooner.
			_ = r.setSnapshotCost(ctx, name, 0)
		}
	}
	return len(due), nil
}

// sweepReply is what lua/sweep.lua returns.
type sweepReply struct {
	status       string // "gone", "expired" or "ok"
	next         int64  // with "ok": the next deadline, Unix ms
	t            int64  // with "ok": the tick of the disconnects
	disconnected []string
}

// decodeSweepReply decodes the reply of lua/sweep.lua, checking every value.
func decodeSweepReply(vals []rueidis.RedisMessage) (sweepReply, error) {
	rd := scriptReply{vals: vals}
	out := sweepReply{status: rd.str()}
	switch out.status {
	case "gone", "expired":
	case "ok":
		out.next = rd.int()
		out.t = rd.int()
		out.disconnected = rd.rest()
	default:
		return out, fmt.Errorf("redis store: the sweep script answered %q", out.status)
	}
	if err := rd.done(); err != nil {
		return out, fmt.Errorf("redis store: the sweep script's reply: %w", err)
	}
	return out, nil
}

// Stats implements Store. It reads every stream's counts, pipelined a
// thousand at a time, and describes at most limit of them. Unlike the
// other calls, it is bounded by ctx alone: a scrape gives it its timeout.
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
			cmds[i] = r.client.B().Hmget().Key(r.keys(name).meta).Field("created", "rate", "last_t", "connected", "count", "bytes").Build()
		}
		for i, resp := range r.client.DoMulti(ctx, cmds...) {
			vals, err := resp.ToArray()
			if err != nil {
				return st, unavailable(err)
			}
			if vals[0].IsNil() {
				continue // expired since it was listed
			}
			rd := scriptReply{vals: vals}
			created, rate, lastT, clients, events := rd.int(), rd.int(), rd.int(), rd.int(), rd.int()
			var bytes int64
			if !vals[5].IsNil() { // streams of versions that did not count bytes
				bytes = rd.int()
			} else {
				rd.next()
			}
			if rd.done() != nil {
				continue // a meta that eviction left incomplete: docs/operations.md asks for noeviction
			}
			st.Streams++
			st.Clients += int(clients)
			st.PerStream = append(st.PerStream, StreamStats{
				Stream: chunk[i], T: tickAt(created, now, int(rate), lastT), Clients: int(clients),
				Events: events, Bytes: bytes,
			})
		}
	}
	st.rank(limit)
	st.CheckpointBytes, err = r.checkpointBytes(ctx)
	return st, err
}

// Ping implements Store.
func (r *RedisStore) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	return unavailable(r.client.Do(ctx, r.client.B().Ping().Build()).Error())
}
