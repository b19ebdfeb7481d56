package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zapcore"

	"github.com/goeventstream/eventstream/internal/auth"
)

func env(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

func TestConfigDefaults(t *testing.T) {
	cfg, err := parseConfig(nil, env(), nil)
	require.NoError(t, err)
	assert.Equal(t, ":9922", cfg.Addr)
	assert.Equal(t, 20, cfg.Stream.TickRate)
	assert.Equal(t, 10*time.Second, cfg.Stream.ClientTimeout)
	assert.Equal(t, time.Minute, cfg.Stream.StreamTTL)
	assert.Equal(t, 100_000, cfg.Stream.MaxStreams)
	assert.Equal(t, 1000, cfg.Stream.MaxClientsPerStream)
	assert.Equal(t, 1_000_000, cfg.Stream.MaxEventsPerStream)
	assert.Equal(t, 4096, cfg.Stream.PageEvents)
	assert.Equal(t, 30*time.Second, cfg.Stream.VoterTenure)
	assert.Equal(t, int64(64<<10), cfg.Limits.MaxBodyBytes)
	assert.Equal(t, 256, cfg.Limits.MaxEventsPerSync)
	assert.Equal(t, 16<<10, cfg.Limits.MaxEventBodyBytes)
	assert.Equal(t, []string{"*"}, cfg.CORSOrigins)
	assert.Equal(t, 1000, cfg.MetricsMaxStreams)
	assert.Equal(t, 60.0, cfg.Admission.BadSignaturesPerAddressPerMinute)
	assert.Equal(t, 1000.0, cfg.Admission.BadSignaturesPerSecond)
	assert.Equal(t, 15*time.Second, cfg.ShutdownTimeout)
	assert.Equal(t, 5*time.Second, cfg.DrainDelay)
	assert.Equal(t, "json", cfg.LogFormat)
	assert.Equal(t, zapcore.InfoLevel, cfg.LogLevel)
}

func TestConfigEnvAndFlags(t *testing.T) {
	cfg, err := parseConfig(
		[]string{"-tick-rate", "30", "-cors-origins", "https://a.example, https://b.example"},
		env("EVENTSTREAMD_ADDR", "127.0.0.1:1234", "EVENTSTREAMD_CLIENT_TIMEOUT", "3s",
			"EVENTSTREAMD_TICK_RATE", "10", "EVENTSTREAMD_LOG_LEVEL", "debug"),
		nil)
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1:1234", cfg.Addr)
	assert.Equal(t, 3*time.Second, cfg.Stream.ClientTimeout)
	assert.Equal(t, 30, cfg.Stream.TickRate, "a flag wins over the environment")
	assert.Equal(t, []string{"https://a.example", "https://b.example"}, cfg.CORSOrigins)
	assert.Equal(t, zapcore.DebugLevel, cfg.LogLevel)
}

func TestEveryFlagHasAnEnvironmentVariable(t *testing.T) {
	cfg := defaultConfig()
	newFlagSet(&cfg).VisitAll(func(f *flag.Flag) {
		if f.Name == "version" {
			return
		}
		_, err := parseConfig(nil, env(envName(f.Name), "not a valid value"), nil)
		if f.Name == "addr" || f.Name == "debug-addr" || f.Name == "metrics-addr" || f.Name == "cors-origins" || f.Name == "store-secret" || f.Name == "store-prefix" ||
			strings.HasPrefix(f.Name, "auth-") {
			return // any string is taken; a bad address fails at listen (TestAuthConfig checks the auth- ones)
		}
		require.Error(t, err, "%s is not read from the environment", f.Name)
		assert.Regexp(t, envName(f.Name)+"|not a valid value", err.Error(), "the error names the variable or the value")
	})
}

func TestBadConfig(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  func(string) string
		want string
	}{
		{name: "bad duration", args: []string{"-client-timeout", "soon"}, env: env(), want: "client-timeout"},
		{name: "bad env", env: env("EVENTSTREAMD_MAX_STREAMS", "many"), want: "EVENTSTREAMD_MAX_STREAMS"},
		{name: "zero tick rate", args: []string{"-tick-rate", "0"}, env: env(), want: "tick rate"},
		{name: "unknown store", args: []string{"-store", "etcd"}, env: env(), want: "-store is memory or a Redis store: the Redis URL must start with redis://"},
		{name: "redis without a secret", args: []string{"-store", "redis://localhost:6379"}, env: env(), want: "-store-secret (or EVENTSTREAMD_STORE_SECRET): the Redis store's secret must have at least 16 characters"},
		{name: "redis with a short secret", args: []string{"-store", "redis://localhost:6379", "-store-secret", "short"}, env: env(), want: "-store-secret (or EVENTSTREAMD_STORE_SECRET): the Redis store's secret must have at least 16 characters"},
		{name: "redis with the example's secret", args: []string{"-store", "redis://localhost:6379"}, env: env("EVENTSTREAMD_STORE_SECRET", "change-me-to-32-random-characters"), want: "-store-secret (or EVENTSTREAMD_STORE_SECRET): the Redis store's secret is a placeholder"},
		{name: "redis with a repeated secret", args: []string{"-store", "redis://localhost:6379", "-store-secret", "abababababababababababab"}, env: env(), want: "-store-secret (or EVENTSTREAMD_STORE_SECRET): the Redis store's secret has fewer than 8 distinct characters"},
		{name: "redis without a secret names the development flag", args: []string{"-store", "redis://localhost:6379"}, env: env(), want: "; for a local development Redis only, -store-dev-secret"},
		{name: "redis with the docs' placeholder", args: []string{"-store", "redis://localhost:6379"}, env: env("EVENTSTREAMD_STORE_SECRET", "<32 random characters, the same everywhere>"), want: "placeholder"},
		{name: "redis with the development secret", args: []string{"-store", "redis://localhost:6379", "-store-secret", developmentSecret}, env: env(), want: "-store-secret (or EVENTSTREAMD_STORE_SECRET): the store's secret is the development secret of make run-redis, which anyone can read: set one of 32 random characters (openssl rand -hex 16), or -store-dev-secret for a development Redis"},
		{name: "redis with the development secret from the environment", args: []string{"-store", "redis://localhost:6379"}, env: env("EVENTSTREAMD_STORE_SECRET", developmentSecret), want: "development secret"},
		{name: "replicas of the memory store", args: []string{"-store-wait-replicas", "1"}, env: env(), want: "-store-wait-replicas needs a Redis store"},
		{name: "negative replicas", args: []string{"-store", "redis://localhost:6379", "-store-secret", "9f86d081884c7d659a2feaa0c55ad015"}, env: env("EVENTSTREAMD_STORE_WAIT_REPLICAS", "-1"), want: "replicas"},
		{name: "no push connections", args: []string{"-max-ws-connections", "0"}, env: env(), want: "-max-ws-connections must be at least 1"},
		{name: "no quiet interval", args: []string{"-ws-quiet-interval", "0s"}, env: env(), want: "-ws-quiet-interval must be positive and at most 200ms"},
		{name: "a quiet interval past pacing", args: []string{"-ws-quiet-interval", "300ms"}, env: env(), want: "-ws-quiet-interval must be positive and at most 200ms"},
		{name: "no spectators", args: []string{"-max-spectators-per-stream", "0"}, env: env(), want: "-max-spectators-per-stream must be at least 1"},
		{name: "a write buffer of less than a few segments", args: []string{"-ws-write-buffer", "4096"}, env: env(), want: "-ws-write-buffer must be between 8192 and 1073741824 bytes"},
		{name: "a write buffer that SO_SNDBUF's int wraps", args: []string{"-ws-write-buffer", "4294967296"}, env: env(), want: "-ws-write-buffer must be between 8192 and 1073741824 bytes"},
		{name: "ping slower than half the client timeout", args: []string{"-ws-ping-interval", "20s"}, env: env(), want: "-ws-ping-interval 20s is more than half -client-timeout 10s: a push client would be disconnected between two pings; set at most 5s"},
		{name: "ping from the environment", args: []string{"-client-timeout", "4s"}, env: env("EVENTSTREAMD_WS_PING_INTERVAL", "3s"), want: "set at most 2s"},
		{name: "pages smaller than an event", args: []string{"-page-bytes", "1000"}, env: env(), want: "page bytes must hold"},
		{name: "negative bad signatures", args: []string{"-max-bad-signatures-per-address-per-minute", "-1"}, env: env(), want: "-max-bad-signatures-per-address-per-minute must not be negative"},
		{name: "negative bad signatures of all", args: []string{"-max-bad-signatures-per-second", "-1"}, env: env(), want: "-max-bad-signatures-per-second must not be negative"},
		{name: "negative voter tenure", args: []string{"-checkpoint-voter-tenure", "-1s"}, env: env(), want: "voter tenure must not be negative"},
		{name: "log format", args: []string{"-log-format", "xml"}, env: env(), want: "log format"},
		{name: "slow sweeps", args: []string{"-sweep-interval", "5s"}, env: env(), want: "sweep interval"},
		{name: "unknown flag", args: []string{"-colour"}, env: env(), want: "colour"},
		{name: "argument", args: []string{"serve"}, env: env(), want: "serve"},
		{name: "no cors origins", args: []string{"-cors-origins", ","}, env: env(), want: "cors"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseConfig(tt.args, tt.env, nil)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			assert.NotContains(t, err.Error(), "\n", "a config error is one line")
		})
	}
}

