package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"

	"go.uber.org/zap/zapcore"

	"github.com/goeventstream/eventstream/internal/api"
	"github.com/goeventstream/eventstream/internal/auth"
	"github.com/goeventstream/eventstream/internal/stream"
)

// envPrefix starts the environment variable of every flag: -client-timeout
// is also EVENTSTREAMD_CLIENT_TIMEOUT.
const envPrefix = "EVENTSTREAMD_"

// config is everything eventstreamd can be told at start.
type config struct {
	Addr        string
	DebugAddr   string
	BenchFloor  bool
	MetricsAddr string
	// Stream configures the store. Its URL is -store: "memory" for the
	// memory store, which reads only Stream.Config, or a Redis URL.
	Stream stream.RedisConfig
	// StoreDevSecret accepts developmentSecret as the store's secret, and
	// makes it the secret when none is given: for a local Redis only.
	StoreDevSecret    bool
	Limits            api.Limits
	Push              api.PushConfig
	Admission         api.AdmissionConfig
	CORSOrigins       []string
	MetricsMaxStreams int
	LogFormat         string
	LogLevel          zapcore.Level
	ShutdownTimeout   time.Duration
	DrainDelay        time.Duration
	SweepInterval     time.Duration
	// MetricsStatsInterval is how long a read of the store's statistics
	// serves the scrapes that follow it.
	MetricsStatsInterval time.Duration
	Version              bool
	// Auth: with a secret or public keys, streams need tokens
	// (docs/protocol.md, "Tokens").
	AuthSecret     string
	AuthPublicKeys string
	AuthAudience   string
	AuthOpenPrefix string
	// MetricsPublic serves /metrics on -addr with auth on; MetricsStreamLabels
	// gives streams series of their own with auth on.
	MetricsPublic       bool
	MetricsStreamLabels bool
}

// authOn reports whether streams need tokens.
func (c config) authOn() bool { return c.AuthSecret != "" || c.AuthPublicKeys != "" }

// auth is the configuration of the token verifier, on the real clock.
func (c config) auth() auth.Config {
	return auth.Config{Secret: []byte(c.AuthSecret), PublicKeys: c.AuthPublicKeys, Audience: c.AuthAudience}
}

func defaultConfig() config {
	return config{
		Addr:   ":9922",
		Stream: defaultStreamConfig(),
		Limits: api.DefaultLimits(),
		Push:   api.DefaultPushConfig(),
		// 1200 a minute: a 1000-player burst join from one network fits.
		// 60 bad signatures a minute: past a burst of 60, an address
		// costs at most a signature check a second (0.1-0.2 ms of CPU);
		// an honest client sends none. 1000 a second from all: at most
		// 0.1-0.2 of a core, however many addresses a stranger has.
		Admission: api.AdmissionConfig{NewClientsPerAddressPerMinute: 1200,
			BadSignaturesPerAddressPerMinute: 60, BadSignaturesPerSecond: 1000},
		CORSOrigins:          []string{"*"},
		MetricsMaxStreams:    1000,
		LogFormat:            "json",
		LogLevel:             zapcore.InfoLevel,
		ShutdownTimeout:      15 * time.Second,
		DrainDelay:           5 * time.Second,
		MetricsStatsInterval: 5 * time.Second,
		SweepInterval:        stream.DefaultSweepInterval,
	}
}

// memoryStore is the -store that keeps streams in memory.
const memoryStore = "memory"

func defaultStreamConfig() stream.RedisConfig {
	c := stream.DefaultRedisConfig()
	c.URL = memoryStore
	return c
}

// developmentSecret is the store secret of `make run-redis`. Anyone can
// read it here, so a server refuses it unless -store-dev-secret says that
// this is a development Redis.
const developmentSecret = "local-development-secret"

// redis reports whether the streams are kept in Redis.
func (c config) redis() bool { return c.Stream.URL != memoryStore }