func TestConfigDerived(t *testing.T) {
	tests := []struct {
		name       string
		give       []string
		wantPing   time.Duration
		wantSecret string
	}{
		{name: "default ping within the default timeout", wantPing: 5 * time.Second},
		{name: "default ping lowered to half a short timeout", give: []string{"-client-timeout", "4s"}, wantPing: 2 * time.Second},
		{name: "ping of half the timeout", give: []string{"-client-timeout", "4s", "-ws-ping-interval", "2s"}, wantPing: 2 * time.Second},
		{name: "development secret opted in", give: []string{"-store", "redis://localhost:6379", "-store-dev-secret"}, wantPing: 5 * time.Second, wantSecret: developmentSecret},
		{name: "development secret given and opted in", give: []string{"-store", "redis://localhost:6379", "-store-dev-secret", "-store-secret", developmentSecret}, wantPing: 5 * time.Second, wantSecret: developmentSecret},
		{name: "a secret of one's own wins over the opt-in", give: []string{"-store", "redis://localhost:6379", "-store-dev-secret", "-store-secret", "9f86d081884c7d659a2feaa0c55ad015"}, wantPing: 5 * time.Second, wantSecret: "9f86d081884c7d659a2feaa0c55ad015"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parseConfig(tt.give, env(), nil)
			require.NoError(t, err)
			assert.Equal(t, tt.wantPing, cfg.Push.PingInterval)
			assert.Equal(t, tt.wantSecret, cfg.Stream.Secret)
		})
	}
}