// Validate reports the first invalid setting, if any.
func (c config) Validate() error {
	if !c.redis() {
		if err := c.Stream.Config.Validate(); err != nil {
			return err
		}
		if c.Stream.WaitReplicas != 0 {
			return errors.New("-store-wait-replicas needs a Redis store: the memory store has no replicas")
		}
	} else if err := c.Stream.Validate(); errors.Is(err, stream.ErrBadSecret) {
		return fmt.Errorf("-store-secret (or %s): %w; for a local development Redis only, -store-dev-secret", envName("store-secret"), err)
	} else if err != nil {
		return fmt.Errorf("-store is memory or a Redis store: %w", err)
	} else if c.Stream.Secret == developmentSecret && !c.StoreDevSecret {
		return fmt.Errorf("-store-secret (or %s): the store's secret is the development secret of make run-redis, which anyone can read: set one of 32 random characters (openssl rand -hex 16), or -store-dev-secret for a development Redis", envName("store-secret"))
	}
	if err := c.Limits.Validate(); err != nil {
		return err
	}
	switch {
	case c.Push.MaxConnections < 1:
		// api.PushConfig reads 0 as its default: refused here, so that 0
		// is not taken for "no push connections".
		return errors.New("-max-ws-connections must be at least 1 (past it, clients poll)")
	case c.Push.PingInterval <= 0:
		return errors.New("-ws-ping-interval must be positive")
	case c.Push.PingInterval > c.Stream.ClientTimeout/2:
		return fmt.Errorf("-ws-ping-interval %v is more than half -client-timeout %v: a push client would be disconnected between two pings; set at most %v",
			c.Push.PingInterval, c.Stream.ClientTimeout, c.Stream.ClientTimeout/2)
	case c.Push.MaxLag <= 0:
		return errors.New("-ws-max-lag must be positive")
	case c.Push.QuietInterval <= 0 || c.Push.QuietInterval > api.MaxQuietInterval:
		return fmt.Errorf("-ws-quiet-interval must be positive and at most %v", api.MaxQuietInterval)
	case c.Push.WriteBuffer < api.MinWriteBuffer || c.Push.WriteBuffer > api.MaxWriteBuffer:
		return fmt.Errorf("-ws-write-buffer must be between %d and %d bytes", api.MinWriteBuffer, api.MaxWriteBuffer)
	case c.Push.MaxSpectatorsPerStream < 1:
		// Read as its default by api.PushConfig, as -max-ws-connections.
		return errors.New("-max-spectators-per-stream must be at least 1 (past it, spectators poll)")
	}
	if c.Stream.MaxEventsPerSecond > 0 && c.Stream.EventBurst < c.Limits.MaxEventsPerSync {
		return fmt.Errorf("client event burst must hold the largest request: at least %d (-max-events-per-sync)", c.Limits.MaxEventsPerSync)
	}
	if least := c.Limits.MaxEventBodyBytes + 512; c.Stream.PageBytes < least {
		return fmt.Errorf("page bytes must hold a tick of one event of the largest body: at least %d with -max-event-body-bytes %d", least, c.Limits.MaxEventBodyBytes)
	}
	switch {
	case c.MetricsMaxStreams < 0:
		return errors.New("metrics max streams must not be negative")
	case c.LogFormat != "json" && c.LogFormat != "console":
		return fmt.Errorf("log format must be json or console, not %q", c.LogFormat)
	case c.ShutdownTimeout <= 0:
		return errors.New("shutdown timeout must be positive")
	case c.DrainDelay < 0:
		return errors.New("drain delay must not be negative")
	case c.MetricsStatsInterval < 0:
		return errors.New("metrics stats interval must not be negative")
	case c.SweepInterval <= 0 || c.SweepInterval > time.Second:
		return errors.New("sweep interval must be positive and at most 1s, so a silent client is disconnected within a second of its deadline")
	case c.Admission.NewClientsPerAddressPerMinute < 0:
		return errors.New("-max-new-clients-per-address-per-minute must not be negative")
	case c.Admission.BadSignaturesPerAddressPerMinute < 0:
		return errors.New("-max-bad-signatures-per-address-per-minute must not be negative")
	case c.Admission.BadSignaturesPerSecond < 0:
		return errors.New("-max-bad-signatures-per-second must not be negative")
	case len(c.CORSOrigins) == 0:
		return errors.New("cors origins must name at least one origin, or *")
	}
	if c.authOn() {
		if err := c.auth().Validate(); err != nil {
			return fmt.Errorf("-auth-secret or -auth-public-keys: %w", err)
		}
	} else if c.AuthAudience != "" || c.AuthOpenPrefix != "" {
		return errors.New("-auth-audience and -auth-open-prefix need -auth-secret or -auth-public-keys")
	}
	return nil
}