// TestDocumentedSecretsRefused: a store secret written out in the docs,
// the deploy files or the Makefile is refused, so that one copied from
// them never reaches production. Secrets computed by a command ($(...))
// are not literal and are skipped; a variable's default (${V:-default})
// is checked.
func TestDocumentedSecretsRefused(t *testing.T) {
	files := []string{"../../README.md", "../../Makefile", "../../Dockerfile"}
	for _, glob := range []string{"../../docs/*.md", "../../deploy/*.yaml", "../../deploy/*/*.yaml"} {
		m, err := filepath.Glob(glob)
		require.NoError(t, err)
		files = append(files, m...)
	}
	secretRE := regexp.MustCompile(`(?:EVENTSTREAMD_STORE_SECRET\s*[=:]|-store-secret\s)\s*(.+)`)
	defaultRE := regexp.MustCompile(`^\$+\{[A-Z_]+:-([^}]+)\}`)
	found := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		for _, m := range secretRE.FindAllStringSubmatch(string(b), -1) {
			v := strings.Trim(strings.TrimSuffix(strings.TrimSpace(m[1]), "\\"), " \"'`")
			if d := defaultRE.FindStringSubmatch(v); d != nil {
				v = d[1] // a shell variable's default: ${EVENTSTREAMD_STORE_SECRET:-…}
			}
			if v == "" || strings.HasPrefix(v, "$") || strings.HasPrefix(v, "(") || strings.HasPrefix(v, "|") {
				continue // computed, or prose about the flag
			}
			found++
			_, err := parseConfig([]string{"-store", "redis://localhost:6379"}, env("EVENTSTREAMD_STORE_SECRET", v), nil)
			assert.Error(t, err, "%s shows the store secret %q, and the server takes it", f, v)
		}
	}
	assert.Positive(t, found, "the docs' placeholders were found")
}

func TestAuthConfig(t *testing.T) {
	secret := strings.Repeat("k", 32)
	cfg, err := parseConfig([]string{"-auth-audience", "game", "-auth-open-prefix", "lobby-"}, env("EVENTSTREAMD_AUTH_SECRET", secret), nil)
	require.NoError(t, err)
	assert.True(t, cfg.authOn())
	assert.Equal(t, auth.Config{Secret: []byte(secret), Audience: "game"}, cfg.auth())
	assert.Equal(t, "lobby-", cfg.AuthOpenPrefix)

	cfg, err = parseConfig(nil, env(), nil)
	require.NoError(t, err)
	assert.False(t, cfg.authOn(), "off by default: the seed's open streams")

	for _, tt := range []struct {
		args []string
		want string
	}{
		{args: []string{"-auth-secret", "short"}, want: "at least 32 bytes"},
		{args: []string{"-auth-audience", "game"}, want: "need -auth-secret or -auth-public-keys"},
		{args: []string{"-auth-open-prefix", "lobby-"}, want: "need -auth-secret or -auth-public-keys"},
	} {
		_, err := parseConfig(tt.args, env(), nil)
		require.Error(t, err, tt.args)
		assert.Contains(t, err.Error(), tt.want)
		assert.NotContains(t, err.Error(), "short", "an error repeats the secret")
	}
}

func TestHelp(t *testing.T) {
	var out bytes.Buffer
	_, err := parseConfig([]string{"-h"}, env(), &out)
	require.ErrorIs(t, err, flag.ErrHelp)
	assert.Contains(t, out.String(), "-client-timeout")
	assert.Contains(t, out.String(), "EVENTSTREAMD_CLIENT_TIMEOUT")
}