// newFlagSet binds the flags of cfg.
func newFlagSet(cfg *config) *flag.FlagSet {
	fs := flag.NewFlagSet("eventstreamd", flag.ContinueOnError)
	fs.StringVar(&cfg.Addr, "addr", cfg.Addr, "`address` to listen on")
	fs.BoolVar(&cfg.BenchFloor, "bench-floor", false, "also serve /_floor/..., a bare net/http handler that reads the body and writes a fixed reply: the floor esbench -mode floor compares syncs with")
	fs.StringVar(&cfg.DebugAddr, "debug-addr", cfg.DebugAddr, "`address` for /debug/pprof/; empty means off. Keep it private")
	fs.StringVar(&cfg.MetricsAddr, "metrics-addr", cfg.MetricsAddr, "`address` for /metrics, apart from the public API; empty serves /metrics on -addr")
	fs.StringVar(&cfg.Stream.URL, "store", cfg.Stream.URL, "where streams are kept: memory, or redis://host:6379/0 to share them among replicas")
	fs.StringVar(&cfg.Stream.Secret, "store-secret", cfg.Stream.Secret, fmt.Sprintf("secret that keys the hash of private ids in Redis, at least %d characters; the same on every replica (required with redis)", stream.MinSecretLen))
	fs.BoolVar(&cfg.StoreDevSecret, "store-dev-secret", cfg.StoreDevSecret, fmt.Sprintf("accept the development secret of make run-redis (%q), which anyone can read, and use it when -store-secret is empty: for a local Redis only", developmentSecret))
	fs.StringVar(&cfg.Stream.Prefix, "store-prefix", cfg.Stream.Prefix, "prefix of every Redis key")
	fs.DurationVar(&cfg.Stream.Timeout, "store-timeout", cfg.Stream.Timeout, "longest wait for Redis on any call; past it a sync answers 503")
	fs.BoolVar(&cfg.Stream.AllowEviction, "store-allow-eviction", cfg.Stream.AllowEviction, "run on a Redis whose maxmemory-policy may evict keys (a stream may then lose its state)")
	fs.IntVar(&cfg.Stream.WaitReplicas, "store-wait-replicas", cfg.Stream.WaitReplicas, "with Redis: how many Redis replicas must acknowledge a sync's writes (WAIT, within -store-timeout) before it is answered, so that a failover to one of them loses no event a client was told of; fewer in time answer 503 store_unknown. 0 waits for none")
	fs.Int64Var(&cfg.Stream.TailCacheBytes, "tail-cache-bytes", cfg.Stream.TailCacheBytes, "memory for the sealed ticks a replica keeps of Redis streams; 0 keeps none")
	fs.IntVar(&cfg.Stream.TickRate, "tick-rate", cfg.Stream.TickRate, "ticks per second of new streams")
	fs.DurationVar(&cfg.Stream.ClientTimeout, "client-timeout", cfg.Stream.ClientTimeout, "silence after which a client is disconnected")
	fs.DurationVar(&cfg.Stream.StreamTTL, "stream-ttl", cfg.Stream.StreamTTL, "time a stream with no connected client is kept")
	fs.IntVar(&cfg.Stream.MaxStreams, "max-streams", cfg.Stream.MaxStreams, "most streams held at once")
	fs.IntVar(&cfg.Stream.MaxClientsPerStream, "max-clients-per-stream", cfg.Stream.MaxClientsPerStream, "most clients connected to one stream at once (a client that went silent gives its slot back); a stream remembers at most 8 times as many private ids")
	fs.IntVar(&cfg.Stream.MaxEventsPerStream, "max-events-per-stream", cfg.Stream.MaxEventsPerStream, "most events one stream accepts")
	fs.Int64Var(&cfg.Stream.MaxStreamBytes, "max-stream-bytes", cfg.Stream.MaxStreamBytes, "most bytes of events (their JSON) one stream accepts")
	fs.Float64Var(&cfg.Stream.MaxSyncsPerSecond, "max-syncs-per-second", cfg.Stream.MaxSyncsPerSecond, "syncs a second each client of a stream may make (429 rate_limited past it); 0 for no limit")
	fs.Float64Var(&cfg.Stream.MaxEventsPerSecond, "max-events-per-client-per-second", cfg.Stream.MaxEventsPerSecond, "events a second each client of a stream may post, its fair share (429 rate_limited past it); 0 for no limit")
	fs.Float64Var(&cfg.Stream.MaxStreamBytesPerSecond, "max-stream-bytes-per-second", cfg.Stream.MaxStreamBytesPerSecond, "bytes of events a second all the clients of a stream may post together, with a burst of a second's worth and at least -page-bytes, so that many ids cannot fill a stream faster than one (429 rate_limited past it); 0 for no limit")
	fs.Float64Var(&cfg.Stream.MaxJoinsPerSecond, "max-joins-per-stream-per-second", cfg.Stream.MaxJoinsPerSecond, "new private ids a second a stream takes, with a burst of a second's worth and at least -max-clients-per-stream (429 rate_limited past it); 0 for no limit")
	fs.IntVar(&cfg.Stream.EventBurst, "client-event-burst", cfg.Stream.EventBurst, "most events a client may post at once, beside its rate; at least -max-events-per-sync")
	fs.IntVar(&cfg.Stream.PageEvents, "page-events", cfg.Stream.PageEvents, "most events in one reply (a tick is never split)")
	fs.IntVar(&cfg.Stream.PageBytes, "page-bytes", cfg.Stream.PageBytes, "most bytes of events in one reply (a tick is never split)")
	fs.Int64Var(&cfg.Stream.CheckpointInterval, "checkpoint-interval", cfg.Stream.CheckpointInterval, "ticks between checkpoints clients report state hashes for; 0 turns checkpoints, desync detection, snapshots and compaction off")
	fs.IntVar(&cfg.Stream.CheckpointQuorum, "checkpoint-quorum", cfg.Stream.CheckpointQuorum, "fewest clients that must agree on a checkpoint's hash for it to be canonical (all of them when fewer are connected)")
	fs.DurationVar(&cfg.Stream.VoterTenure, "checkpoint-voter-tenure", cfg.Stream.VoterTenure, "how long a client must have been connected before it votes on a checkpoint, so that ids that join shortly before one cannot outvote the players; clients that connect within a stream's first tenure vote at once. 0: every client connected at a checkpoint votes")
	fs.Int64Var(&cfg.Stream.SnapshotEvery, "snapshot-every", cfg.Stream.SnapshotEvery, "events appended since the last snapshot after which a client is asked for one; 0 asks for none and compacts nothing (full history)")
	fs.Int64Var(&cfg.Stream.MaxSnapshotBytes, "max-snapshot-bytes", cfg.Stream.MaxSnapshotBytes, "largest snapshot or desync dump (413 past it)")
	fs.Int64Var(&cfg.Stream.MaxCheckpointBytes, "max-checkpoint-bytes", cfg.Stream.MaxCheckpointBytes, "most bytes of snapshots and desync dumps (each counting 64 more) of all streams together; an upload past it drops the oldest dumps, never a snapshot, and is refused (503 server_busy) when that is not enough; 0 for no limit")
	fs.DurationVar(&cfg.Stream.HistoryRetain, "history-retain", cfg.Stream.HistoryRetain, "how long events at or below the snapshot's tick are kept before they are compacted")
	fs.Int64Var(&cfg.Limits.MaxBodyBytes, "max-body-bytes", cfg.Limits.MaxBodyBytes, "largest request body")
	fs.IntVar(&cfg.Limits.MaxEventsPerSync, "max-events-per-sync", cfg.Limits.MaxEventsPerSync, "most events in one request")
	fs.IntVar(&cfg.Limits.MaxEventBodyBytes, "max-event-body-bytes", cfg.Limits.MaxEventBodyBytes, "largest event body, as sent")
	fs.Int64Var(&cfg.Limits.MaxInflightBytes, "max-inflight-bytes", cfg.Limits.MaxInflightBytes, "memory the requests in progress may hold together (a body and a page per sync, -max-snapshot-bytes per upload); past it, a request waits -max-inflight-wait, then is answered 503 server_busy")
	fs.DurationVar(&cfg.Limits.MaxInflightWait, "max-inflight-wait", cfg.Limits.MaxInflightWait, "how long a request waits, first come first served, for in-flight memory before 503 server_busy; 0 refuses at once")
	fs.Int64Var(&cfg.Push.MaxConnections, "max-ws-connections", cfg.Push.MaxConnections, "most push (WebSocket) connections; past it an upgrade is answered 503 server_full")
	fs.DurationVar(&cfg.Push.PingInterval, "ws-ping-interval", cfg.Push.PingInterval, "how often a push connection is pinged and its client's presence refreshed; at most half -client-timeout (when not set: the default, or half -client-timeout if that is less)")
	fs.Int64Var(&cfg.Push.MaxSpectatorsPerStream, "max-spectators-per-stream", cfg.Push.MaxSpectatorsPerStream, "most spectators' push connections to one stream on this server; past it a spectator's upgrade is answered 503 server_full (polling spectators are not counted)")
	fs.DurationVar(&cfg.Push.QuietInterval, "ws-quiet-interval", cfg.Push.QuietInterval, "the longest a push connection goes without a message while its stream's ticks pass with no events (the bound on t clients pace by); longer sends fewer messages, and a simulation runs further behind the server")
	fs.DurationVar(&cfg.Push.MaxLag, "ws-max-lag", cfg.Push.MaxLag, "how far behind the newest tick a push connection may fall before it is closed (4001); its client catches up by sync")
	fs.IntVar(&cfg.Push.WriteBuffer, "ws-write-buffer", cfg.Push.WriteBuffer, "the kernel's send buffer of each push connection, in bytes (SO_SNDBUF; Linux doubles it and caps it at net.core.wmem_max): the kernel memory a client that stops reading holds before what it does not take queues, and is cut after -ws-max-lag; a client gets at most about this much per round trip")
	fs.Func("cors-origins", "comma-separated `origins` browsers may call from, or * for any (default *)", func(s string) error {
		cfg.CORSOrigins = nil
		for _, o := range strings.Split(s, ",") {
			if o = strings.TrimSpace(o); o != "" {
				cfg.CORSOrigins = append(cfg.CORSOrigins, o)
			}
		}
		return nil
	})
	fs.Float64Var(&cfg.Admission.NewClientsPerAddressPerMinute, "max-new-clients-per-address-per-minute", cfg.Admission.NewClientsPerAddressPerMinute, "private ids new to their stream one source address may bring a minute, with a burst of as many (429 rate_limited past it); loopback is not limited; 0 for no limit")
	fs.Func("trusted-proxies", "comma-separated `CIDRs` of the load balancers in front of the server: a request from one comes from the last address of its X-Forwarded-For not in them (default none: X-Forwarded-For is ignored)", func(s string) error {
		cfg.Admission.TrustedProxies = nil
		for _, c := range strings.Split(s, ",") {
			if c = strings.TrimSpace(c); c == "" {
				continue
			}
			p, err := netip.ParsePrefix(c)
			if err != nil {
				return err
			}
			cfg.Admission.TrustedProxies = append(cfg.Admission.TrustedProxies, p.Masked())
		}
		return nil
	})
	fs.IntVar(&cfg.MetricsMaxStreams, "metrics-max-streams", cfg.MetricsMaxStreams, "most streams given per-stream metric series")
	fs.StringVar(&cfg.LogFormat, "log-format", cfg.LogFormat, "log format: json or console")
	fs.TextVar(&cfg.LogLevel, "log-level", cfg.LogLevel, "log level: debug, info, warn or error")
	fs.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", cfg.ShutdownTimeout, "time in-flight requests get to finish on SIGTERM, after the drain delay")
	fs.DurationVar(&cfg.DrainDelay, "drain-delay", cfg.DrainDelay, "on SIGTERM, time /readyz answers 503 while requests are still served, so load balancers stop sending any")
	fs.DurationVar(&cfg.MetricsStatsInterval, "metrics-stats-interval", cfg.MetricsStatsInterval, "how long one read of the store's statistics serves the scrapes that follow it")
	fs.DurationVar(&cfg.SweepInterval, "sweep-interval", cfg.SweepInterval, "how often silent clients and idle streams are looked for (at most 1s)")
	fs.StringVar(&cfg.AuthSecret, "auth-secret", cfg.AuthSecret, fmt.Sprintf("HS256 secret of stream tokens, at least %d bytes; with it (or -auth-public-keys) every stream needs a token. Prefer the environment to the command line", auth.MinSecretLen))
	fs.StringVar(&cfg.AuthPublicKeys, "auth-public-keys", cfg.AuthPublicKeys, "`file` of public keys (PEM, or a JWKS document) for RS256, ES256 and EdDSA stream tokens, chosen by kid; re-read on SIGHUP")
	fs.StringVar(&cfg.AuthAudience, "auth-audience", cfg.AuthAudience, "the aud a stream token must name; empty refuses tokens that name one")
	fs.StringVar(&cfg.AuthOpenPrefix, "auth-open-prefix", cfg.AuthOpenPrefix, "with auth on, streams whose name starts with this `prefix` need no token (public lobbies); empty keeps none open")
	fs.Float64Var(&cfg.Admission.BadSignaturesPerAddressPerMinute, "max-bad-signatures-per-address-per-minute", cfg.Admission.BadSignaturesPerAddressPerMinute, "with auth on, tokens with a wrong signature one source address may send a minute, with a burst of as many; past it a token not verified before is refused (429 rate_limited) without its signature checked; loopback is not limited; 0 for no limit")
	fs.Float64Var(&cfg.Admission.BadSignaturesPerSecond, "max-bad-signatures-per-second", cfg.Admission.BadSignaturesPerSecond, "with auth on, tokens with a wrong signature all source addresses together may send a second, with a burst of as many; past it a token not verified before is refused (429 rate_limited) without its signature checked, but from an address that presented a valid token not yet expired (held by its own limit alone); loopback counts; 0 for no limit")
	fs.BoolVar(&cfg.MetricsPublic, "metrics-public", cfg.MetricsPublic, "with auth on, still serve /metrics on -addr (by default it is served only on -metrics-addr)")
	fs.BoolVar(&cfg.MetricsStreamLabels, "metrics-stream-labels", cfg.MetricsStreamLabels, "with auth on, give streams per-stream series labelled with their names (by default none: names are what an attacker needs)")
	fs.BoolVar(&cfg.Version, "version", false, "print the version and exit")
	return fs
}

// envName returns the environment variable of a flag.
func envName(flagName string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// parseConfig reads the configuration from the environment, then from
// args, which win. It returns flag.ErrHelp after writing the usage to
// usage when asked for help.
func parseConfig(args []string, getenv func(string) string, usage io.Writer) (config, error) {
	cfg := defaultConfig()
	fs := newFlagSet(&cfg)
	fs.SetOutput(io.Discard)
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		name := envName(f.Name)
		if v := getenv(name); v != "" && envErr == nil {
			if err := fs.Set(f.Name, v); err != nil {
				envErr = fmt.Errorf("invalid value %q for %s: %v", v, name, err)
			}
		}
	})
	if envErr != nil {
		return cfg, envErr
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(usage)
			fmt.Fprintf(usage, "Usage: eventstreamd [flags]\n       eventstreamd healthcheck [flags]   (exit 0 if the server at -addr answers /healthz)\n\nEvery flag can also be set with an environment variable, -client-timeout with %s.\n\n", envName("client-timeout"))
			fs.PrintDefaults()
		}
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if cfg.Version {
		return cfg, nil
	}
	cfg.Limits.MaxReplyBytes = cfg.Stream.PageBytes // what the store may reply
	cfg.Limits.MaxSnapshotBytes = cfg.Stream.MaxSnapshotBytes
	set := map[string]bool{} // the flags given, by argument or environment
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if !set["ws-ping-interval"] {
		// The default refreshes a push client's presence within any client
		// timeout; a value given is refused by Validate when it does not.
		cfg.Push.PingInterval = min(cfg.Push.PingInterval, cfg.Stream.ClientTimeout/2)
	}
	if cfg.StoreDevSecret && cfg.Stream.Secret == "" {
		cfg.Stream.Secret = developmentSecret
	}
	return cfg, cfg.Validate()
}
